"""Send one batch end to end: retries, splitting rejected batches, matching answers to rows.

Every subscriber gets exactly one :class:`RowOutcome`. A row is SUBSCRIBED only
when the server's answer names it (by phone number or contact id, never by
position); a row whose fate cannot be known is UNKNOWN, never guessed.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bulkimport.contacts import RowStatus, is_existing_contact
from bulkimport.errors import ApiRefused
from bulkimport.send.client import AttemptKind, AttemptResult
from bulkimport.send.retry import RetryPolicy, StopRequested, TransientFailure, describe_wait

log = logging.getLogger(__name__)

NOT_IN_ANSWER = "the API's answer did not include this contact"
HELD_UNKNOWN = (
    "the answer was lost ({said}): this person may have got the message; held for a "
    "person's decision (--unknown hold): `bulkimport retry --include-unknown` sends it "
    "with contact reuse"
)

# Asked before every attempt: None to go ahead, or why the rows must wait (their window closed).
Gate = Callable[[], str | None]


class WindowClosed(Exception):
    """The batch's send window closed before an attempt: the attempt did not start."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SubscriptionApi(Protocol):
    """What sending needs of the API: a classified POST, a custom field looked up, a close.

    :class:`bulkimport.send.client.EngageSparkClient` is the real one; a test or a
    second backend (the newer API) only needs these two methods.
    """

    def post_subscription(
        self, engagement_id: int, contacts: Sequence[Mapping[str, Any]], *, reuse: bool
    ) -> AttemptResult: ...

    def resolve_custom_field(self, name: str) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Subscriber:
    """One row to subscribe: the ledger's row id and the contact as the API takes it."""

    key: int
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class RowOutcome:
    """What became of one row: SUBSCRIBED, FAILED, UNKNOWN or PENDING, and why."""

    key: int
    status: RowStatus
    contact_id: int | None
    reason: str


@dataclass(frozen=True)
class SentAttempt:
    """One POST of a batch (or of part of it): its result, whether reuse was on, which rows."""

    result: AttemptResult
    reuse: bool
    keys: tuple[int, ...]


@dataclass(frozen=True)
class BatchOutcome:
    """The end of one batch: one outcome per subscriber in input order, and every attempt.

    ``refused`` carries its :class:`~bulkimport.errors.RefusalCause`; ``stop_reason``
    is a sentence when the whole run should stop sending now (the API asked for a
    wait longer than the policy waits), else None.
    """

    rows: tuple[RowOutcome, ...]
    attempts: tuple[SentAttempt, ...]
    refused: ApiRefused | None
    unavailable: bool
    stop_reason: str | None = None
    window_closed: str | None = None  # why the rows left unsent wait, when their window closed


@dataclass
class _Split:
    """The two halves of a part rejected without an index, while they are being sent.

    A half rejected with its parent's message is held until its sibling has
    answered too: when both were, every part fails alike and splitting further
    would cost a request per row for nothing.
    """

    reason: str
    unanswered: int = 2
    held: list[list[int]] = field(default_factory=list)


EVERY_PART_REJECTED = "every part of the batch was rejected the same way"
STOPPED_BEFORE_SENT = "the run stopped before this batch was sent"
STOPPED_BEFORE_RESENT = "the run stopped before this batch was sent again"


def _digits(value: object) -> str:
    """Return only the digits of a phone number or id, so ``+63 917`` matches ``63917``."""
    return "".join(char for char in str(value) if char.isdigit()) if value is not None else ""


def _match_key(payload: Mapping[str, Any], existing: bool) -> str:
    """Return what identifies a contact in the server's answer: its id or its number."""
    return _digits(payload.get("id") if existing else payload.get("fullPhoneNumber"))


