"""Row states: every legal move of a row, and the groups of states the commands ask about.

The one place that says which states are open, sendable or need a person;
the ledger's SQL, the exit codes and the reports all read these groups.
"""

from __future__ import annotations

from collections.abc import Iterable

from bulkimport.contacts import RowStatus

S = RowStatus

# Every legal move of a row, in one place. ``None`` is a row not yet recorded.
TRANSITIONS: dict[RowStatus | None, frozenset[RowStatus]] = {
    None: frozenset({S.INVALID, S.DUPLICATE, S.SKIPPED, S.PENDING}),
    S.PENDING: frozenset({S.SENDING, S.DISCARDED}),
    S.SENDING: frozenset({S.SUBSCRIBED, S.FAILED, S.UNKNOWN, S.PENDING}),
    S.UNKNOWN: frozenset({S.SENDING, S.DISCARDED}),
    S.FAILED: frozenset({S.SENDING, S.DISCARDED}),  # sending only with --include-rejected
    S.DISCARDED: frozenset(),  # only on a person's explicit request
    S.INVALID: frozenset(),
    S.DUPLICATE: frozenset(),
    S.SKIPPED: frozenset(),
    S.SUBSCRIBED: frozenset(),
}

SENDABLE = (S.PENDING, S.UNKNOWN)  # what `retry` sends (FAILED too, when asked)
OPEN = (S.PENDING, S.SENDING, S.UNKNOWN)  # not settled: the file's import is not finished
UNSENT = (S.PENDING, S.INVALID, S.DUPLICATE, S.SKIPPED)  # what a refused file may forget
DISCARDABLE = (S.PENDING, S.UNKNOWN, S.FAILED)  # what `discard` leaves out, on request
NEEDS_ATTENTION = (S.INVALID, S.DUPLICATE, S.FAILED, S.UNKNOWN, S.PENDING, S.SENDING)
# The order in which summaries, status lines and results files list the states.
REPORT_ORDER = (
    S.SUBSCRIBED, S.SKIPPED, S.INVALID, S.DUPLICATE, S.FAILED, S.UNKNOWN, S.PENDING, S.SENDING,
    S.DISCARDED,
)  # fmt: skip


def sendable_states(*, unknown: bool = True, rejected: bool = False) -> tuple[RowStatus, ...]:
    """Return the states a send picks up: pending, unknown unless held, failed when asked."""
    return (
        S.PENDING,
        *((S.UNKNOWN,) if unknown else ()),
        *((S.FAILED,) if rejected else ()),
    )


class IllegalTransition(RuntimeError):
    """A row was asked to move between two states the design does not allow."""


def check_transition(current: RowStatus | None, new: RowStatus) -> None:
    """Raise IllegalTransition unless ``current -> new`` is a legal move."""
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"a row cannot go from {current or 'new'} to {new}")


def sources_of(new: RowStatus) -> list[RowStatus]:
    """Return the states a row may be in to move to ``new``."""
    return [s for s, targets in TRANSITIONS.items() if s is not None and new in targets]


def sql_list(states: Iterable[RowStatus]) -> str:
    """Return ``('pending','unknown')`` for an SQL ``IN``: the values are this module's own."""
    return "(" + ",".join(f"'{state.value}'" for state in states) + ")"
