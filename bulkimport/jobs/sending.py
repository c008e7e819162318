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
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from bulkimport.contacts import RowStatus
from bulkimport.errors import ApiRefused
from bulkimport.jobs.summary import RunSummary
from bulkimport.ledger.states import SENDABLE
from bulkimport.ledger.store import (
    PAGE,
    AttemptRecord,
    Ledger,
    QueuedRow,
    Settlement,
)
from bulkimport.output.progress import NoProgress, PacedProgress, Progress
from bulkimport.send.batch import BatchOutcome, Subscriber, SubscriptionApi, subscribe_batch
from bulkimport.send.pacing import TokenBucket
from bulkimport.send.retry import RetryPolicy
from bulkimport.send.windows import Clock, Opening, SendWindow, Zones, utc_now
from bulkimport.settings import MAX_WAIT_SECONDS, UnknownPolicy
from bulkimport.settings import SendSettings as SendSettings  # callers import it from here too

log = logging.getLogger(__name__)
# What --wait says while it waits; the CLI shows these lines at the default verbosity.
WAIT_LOG = logging.getLogger("bulkimport.jobs.waiting")

POLL_SECONDS = 0.1  # how often the send loop looks for a stop at once while answers are awaited
NOT_SENT = "the run stopped before this row's batch left"
PACE_STEP_SECONDS = 1.0  # a paced loop records the answers that arrived at least this often
LIMITED = "left pending by --limit {limit}: `bulkimport retry` sends it"

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
    clock: Clock = utc_now  # an aware "now": send windows and pacing read it
    pause: Callable[[float], None] | None = None  # how to wait (None: on the stop event)
    limit: int | None = None  # at most this many people in this command (--limit)
    wait_for_window: bool = False  # stay and send as windows open (--wait)
    confirm: Callable[[SendPreview], bool] | None = None  # asked before the first request

    def wait(self, seconds: float) -> bool:
        """Wait ``seconds`` or until a stop request; return whether a stop came.

        Never a blind sleep: the real wait is on the stop event, so Ctrl-C or
        SIGTERM ends it at once; an injected ``pause`` (a test clock) is not
        called once a stop is requested.
        """
        if self.pause is None:
            return self.stop.wait(max(0.0, seconds))
        if not self.stop.is_set():
            self.pause(max(0.0, seconds))
        return self.stop.is_set()


@dataclass(frozen=True)
class SendPreview:
    """What a command is about to do, for the question asked before the first request."""

    people: int
    engagement_id: int
    host: str
    window: str | None = None
    per_minute: int | None = None
    limit: int | None = None

    def describe(self) -> str:
        """Return the sentence the question asks about."""
        people = f"{self.people:,} {'person' if self.people == 1 else 'people'}"
        if self.limit is not None and self.limit < self.people:
            people = f"{self.limit:,} of {people} (--limit {self.limit:,})"
        text = (
            f"About to subscribe {people} to engagement {self.engagement_id} at "
            f"{self.host}; each gets the SMS or call at once"
        )
        if self.window:
            text += f", only inside the send window {self.window}"
        if self.per_minute:
            text += f", at most {self.per_minute:,} a minute"
        return text + "."


@dataclass
class _Allowance:
    """How many more people this command may send (--limit), across the rounds of a wait."""

    left: int | None

    def take(self) -> bool:
        if self.left is None:
            return True
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def _batches(
    queued: Iterator[tuple[QueuedRow, Zones]], settings: SendSettings, size: int
) -> Iterator[tuple[Zones, list[QueuedRow]]]:
    """Group rows into batches of one kind: existing or new, reuse on or off, same zones.

    Rows of one batch share their time zones, so a send window is open or closed
    for the whole batch at once.
    """
    open_batches: dict[tuple[bool, bool, Zones], list[QueuedRow]] = {}
    for row, zones in queued:
        key = (row.existing, settings.reuse or row.reuse, zones)
        batch = open_batches.setdefault(key, [])
        batch.append(row)
        if len(batch) >= size:
            yield zones, open_batches.pop(key)
    yield from ((key[2], batch) for key, batch in open_batches.items() if batch)