class _BatchRun:
    """The state of one :func:`subscribe_batch` call while its parts are sent."""

    def __init__(
        self,
        client: SubscriptionApi,
        engagement_id: int,
        subscribers: Sequence[Subscriber],
        *,
        reuse: bool,
        policy: RetryPolicy,
        label: str,
        gate: Gate | None = None,
        resend_unknown: bool = True,
    ) -> None:
        self.gate = gate
        self.resend_unknown = resend_unknown
        self.window_closed: str | None = None
        self.client = client
        self.engagement_id = engagement_id
        self.subscribers = subscribers
        self.reuse = reuse
        self.policy = policy
        self.label = label
        self.outcomes: dict[int, RowOutcome] = {}
        self.maybe_sent: set[int] = set()  # positions an attempt may have processed
        self.attempts: list[SentAttempt] = []
        self.refused: ApiRefused | None = None
        self.unavailable = False
        self.stop_reason: str | None = None
        self.parts: deque[tuple[list[int], _Split | None]] = deque()

    def run(self) -> BatchOutcome:
        """Send every part until each row has an outcome, and return them."""
        parts = self.parts
        parts.append((list(range(len(self.subscribers))), None))
        sent_parts = 0
        while parts:
            part, split = parts.popleft()
            label = self.label if sent_parts == 0 else f"{self.label}.{sent_parts}"
            sent_parts += 1
            try:
                result = self.policy.retrying(label)(self._attempt, part)
            except StopRequested:
                self._stop_unsent(part, split)
                break
            except WindowClosed as closed:
                self.window_closed = closed.reason
                self._settle_unsent(self._unsent(part, split), closed.reason)
                break
            except TransientFailure as failure:
                if self.policy.stopped:
                    self._stop_unsent(part, split)
                else:
                    self._give_up(part, split, failure.result, label)
                break
            if result.kind in (AttemptKind.CREATED, AttemptKind.ACCEPTED):
                self._match(part, result)
                self._sibling_answered(split)
            elif result.kind is AttemptKind.REJECTED:
                self._reject(part, split, result)
            elif result.kind is AttemptKind.MAYBE_PROCESSED:  # held: never sent again on its own
                self._settle_unsent(
                    self._unsent(part, split), HELD_UNKNOWN.format(said=_said(result))
                )
                break
            else:  # REFUSED: the only kind left, transient ones were retried
                self.refused = ApiRefused(result.message, result.status_code, result.cause)
                self._settle_unsent(self._unsent(part, split), result.message)
                break
        return BatchOutcome(
            rows=tuple(self.outcomes[position] for position in range(len(self.subscribers))),
            attempts=tuple(self.attempts),
            refused=self.refused,
            unavailable=self.unavailable,
            stop_reason=self.stop_reason,
            window_closed=self.window_closed,
        )

    def _attempt(self, part: list[int]) -> AttemptResult:
        """POST one part once; raise TransientFailure when it is worth sending again."""
        if self.policy.stopped:
            # Checked before every POST: tenacity checks its stop only before a wait,
            # and the request to stop may come during one.
            raise StopRequested
        waits = self.gate() if self.gate is not None else None
        if waits is not None:
            # Checked before every attempt: a backoff may have crossed the window's end.
            raise WindowClosed(waits)
        reuse = self.reuse
        contacts = [self.subscribers[position].payload for position in part]
        result = self.client.post_subscription(self.engagement_id, contacts, reuse=reuse)
        keys = tuple(self.subscribers[position].key for position in part)
        self.attempts.append(SentAttempt(result=result, reuse=reuse, keys=keys))
        if result.kind is AttemptKind.MAYBE_PROCESSED:
            # The lost attempt may have created these contacts: from now on reuse
            # them, for this part and every later part of the batch.
            self.reuse = True
            self.maybe_sent.update(part)
            if not self.resend_unknown:
                return result  # held: the rows stay unknown until a person decides
        if result.is_transient:
            raise TransientFailure(result)
        return result

    def _unsent(self, part: list[int], split: _Split | None) -> list[list[int]]:
        """Return ``part`` and every part still waiting, held halves included."""
        unsent = [part, *(waiting for waiting, _ in self.parts)]
        # A held half waits for its sibling, which is this part or one still queued.
        splits = {id(each): each for each in (split, *(s for _, s in self.parts)) if each}
        unsent.extend(half for each in splits.values() for half in each.held)
        self.parts.clear()
        return unsent

    def _give_up(
        self, part: list[int], split: _Split | None, result: AttemptResult, label: str
    ) -> None:
        """Leave the rows unsent after the retries ran out, or the server asked to wait."""
        asked = self.policy.wait_beyond_cap(result)
        if asked is None:
            self.unavailable = True
            reason = f"the API stayed unavailable (last: {_said(result)})"
        else:
            wait = describe_wait(asked)
            log.warning("batch %s: the API asks to wait %s: stopping; retry later", label, wait)
            self.unavailable = True
            self.stop_reason = (
                f"The API asks to wait {wait} before it takes more: sending stopped; "
                "run `bulkimport retry` later."
            )
            reason = f"the API asks to wait {wait} (last: {_said(result)})"
        self._settle_unsent(self._unsent(part, split), reason)

    def _stop_unsent(self, part: list[int], split: _Split | None) -> None:
        """Leave the rows unsent because the run was asked to stop."""
        reason = STOPPED_BEFORE_RESENT if self.attempts else STOPPED_BEFORE_SENT
        self._settle_unsent(self._unsent(part, split), reason)

    def _settle(
        self, position: int, status: RowStatus, reason: str, contact_id: int | None = None
    ) -> None:
        key = self.subscribers[position].key
        self.outcomes[position] = RowOutcome(key, status, contact_id, reason)

    def _settle_unsent(self, parts: list[list[int]], reason: str) -> None:
        """Give up on rows without an answer: UNKNOWN if maybe processed, else PENDING."""
        for part in parts:
            for position in part:
                maybe = position in self.maybe_sent
                self._settle(position, RowStatus.UNKNOWN if maybe else RowStatus.PENDING, reason)

    def _match(self, part: list[int], result: AttemptResult) -> None:
        """Mark the rows the answer names SUBSCRIBED (as a multiset), the rest UNKNOWN."""
        existing = is_existing_contact(self.subscribers[part[0]].payload)
        waiting: dict[str, deque[int]] = defaultdict(deque)
        for position in part:
            waiting[_match_key(self.subscribers[position].payload, existing)].append(position)
        for contact in result.data:
            contact_id = contact.get("id")
            queue = waiting.get(_match_key(contact, existing))
            if queue and isinstance(contact_id, int) and not isinstance(contact_id, bool):
                self._settle(queue.popleft(), RowStatus.SUBSCRIBED, "", contact_id)
        reason = _unmatched_reason(result, len(part))
        for queue in waiting.values():
            for position in queue:
                self._settle(position, RowStatus.UNKNOWN, reason)

    def _reject(self, part: list[int], split: _Split | None, result: AttemptResult) -> None:
        """Fail the rows the server blamed and queue the parts still to send."""
        reason = _rejection_reason(result)
        index = result.bad_index
        if index is not None and 0 <= index < len(part):
            self._settle(part[index], RowStatus.FAILED, reason)
            rest = part[:index] + part[index + 1 :]
            if rest:
                self.parts.appendleft((rest, None))
            self._sibling_answered(split)
            return
        if split is None or reason != split.reason:
            self._halve(part, reason)
            self._sibling_answered(split)
            return
        # Rejected like its parent, without saying which row: wait for the sibling.
        split.held.append(part)
        self._sibling_answered(split)

    def _sibling_answered(self, split: _Split | None) -> None:
        """Count one answered half; once both are, settle or split the halves held back."""
        if split is None:
            return
        split.unanswered -= 1
        if split.unanswered > 0:
            return
        held, split.held = split.held, []
        if len(held) == 2:
            note = f"{split.reason} ({EVERY_PART_REJECTED})"
            for half in held:
                for position in half:
                    self._settle(position, RowStatus.FAILED, note)
            return
        for half in held:  # its sibling answered otherwise: this half holds a bad row
            self._halve(half, split.reason)

    def _halve(self, part: list[int], reason: str) -> None:
        """Fail a single rejected row, or queue the two halves of a rejected part next."""
        if len(part) == 1:
            self._settle(part[0], RowStatus.FAILED, reason)
            return
        middle = len(part) // 2
        split = _Split(reason)
        self.parts.extendleft([(part[middle:], split), (part[:middle], split)])


