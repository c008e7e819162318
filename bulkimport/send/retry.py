"""The retry policy: which failures are tried again, how long to wait, when to give up.

Built from tenacity parts. Only :class:`TransientFailure` is retried (a rejected
batch never is); the wait honours the server's ``Retry-After`` and otherwise
backs off exponentially with full jitter; attempts and total time are capped.
A server that asks for a wait longer than the cap is not retried at all, and a
bound stop event (:meth:`RetryPolicy.with_stop`) ends any wait at once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import tenacity
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from bulkimport.send.client import AttemptResult

log = logging.getLogger(__name__)


class TransientFailure(Exception):
    """An attempt that may succeed if sent again (not processed or maybe processed)."""

    def __init__(self, result: AttemptResult) -> None:
        super().__init__(f"{result.describe()}: {result.message}")
        self.result = result


class StopRequested(Exception):
    """The run was asked to stop: the next attempt did not start."""


def _failed_result(retry_state: tenacity.RetryCallState) -> AttemptResult | None:
    """Return the AttemptResult the last attempt failed with, if it carried one."""
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None else None
    return error.result if isinstance(error, TransientFailure) else None


class _WaitRetryAfter(wait_base):
    """Wait what the server asked for (clamped), else fall back to the backoff."""

    def __init__(self, cap: float, fallback: wait_base) -> None:
        self.cap = cap
        self.fallback = fallback

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        result = _failed_result(retry_state)
        if result is not None and result.retry_after is not None:
            return min(max(result.retry_after, 0.0), self.cap)
        return float(self.fallback(retry_state))


class _AsksTooLong(stop_base):
    """Stop at once when the server asks to wait longer than the policy ever waits."""

    def __init__(self, cap: float) -> None:
        self.cap = cap

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        result = _failed_result(retry_state)
        return result is not None and wait_beyond(result, self.cap) is not None


def wait_beyond(result: AttemptResult, cap: float) -> float | None:
    """Return the seconds ``Retry-After`` asks for when they are more than ``cap``, else None."""
    if result.retry_after is not None and result.retry_after > cap:
        return result.retry_after
    return None


def describe_wait(seconds: float) -> str:
    """Return a wait in the largest unit that still reads as a number, e.g. ``11 days``."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= 2 * size:
            count = int(seconds // size)
            return f"{count} {unit}s"
    count = max(int(seconds), 0)
    return f"{count} second" if count == 1 else f"{count} seconds"


class _BudgetSpent(stop_base):
    """Stop when the next attempt would start after the time budget.

    Time spent is the larger of the wall clock and the time slept, because the
    sleep may be injected (a test, a shared pause) and then the clock sees none of it.
    """

    def __init__(self, budget: float) -> None:
        self.budget = budget

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        elapsed = max(retry_state.seconds_since_start or 0.0, retry_state.idle_for)
        return elapsed + retry_state.upcoming_sleep > self.budget


def _log_retry(label: str, retry_state: tenacity.RetryCallState) -> None:
    """Log a failed attempt before sleeping: no key, no phone number, no server text."""
    result = _failed_result(retry_state)
    what = result.describe() if result is not None else "unexpected error"
    log.info(
        "batch %s: attempt %d failed (%s), retrying in %.1fs",
        label,
        retry_state.attempt_number,
        what,
        retry_state.upcoming_sleep,
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one batch is tried again before the run gives it up."""

    max_attempts: int = 6
    budget_seconds: float = 300.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    stop_event: threading.Event | None = None  # see with_stop

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.budget_seconds, self.backoff_base, self.backoff_cap, self.retry_after_cap) < 0:
            raise ValueError("retry times cannot be negative")

    def with_stop(self, event: threading.Event) -> RetryPolicy:
        """Return this policy bound to ``event``: once it is set, no retry starts.

        A wait in progress ends at once (the real sleep waits on the event; an
        injected ``sleep`` is not called once the event is set), and the
        controller then raises :class:`StopRequested` instead of trying again.
        """
        return dataclasses.replace(self, stop_event=event)

    @property
    def stopped(self) -> bool:
        """Return whether the bound stop event is set (False when none is bound)."""
        return self.stop_event is not None and self.stop_event.is_set()

    def wait_beyond_cap(self, result: AttemptResult) -> float | None:
        """Return the wait ``result`` asks for when it is longer than this policy waits."""
        return wait_beyond(result, self.retry_after_cap)

    def _sleep(self, seconds: float) -> None:
        """Wait before the next attempt; raise StopRequested if a stop came meanwhile."""
        event = self.stop_event
        if event is None:
            self.sleep(seconds)
            return
        if self.sleep is time.sleep:
            event.wait(seconds)  # returns as soon as the run is asked to stop
        elif not event.is_set():
            self.sleep(seconds)
        if event.is_set():
            # tenacity checks its stop only before a wait: the attempt after it
            # would start although the run was asked to stop during the wait.
            raise StopRequested

    def retrying(self, label: str) -> tenacity.Retrying:
        """Return a tenacity controller that retries only :class:`TransientFailure`.

        After the last attempt the final TransientFailure is re-raised, so the
        caller sees the AttemptResult that ended the batch. It stops at once when
        the server asks for a wait beyond ``retry_after_cap`` or the stop event is
        set, and raises :class:`StopRequested` when the event is set during a wait.
        """
        backoff = tenacity.wait_random_exponential(
            multiplier=self.backoff_base, max=self.backoff_cap
        )
        stop = (
            tenacity.stop_after_attempt(self.max_attempts)
            | _BudgetSpent(self.budget_seconds)
            | _AsksTooLong(self.retry_after_cap)
        )
        if self.stop_event is not None:
            stop = stop | tenacity.stop_when_event_set(self.stop_event)
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientFailure),
            stop=stop,
            wait=_WaitRetryAfter(self.retry_after_cap, backoff),
            sleep=self._sleep,
            before_sleep=partial(_log_retry, label),
            reraise=True,
        )
