"""The retry policy: which failures are tried again, how long to wait, when to give up.

Built from tenacity parts. Only :class:`TransientFailure` is retried (a rejected
batch never is); the wait honours the server's ``Retry-After`` and otherwise
backs off exponentially with full jitter; attempts and total time are capped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import tenacity
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from bulkimport.api import AttemptResult

log = logging.getLogger(__name__)


class TransientFailure(Exception):
    """An attempt that may succeed if sent again (not processed or maybe processed)."""

    def __init__(self, result: AttemptResult) -> None:
        super().__init__(f"{result.describe()}: {result.message}")
        self.result = result


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

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.budget_seconds, self.backoff_base, self.backoff_cap, self.retry_after_cap) < 0:
            raise ValueError("retry times cannot be negative")

    def retrying(self, label: str) -> tenacity.Retrying:
        """Return a tenacity controller that retries only :class:`TransientFailure`.

        After the last attempt the final TransientFailure is re-raised, so the
        caller sees the AttemptResult that ended the batch.
        """
        backoff = tenacity.wait_random_exponential(
            multiplier=self.backoff_base, max=self.backoff_cap
        )
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientFailure),
            stop=tenacity.stop_after_attempt(self.max_attempts) | _BudgetSpent(self.budget_seconds),
            wait=_WaitRetryAfter(self.retry_after_cap, backoff),
            sleep=self.sleep,
            before_sleep=partial(_log_retry, label),
            reraise=True,
        )


@dataclass
class ConsecutiveFailures:
    """Counts batches in a row that ended unavailable; trips after ``limit`` of them."""

    limit: int = 3
    _count: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def record(self, ok: bool) -> None:
        """Record how a batch ended: ``ok`` resets the count, a failure adds one."""
        with self._lock:
            self._count = 0 if ok else self._count + 1

    @property
    def count(self) -> int:
        """Return how many batches in a row ended unavailable."""
        return self._count

    @property
    def tripped(self) -> bool:
        """Return whether ``limit`` batches in a row ended unavailable."""
        return self._count >= self.limit