def _unmatched_reason(result: AttemptResult, sent: int) -> str:
    """Return why a row of an accepted part is UNKNOWN: the answer did not name it."""
    status = result.status_code
    if not result.data:
        return (
            f"the API accepted the batch ({status}) but its answer named no contacts: "
            "this row may be subscribed"
        )
    if len(result.data) < sent:
        return (
            f"the API accepted the batch ({status}) but its answer named too few contacts "
            f"({len(result.data)} for {sent}): this row may be subscribed"
        )
    return NOT_IN_ANSWER


def _said(result: AttemptResult) -> str:
    """Return ``<kind> <status>: <message>`` for a row's reason."""
    return f"{result.describe()}: {result.message}" if result.message else result.describe()


def _rejection_reason(result: AttemptResult) -> str:
    """Return the server's message for a rejected row, or a stand-in when it gave none."""
    return result.message or f"the server rejected this contact ({result.status_code})"


def subscribe_batch(
    client: SubscriptionApi,
    engagement_id: int,
    subscribers: Sequence[Subscriber],
    *,
    reuse: bool,
    policy: RetryPolicy,
    label: str,
    gate: Gate | None = None,
    resend_unknown: bool = True,
) -> BatchOutcome:
    """Subscribe one batch to an engagement and return one outcome per subscriber.

    Transient failures are retried under ``policy``; after an attempt that may
    have been processed, every later attempt reuses existing contacts. A
    rejected batch is narrowed down until only the bad rows fail, unless every
    part of it is rejected the same way. A 2xx is never sent again, even when
    its answer names no contacts. With a stop event bound to ``policy``, no
    POST starts once it is set. ``gate`` is asked before every attempt; when it
    gives a reason, no attempt starts and the rows left unsent carry it. With
    ``resend_unknown`` off, an attempt that may have been processed is not sent
    again: its rows end UNKNOWN, held for a person.
    """
    if not subscribers:
        return BatchOutcome(rows=(), attempts=(), refused=None, unavailable=False)
    if len({is_existing_contact(subscriber.payload) for subscriber in subscribers}) > 1:
        raise ValueError("a batch mixes existing and new contacts: plan them in separate batches")
    outcome = _BatchRun(
        client,
        engagement_id,
        subscribers,
        reuse=reuse,
        policy=policy,
        label=label,
        gate=gate,
        resend_unknown=resend_unknown,
    ).run()
    log.debug(
        "batch %s: %s in %d attempts",
        label,
        ", ".join(
            f"{sum(row.status is status for row in outcome.rows)} {status}"
            for status in (
                RowStatus.SUBSCRIBED,
                RowStatus.FAILED,
                RowStatus.UNKNOWN,
                RowStatus.PENDING,
            )
        ),
        len(outcome.attempts),
    )
    return outcome
