"""The send loop: batches out on a bounded pool, every answer recorded by one thread.

One thread (the caller's) owns the ledger; worker threads only talk HTTP.
A batch's rows are committed as ``sending`` before the batch is handed to a
worker, and its outcome is recorded when the worker returns.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from bulkimport.contacts import RowStatus
from bulkimport.errors import ApiRefused
from bulkimport.jobs.summary import RunSummary
from bulkimport.ledger.store import (
    AttemptRecord,
    Ledger,
    QueuedRow,
    Settlement,
)
from bulkimport.output.progress import NoProgress, Progress
from bulkimport.send.batch import BatchOutcome, Subscriber, SubscriptionApi, subscribe_batch
from bulkimport.send.retry import RetryPolicy
from bulkimport.settings import SendSettings as SendSettings  # callers import it from here too

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1  # how often the send loop looks for a stop at once while answers are awaited

DryRunSink = Callable[[str, bool, list[dict[str, Any]]], None]


@dataclass
class Sender:
    """Everything a send loop needs besides the rows."""

    client: SubscriptionApi
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    progress: Progress = field(default_factory=NoProgress)
    stop: threading.Event = field(default_factory=threading.Event)  # finish what is in flight
    hard_stop: threading.Event = field(default_factory=threading.Event)  # stop at once
    dry_run: DryRunSink | None = None
    failures_to_stop: int = 3


def _batches(queued: Iterator[QueuedRow], settings: SendSettings) -> Iterator[list[QueuedRow]]:
    """Group rows into batches of one kind: existing or new contacts, reuse on or off."""
    open_batches: dict[tuple[bool, bool], list[QueuedRow]] = {}
    for row in queued:
        key = (row.existing, settings.reuse or row.reuse)
        batch = open_batches.setdefault(key, [])
        batch.append(row)
        if len(batch) >= settings.batch_size:
            yield open_batches.pop(key)
    yield from (batch for batch in open_batches.values() if batch)


def send_rows(
    ledger: Ledger,
    queued: Iterator[QueuedRow],
    total: int,
    settings: SendSettings,
    sender: Sender,
    summary: RunSummary,
) -> None:
    """Send the queued rows on a bounded pool, recording each batch as it ends."""
    _SendLoop(ledger, settings, sender, summary).run(queued, total)


@dataclass(frozen=True)
class _InFlight:
    number: int  # batches settle in the order they left (7.9 before 7.10)
    label: str
    rows: list[QueuedRow]


class _SendLoop:
    """One send loop: batches out on a pool, answers recorded by this thread only.

    Whatever ends the loop (the end of the rows, a refusal, a stop request, an
    error in the ledger), every answer that arrived is recorded before it returns
    or raises. A stop at once (a second Ctrl-C or SIGTERM) does not wait for the
    batches in flight: their rows stay ``sending`` and become ``unknown`` on the
    next start, to be re-sent with contact reuse.
    """

    def __init__(
        self, ledger: Ledger, settings: SendSettings, sender: Sender, summary: RunSummary
    ) -> None:
        assert summary.run_id is not None
        self.ledger = ledger
        self.settings = settings
        self.sender = sender
        self.summary = summary
        self.run_id = summary.run_id
        self.policy = sender.policy.with_stop(sender.stop)
        self.breaker = ConsecutiveFailures(sender.failures_to_stop)
        self.limit = ConcurrencyLimit(settings.concurrency)
        self.in_flight: dict[Future[BatchOutcome], _InFlight] = {}
        self.refused: ApiRefused | None = None
        self.stop_reason = ""  # the API asked for a pause longer than the run will wait

    def run(self, queued: Iterator[QueuedRow], total: int) -> None:
        self.sender.progress.begin(total)
        pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="send")
        try:
            for number, batch in enumerate(_batches(queued, self.settings), start=1):
                self._wait_for_a_slot()
                if self._must_stop():
                    break
                self._submit(pool, number, batch)
            self._wait_for_all()
            self._record(self._answered())
        except BaseException:
            self._record_what_arrived()
            raise
        finally:
            # Never wait here: after a stop at once the batches in flight are left behind.
            pool.shutdown(wait=False, cancel_futures=True)
            self.sender.progress.end()
        self._conclude()

    def _must_stop(self) -> bool:
        return bool(
            self.refused or self.stop_reason or self.breaker.tripped or self.sender.stop.is_set()
        )

    def _running(self) -> list[Future[BatchOutcome]]:
        return [future for future in self.in_flight if not future.done()]

    def _answered(self) -> list[Future[BatchOutcome]]:
        done = [future for future in self.in_flight if future.done()]
        return sorted(done, key=lambda future: self.in_flight[future].number)

    def _wait_for_a_slot(self) -> None:
        # Polled, so that a stop at once is seen while answers are awaited.
        while len(self._running()) >= self.limit.current and not self.sender.hard_stop.is_set():
            wait(self._running(), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
        # A refusal or an outage must be seen before another batch leaves.
        answered = self._answered()
        if any(_ends_run(future.result()) for future in answered):
            self._record(answered)

    def _wait_for_all(self) -> None:
        while self._running() and not self.sender.hard_stop.is_set():
            wait(self._running(), timeout=POLL_SECONDS)

    def _submit(self, pool: ThreadPoolExecutor, number: int, batch: list[QueuedRow]) -> None:
        reuse = self.settings.reuse or any(row.reuse for row in batch)
        label = f"{self.run_id}.{number}"
        self.summary.batches += 1
        if self.sender.dry_run is not None:
            self.sender.dry_run(label, reuse, [row.payload for row in batch])
            return
        # The rows are `sending` on disk before the batch leaves; the batches that
        # ended meanwhile are recorded in the same transaction (one sync).
        self._record(self._answered(), sending=[row.id for row in batch])
        future = pool.submit(
            subscribe_batch,
            self.sender.client,
            self.settings.engagement_id,
            [Subscriber(row.id, row.payload) for row in batch],
            reuse=reuse,
            policy=self.policy,
            label=label,
        )
        self.in_flight[future] = _InFlight(number, label, batch)

    def _record(
        self, answered: Sequence[Future[BatchOutcome]], *, sending: Sequence[int] = ()
    ) -> None:
        """Record answered batches (and mark a new batch ``sending``) in one transaction."""
        if not answered and not sending:
            return
        outcomes = [(self.in_flight[future], future.result()) for future in answered]
        with self.ledger.transaction():
            if sending:
                self.ledger.mark_sending(sending, self.run_id)
            for batch, outcome in outcomes:
                _settle(self.ledger, self.run_id, batch.label, outcome)
        # Committed: only now are these batches off the books.
        for future, (batch, outcome) in zip(answered, outcomes, strict=True):
            del self.in_flight[future]
            self._learn(batch, outcome)

    def _learn(self, batch: _InFlight, outcome: BatchOutcome) -> None:
        self.summary.attempts += len(outcome.attempts)
        self.summary.retries += max(0, len(outcome.attempts) - 1)
        self.breaker.record(not outcome.unavailable)
        self.limit.record(outcome)
        self.refused = self.refused or outcome.refused
        self.stop_reason = self.stop_reason or (outcome.stop_reason or "")
        self.sender.progress.advance(len(batch.rows))

    def _record_what_arrived(self) -> None:
        """After an error: wait for the batches in flight (unless stopping at once), record all.

        Each batch is recorded on its own, so that one that cannot be recorded
        does not cost the others.
        """
        if not isinstance(sys.exc_info()[1], KeyboardInterrupt):
            self._wait_for_all()
        for future in self._answered():
            batch = self.in_flight[future]
            try:
                self._record([future])
            except Exception as error:  # noqa: BLE001 - the first error is re-raised
                log.error(
                    "batch %s (%d rows) could not be recorded (%s): its rows stay in flight "
                    "and are re-sent with contact reuse by the next run",
                    batch.label,
                    len(batch.rows),
                    error,
                )

    def _conclude(self) -> None:
        summary = self.summary
        summary.abandoned = len(self.in_flight)
        if self.refused:
            summary.stopped = str(self.refused)
        elif self.stop_reason:
            summary.stopped = self.stop_reason
        elif self.breaker.tripped:
            summary.stopped = (
                f"The API failed {self.breaker.count} batches in a row even after retries: "
                "sending stopped; run `bulkimport retry` when it is back."
            )
        elif summary.abandoned:
            summary.stopped = (
                f"Stopped at once: {summary.abandoned} batch(es) were still waiting for an "
                "answer; `bulkimport retry` re-sends their rows with contact reuse."
            )
        elif self.sender.stop.is_set():
            summary.stopped = (
                "Stopped on request: `bulkimport retry` (or the same command) sends the rest."
            )
        summary.refused = self.refused is not None
        summary.refused_status = self.refused.status if self.refused else None
        summary.refused_cause = self.refused.cause if self.refused else None
        summary.unavailable = self.breaker.tripped or bool(self.stop_reason)


def _ends_run(outcome: BatchOutcome) -> bool:
    return bool(outcome.refused or outcome.unavailable or outcome.stop_reason)


def _settle(ledger: Ledger, run_id: int, label: str, outcome: BatchOutcome) -> None:
    settlements = [
        Settlement(
            o.key, o.status, o.contact_id, o.reason, maybe_sent=o.status is RowStatus.UNKNOWN
        )
        for o in outcome.rows
    ]
    attempts = [
        AttemptRecord(
            batch=label,
            started_at=a.result.started_at,
            status_code=a.result.status_code,
            kind=a.result.kind.value,
            duration=a.result.duration,
            reuse=a.reuse,
            row_count=len(a.keys),
            message=a.result.message[:500],
        )
        for a in outcome.attempts
    ]
    ledger.settle(settlements, attempts, run_id)


class ConcurrencyLimit:
    """Batches allowed in flight: halved when the API says slow down, regained slowly (AIMD)."""

    def __init__(self, ceiling: int, *, regain_after: int = 4) -> None:
        self.ceiling = ceiling
        self.current = ceiling
        self._regain_after = regain_after
        self._calm = 0

    def record(self, outcome: BatchOutcome) -> None:
        throttled = any(a.result.status_code == 429 for a in outcome.attempts)
        if throttled:
            self.current = max(1, self.current // 2)
            self._calm = 0
            log.info("the API asked to slow down: %d batch(es) in flight", self.current)
            return
        self._calm += 1
        if self._calm >= self._regain_after and self.current < self.ceiling:
            self.current += 1
            self._calm = 0


class ConsecutiveFailures:
    """Counts batches in a row that ended unavailable; trips after ``limit`` of them.

    Only the send loop's own thread records into it, in the order batches left.
    """

    def __init__(self, limit: int = 3) -> None:
        self.limit = limit
        self.count = 0

    def record(self, ok: bool) -> None:
        """Record how a batch ended: ``ok`` resets the count, a failure adds one."""
        self.count = 0 if ok else self.count + 1

    @property
    def tripped(self) -> bool:
        """Return whether ``limit`` batches in a row ended unavailable."""
        return self.count >= self.limit