def send_rows(
    ledger: Ledger,
    queued: Iterator[QueuedRow],
    total: int,
    settings: SendSettings,
    sender: Sender,
    summary: RunSummary,
) -> None:
    """Send the queued rows on a bounded pool, recording each batch as it ends.

    Rows outside their send window wait as ``pending``; with ``wait_for_window``
    the loop stays (holding the ledger's lock) and sends them as windows open,
    until none waits, a stop is requested, or a day has passed.
    """
    if not _confirmed(settings, sender, summary, total):
        return
    allowance = _Allowance(sender.limit)
    loop = _SendLoop(ledger, settings, sender, summary, allowance)
    loop.run(queued, total)
    deadline = sender.clock() + timedelta(seconds=MAX_WAIT_SECONDS)
    waits = sender.wait_for_window and sender.dry_run is None  # a dry run never waits
    while waits and loop.waiting_ids and not _stopped(summary, sender):
        opening = summary.next_opening()
        if opening is None or opening > deadline:
            summary.stopped = (
                "Stopped waiting: no send window opens within a day; "
                f"{summary.waiting_rows:,} row(s) wait: {summary.resume_with}."
            )
            break
        WAIT_LOG.info(
            "%d row(s) wait for their send window (opens %s): resuming at %s",
            summary.waiting_rows,
            ", ".join(sorted(summary.waiting)),
            opening.isoformat(timespec="minutes"),
        )
        if sender.wait((opening - sender.clock()).total_seconds()):
            summary.stopped = (
                "Stopped on request while waiting for the send window: "
                f"{summary.waiting_rows:,} row(s) wait: {summary.resume_with}."
            )
            break
        rows = ledger.queued_by_ids(loop.waiting_ids, SENDABLE)
        WAIT_LOG.info("the send window opened: sending %d row(s) that waited", len(rows))
        summary.clear_waiting()
        loop = _SendLoop(ledger, settings, sender, summary, allowance)
        loop.run(iter(rows), len(rows))


def _stopped(summary: RunSummary, sender: Sender) -> bool:
    return bool(summary.refused or summary.unavailable or summary.stopped or sender.stop.is_set())


def _confirmed(settings: SendSettings, sender: Sender, summary: RunSummary, total: int) -> bool:
    """Ask before the first request, when the command asks; a no sends nothing."""
    if sender.confirm is None or sender.dry_run is not None or total == 0:
        return True
    window = SendWindow.from_settings(settings)
    preview = SendPreview(
        people=total,
        engagement_id=settings.engagement_id,
        host=urlsplit(settings.api_url).netloc or settings.api_url,
        window=window.describe() if window else None,
        per_minute=settings.max_per_minute,
        limit=sender.limit,
    )
    if sender.confirm(preview):
        return True
    summary.declined = True
    summary.stopped = (
        "Nothing was sent: the answer was not yes. The rows are recorded as pending; "
        "`bulkimport retry` (or the same command) sends them."
    )
    return False


@dataclass(frozen=True)
class _InFlight:
    number: int  # batches settle in the order they left (7.9 before 7.10)
    label: str
    rows: list[QueuedRow]
    zones: Zones = ()


