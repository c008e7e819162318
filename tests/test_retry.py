"""The retry policy: what is retried, how long it waits, when it gives up."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable

import pytest

from bulkimport.jobs.sending import ConsecutiveFailures
from bulkimport.send.client import AttemptKind, AttemptResult
from bulkimport.send.retry import (
    RetryPolicy,
    StopRequested,
    TransientFailure,
    describe_wait,
)


def attempt(
    kind: AttemptKind, status: int | None = None, retry_after: float | None = None
) -> AttemptResult:
    return AttemptResult(
        kind=kind,
        status_code=status,
        data=[],
        message="",
        bad_index=None,
        retry_after=retry_after,
        duration=0.01,
        started_at=0.0,
    )


THROTTLED = attempt(AttemptKind.NOT_PROCESSED, 429)
BAD_GATEWAY = attempt(AttemptKind.MAYBE_PROCESSED, 502)
CREATED = attempt(AttemptKind.CREATED, 201)
REJECTED = attempt(AttemptKind.REJECTED, 400)


class Script:
    """Answers each call with the next result, raising TransientFailure for transient ones."""

    def __init__(self, results: Iterable[AttemptResult]) -> None:
        self.results = list(results)
        self.calls = 0

    def __call__(self) -> AttemptResult:
        result = self.results[self.calls]
        self.calls += 1
        if result.is_transient:
            raise TransientFailure(result)
        return result


def recording_policy(**settings: float) -> tuple[RetryPolicy, list[float]]:
    sleeps: list[float] = []
    return RetryPolicy(sleep=sleeps.append, **settings), sleeps  # type: ignore[arg-type]


def test_a_transient_failure_is_retried_until_it_succeeds() -> None:
    policy, sleeps = recording_policy(backoff_base=0)
    script = Script([THROTTLED, BAD_GATEWAY, CREATED])
    assert policy.retrying("1")(script) is CREATED
    assert script.calls == 3
    assert sleeps == [0, 0]


def test_a_rejection_is_never_retried() -> None:
    policy, sleeps = recording_policy()
    script = Script([REJECTED, CREATED])
    assert policy.retrying("1")(script) is REJECTED
    assert script.calls == 1
    assert sleeps == []


def test_other_exceptions_are_not_retried() -> None:
    policy, sleeps = recording_policy()
    calls: list[int] = []

    def broken() -> AttemptResult:
        calls.append(1)
        raise ValueError("a bug, not a transient failure")

    with pytest.raises(ValueError, match="a bug"):
        policy.retrying("1")(broken)
    assert calls == [1]
    assert sleeps == []


def test_max_attempts_then_the_last_failure_is_reraised() -> None:
    policy, sleeps = recording_policy(max_attempts=4, backoff_base=0)
    last = attempt(AttemptKind.MAYBE_PROCESSED, 504)
    script = Script([THROTTLED, THROTTLED, THROTTLED, last, CREATED])
    with pytest.raises(TransientFailure) as failure:
        policy.retrying("1")(script)
    assert failure.value.result is last
    assert script.calls == 4
    assert len(sleeps) == 3


def test_backoff_is_exponential_with_full_jitter_and_capped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lows: list[float] = []

    def top_of_window(low: float, high: float) -> float:
        lows.append(low)
        return high

    monkeypatch.setattr(random, "uniform", top_of_window)
    policy, sleeps = recording_policy(max_attempts=8, backoff_base=0.5, backoff_cap=10)
    with pytest.raises(TransientFailure):
        policy.retrying("1")(Script([THROTTLED] * 8))
    assert sleeps == [0.5, 1, 2, 4, 8, 10, 10]
    assert set(lows) == {0}  # full jitter: every window starts at zero


def test_jittered_waits_stay_inside_the_window() -> None:
    policy, sleeps = recording_policy(max_attempts=6, backoff_base=1, backoff_cap=30)
    with pytest.raises(TransientFailure):
        policy.retrying("1")(Script([THROTTLED] * 6))
    windows = [1, 2, 4, 8, 16]
    assert all(0 <= slept <= window for slept, window in zip(sleeps, windows, strict=True))


@pytest.mark.parametrize(
    ("retry_after", "expected"), [(7.0, 7.0), (0.0, 0.0), (120.0, 120.0), (-5.0, 0.0)]
)
def test_retry_after_is_honoured_up_to_the_cap(retry_after: float, expected: float) -> None:
    policy, sleeps = recording_policy(backoff_base=0.5, budget_seconds=1000)
    script = Script([attempt(AttemptKind.NOT_PROCESSED, 429, retry_after), CREATED])
    assert policy.retrying("1")(script) is CREATED
    assert sleeps == [expected]


@pytest.mark.parametrize("retry_after", [120.5, 999999.0])
def test_a_retry_after_beyond_the_cap_is_not_waited_for(retry_after: float) -> None:
    policy, sleeps = recording_policy(backoff_base=0.5, budget_seconds=10**7)
    asks = attempt(AttemptKind.NOT_PROCESSED, 429, retry_after)
    script = Script([asks, CREATED])
    with pytest.raises(TransientFailure) as failure:
        policy.retrying("1")(script)
    assert (sleeps, script.calls) == ([], 1)
    assert policy.wait_beyond_cap(failure.value.result) == retry_after
    assert policy.wait_beyond_cap(attempt(AttemptKind.NOT_PROCESSED, 429, 120.0)) is None
    assert policy.wait_beyond_cap(THROTTLED) is None


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0.4, "0 seconds"),
        (1, "1 second"),
        (119, "119 seconds"),
        (600, "10 minutes"),
        (7200, "2 hours"),
        (47 * 3600, "47 hours"),
        (999999, "11 days"),
    ],
)
def test_a_wait_is_described_in_words(seconds: float, words: str) -> None:
    assert describe_wait(seconds) == words


def test_a_stop_event_ends_a_real_wait_at_once() -> None:
    stop = threading.Event()
    policy = RetryPolicy(backoff_base=0, retry_after_cap=600, budget_seconds=1000).with_stop(stop)
    script = Script([attempt(AttemptKind.NOT_PROCESSED, 429, retry_after=300), CREATED])
    setter = threading.Timer(0.1, stop.set)
    setter.start()
    started = time.monotonic()
    try:
        with pytest.raises(StopRequested):
            policy.retrying("1")(script)
    finally:
        setter.cancel()
    # The wait asked for 300 s; it ended when the stop came, and nothing was tried again.
    assert time.monotonic() - started < 5
    assert script.calls == 1
    assert policy.stopped


def test_a_set_stop_event_means_no_retry_and_no_sleep() -> None:
    stop = threading.Event()
    policy, sleeps = recording_policy(backoff_base=0)
    bound = policy.with_stop(stop)
    stop.set()
    script = Script([THROTTLED, CREATED])
    with pytest.raises(TransientFailure):
        bound.retrying("1")(script)
    assert (script.calls, sleeps) == (1, [])
    # The policy it was made from is left unbound.
    assert not policy.stopped
    assert policy.retrying("1")(Script([THROTTLED, CREATED])) is CREATED


def test_an_injected_sleep_still_records_waits_when_a_stop_is_bound() -> None:
    policy, sleeps = recording_policy(backoff_base=0)
    bound = policy.with_stop(threading.Event())
    script = Script([attempt(AttemptKind.NOT_PROCESSED, 429, retry_after=3), CREATED])
    assert bound.retrying("1")(script) is CREATED
    assert sleeps == [3]


def test_a_stop_during_an_injected_sleep_starts_no_attempt() -> None:
    stop = threading.Event()

    def sleep(seconds: float) -> None:
        stop.set()

    policy = RetryPolicy(backoff_base=0, sleep=sleep).with_stop(stop)
    script = Script([THROTTLED, CREATED])
    with pytest.raises(StopRequested):
        policy.retrying("1")(script)
    assert script.calls == 1


def test_without_retry_after_the_backoff_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    policy, sleeps = recording_policy(backoff_base=2)
    script = Script([attempt(AttemptKind.NOT_PROCESSED, 503, None), CREATED])
    policy.retrying("1")(script)
    assert sleeps == [2]


def test_the_time_budget_stops_before_sleeping_past_it() -> None:
    policy, sleeps = recording_policy(max_attempts=10, budget_seconds=10)
    slow_down = attempt(AttemptKind.NOT_PROCESSED, 429, retry_after=4)
    script = Script([slow_down] * 10)
    with pytest.raises(TransientFailure):
        policy.retrying("1")(script)
    assert sleeps == [4, 4]
    assert script.calls == 3


def test_a_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    policy, sleeps = recording_policy(budget_seconds=30, retry_after_cap=120)
    script = Script([attempt(AttemptKind.NOT_PROCESSED, 429, retry_after=60), CREATED])
    with pytest.raises(TransientFailure):
        policy.retrying("1")(script)
    assert sleeps == []
    assert script.calls == 1


def test_each_retry_is_logged_without_phone_or_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bulkimport.send.retry")
    policy, _ = recording_policy()
    secret = AttemptResult(
        kind=AttemptKind.NOT_PROCESSED,
        status_code=429,
        data=[],
        message="throttled 639171234567 Token sk-live",
        bad_index=None,
        retry_after=3,
        duration=0.1,
        started_at=0.0,
    )
    failed_connect = attempt(AttemptKind.NOT_PROCESSED, None, retry_after=None)
    policy.retrying("run 4 batch 7")(Script([secret, failed_connect, CREATED]))
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == (
        "batch run 4 batch 7: attempt 1 failed (not_processed 429), retrying in 3.0s"
    )
    assert messages[1].startswith(
        "batch run 4 batch 7: attempt 2 failed (not_processed no response), retrying in "
    )
    assert "639171234567" not in caplog.text
    assert "sk-live" not in caplog.text


def test_a_controller_can_be_used_for_several_calls() -> None:
    policy, _ = recording_policy(max_attempts=2, backoff_base=0)
    controller = policy.retrying("1")
    first = Script([THROTTLED, CREATED])
    second = Script([THROTTLED, CREATED])
    assert controller(first) is CREATED
    assert controller(second) is CREATED
    assert (first.calls, second.calls) == (2, 2)


@pytest.mark.parametrize(
    "settings",
    [{"max_attempts": 0}, {"budget_seconds": -1}, {"backoff_base": -0.1}, {"retry_after_cap": -1}],
)
def test_a_nonsense_policy_is_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"max_attempts|negative"):
        RetryPolicy(**settings)  # type: ignore[arg-type]


def test_the_default_policy_matches_the_design() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.budget_seconds) == (6, 300.0)
    assert (policy.backoff_base, policy.backoff_cap, policy.retry_after_cap) == (0.5, 30.0, 120.0)


def record_all(breaker: ConsecutiveFailures, outcomes: Iterable[bool]) -> list[bool]:
    tripped = []
    for ok in outcomes:
        breaker.record(ok)
        tripped.append(breaker.tripped)
    return tripped


def test_consecutive_failures_trip_after_the_limit_in_a_row() -> None:
    breaker = ConsecutiveFailures()
    assert record_all(breaker, [False, False, True, False, False, False]) == [
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    assert breaker.count == 3


def test_a_success_resets_the_count() -> None:
    breaker = ConsecutiveFailures(limit=2)
    record_all(breaker, [False, True])
    assert breaker.count == 0
    assert not breaker.tripped