class _SendLoop:
    """One send loop: batches out on a pool, answers recorded by this thread only.

    Whatever ends the loop (the end of the rows, a refusal, a stop request, an
    error in the ledger), every answer that arrived is recorded before it returns
    or raises. A stop at once (a second Ctrl-C or SIGTERM) does not wait for the
    batches in flight: their rows stay ``sending`` and become ``unknown`` on the
    next start, to be re-sent with contact reuse.
    """

    def __init__(
        self,
        ledger: Ledger,
        settings: SendSettings,
        sender: Sender,
        summary: RunSummary,
        allowance: _Allowance | None = None,
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
        self.window = SendWindow.from_settings(settings)
        self.allowance = allowance or _Allowance(sender.limit)
        self.waiting_ids: list[int] = []  # rows whose window was closed, for a wait's next round
        self._held: dict[str, list[int]] = {}  # reason: rows to give it, written a page at a time
        self.batch_size = settings.batch_size
        self.bucket: TokenBucket | None = None
        if settings.max_per_minute is not None and sender.dry_run is None:
            # A batch larger than a minute's worth shrinks to fit the pace.
            self.batch_size = min(settings.batch_size, settings.max_per_minute)
            self.bucket = TokenBucket(
                settings.max_per_minute, self.batch_size, lambda: sender.clock().timestamp()
            )
            summary.per_minute = settings.max_per_minute
            if isinstance(sender.progress, PacedProgress):
                sender.progress.pace(settings.max_per_minute)

    def run(self, queued: Iterator[QueuedRow], total: int) -> None:
        self.sender.progress.begin(total)
        pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="send")
        ready: list[QueuedRow] = []  # marked `sending`, waiting for a slot
        try:
            admitted = self._admitted(queued)
            for number, (zones, batch) in enumerate(
                _batches(admitted, self.settings, self.batch_size), start=1
            ):
                # The next batch is `sending` on disk before a slot frees (with the answers
                # that arrived meanwhile, one sync), so a freed slot is refilled at once.
                self._mark_sending(batch)
                ready = batch
                self._wait_for_a_slot()
                if self._must_stop():
                    break
                self._pace(len(batch))
                if self._must_stop():
                    break
                self._submit(pool, number, batch, zones)
                ready = []
            self._release(ready)
            self._hold_what_waits()
            self._wait_for_all()
            self._record(self._answered())
        except BaseException:
            self._record_what_arrived()
            self._release_quietly(ready)
            raise
        finally:
            # Never wait here: after a stop at once the batches in flight are left behind.
            pool.shutdown(wait=False, cancel_futures=True)
            self.sender.progress.end()
        self._conclude()

    def _admitted(self, queued: Iterator[QueuedRow]) -> Iterator[tuple[QueuedRow, Zones]]:
        """Yield the rows that may go now; those outside their window or the limit wait."""
        window = self.window
        for row in queued:
            zones = window.zones_of(row.payload) if window is not None else ()
            if window is not None:
                now = self.sender.clock()
                if not window.is_open(zones, now):
                    self._wait(row.id, row.status, window.next_opening(zones, now))
                    continue
            if not self.allowance.take():
                self.summary.limited += 1
                self._hold(row.id, LIMITED.format(limit=self.sender.limit))
                continue
            yield row, zones

    def _wait(self, row_id: int, status: RowStatus, opening: Opening) -> None:
        self.summary.add_waiting(opening, pending=status is RowStatus.PENDING)
        self.waiting_ids.append(row_id)
        self._hold(row_id, opening.reason())

    def _hold(self, row_id: int, reason: str) -> None:
        held = self._held.setdefault(reason, [])
        held.append(row_id)
        if len(held) >= PAGE:
            self.ledger.hold(self._held.pop(reason), reason)

    def _hold_what_waits(self) -> None:
        for reason, row_ids in self._held.items():
            self.ledger.hold(row_ids, reason)
        self._held.clear()

    def _pace(self, people: int) -> None:
        """Wait until the pace lets ``people`` more go, recording answers meanwhile."""
        bucket = self.bucket
        if bucket is None:
            return
        while (delay := bucket.wait_for(people)) > 0:
            self._record(self._answered())
            if self.sender.wait(min(delay, PACE_STEP_SECONDS)):
                return
        bucket.take(people)

    def _gate(self, zones: Zones) -> str | None:
        """Return why a batch must not be sent now (its window closed), or None."""
        assert self.window is not None
        now = self.sender.clock()
        if self.window.is_open(zones, now):
            return None
        return self.window.next_opening(zones, now).reason()

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

    def _submit(
        self, pool: ThreadPoolExecutor, number: int, batch: list[QueuedRow], zones: Zones
    ) -> None:
        reuse = self.settings.reuse or any(row.reuse for row in batch)
        label = f"{self.run_id}.{number}"
        self.summary.batches += 1
        self.summary.handed += len(batch)
        if self.sender.dry_run is not None:
            self.sender.dry_run(label, reuse, [row.payload for row in batch])
            return
        # The rows are `sending` on disk already (`_mark_sending`): the batch leaves now.
        future = pool.submit(
            subscribe_batch,
            self.sender.client,
            self.settings.engagement_id,
            [Subscriber(row.id, row.payload) for row in batch],
            reuse=reuse,
            policy=self.policy,
            label=label,
            gate=partial(self._gate, zones) if self.window is not None else None,
            resend_unknown=self.settings.unknown is UnknownPolicy.RESEND,
        )
        self.in_flight[future] = _InFlight(number, label, batch, zones)

    def _mark_sending(self, batch: Sequence[QueuedRow]) -> None:
        """Commit a batch's rows as ``sending``, with the answers that arrived meanwhile."""
        if self.sender.dry_run is None:
            self._record(self._answered(), sending=[row.id for row in batch])

    def _release(self, batch: Sequence[QueuedRow]) -> None:
        """Put back to ``pending`` a batch marked ``sending`` that never left (the run stopped)."""
        if not batch or self.sender.dry_run is not None:
            return
        # Each row goes back to the state it was sent from (an unknown row stays maybe-sent).
        settlements = [
            Settlement(
                row.id,
                row.status,
                None,
                NOT_SENT,
                maybe_sent=row.status is RowStatus.UNKNOWN,
            )
            for row in batch
        ]
        self.ledger.settle(settlements, [], self.run_id)

    def _release_quietly(self, batch: Sequence[QueuedRow]) -> None:
        """After an error: release what can be; rows left ``sending`` are re-sent with reuse."""
        try:
            self._release(batch)
        except Exception as error:  # noqa: BLE001 - the first error is re-raised
            log.error("a batch that never left stays sending (%s): re-sent with reuse", error)

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
        if outcome.window_closed and self.window is not None:
            # The window closed while the batch waited (a backoff, a full pool).
            opening = self.window.next_opening(batch.zones, self.sender.clock())
            for row in outcome.rows:
                if row.reason == outcome.window_closed:
                    self.summary.add_waiting(opening, pending=row.status is RowStatus.PENDING)
                    self.waiting_ids.append(row.key)
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
