"""Run the import stages for `run` and `retry`: record, plan, send, settle.

One thread (the caller's) owns the ledger; worker threads only talk HTTP.
A batch's rows are committed as ``sending`` before the batch is handed to a
worker, and its outcome is recorded when the worker returns.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bulkimport.contacts import RowStatus
from bulkimport.errors import ApiRefused, ExitCode, InputError, RefusalCause, worst
from bulkimport.ledger.states import NEEDS_ATTENTION, SENDABLE
from bulkimport.ledger.store import (
    PAGE,
    AttemptRecord,
    Ledger,
    NewRow,
    QueuedRow,
    Settlement,
)
from bulkimport.read.sources import fingerprint
from bulkimport.rows.duplicates import batched
from bulkimport.rows.prepare import (
    CheckedRow,
    ImportOptions,
    MappedSource,
    Verdict,
    checked_rows,
    open_sources,
)
from bulkimport.send.batch import BatchOutcome, Subscriber, subscribe_batch
from bulkimport.send.client import EngageSparkClient
from bulkimport.send.retry import ConsecutiveFailures, RetryPolicy
from bulkimport.settings import SendSettings as SendSettings  # callers import it from here too

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1  # how often the send loop looks for a stop at once while answers are awaited


class Progress(Protocol):
    """Where the pipeline reports rows done (a progress bar, log lines, or nothing)."""

    def begin(self, total: int) -> None: ...  # 0 when not known in advance
    def advance(self, rows: int) -> None: ...
    def end(self) -> None: ...


class NoProgress:
    def begin(self, total: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass

    def end(self) -> None:
        pass


DryRunSink = Callable[[str, bool, list[dict[str, Any]]], None]


@dataclass
class RunSummary:
    """What a run or retry did, for the summary, the JSON line and the exit code."""

    command: str
    engagement_id: int
    run_id: int | None = None
    counts: Counter[str] = field(default_factory=Counter)
    source_ids: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    batches: int = 0
    attempts: int = 0
    retries: int = 0
    recovered: int = 0
    stopped: str = ""  # why sending stopped early, in a sentence
    incomplete: list[str] = field(default_factory=list)  # files not read to their end
    abandoned: int = 0  # batches left in flight by a stop at once (their rows: sending)
    problems: list[str] = field(default_factory=list)  # e.g. the results file failed
    touched: Counter[str] = field(default_factory=Counter)  # rows this run recorded or sent
    refused: bool = False
    refused_status: int | None = None  # 401 key, 402 funds, 403 organization, 404 engagement
    refused_cause: RefusalCause | None = None
    unavailable: bool = False
    exit_code: ExitCode = ExitCode.OK
    dry_run: bool = False
    duration: float = 0.0

    def decide_exit_code(self) -> None:
        """Set the exit code from what happened: the worst of refusal, outage, open rows."""
        attention = (
            any(self.counts[s] for s in NEEDS_ATTENTION)
            or self.stopped
            or self.incomplete
            or self.problems
        )
        self.exit_code = worst(
            code
            for code, happened in (
                (ExitCode.API_REFUSED, self.refused),
                (ExitCode.API_UNAVAILABLE, self.unavailable),
                (ExitCode.ROWS_NEED_ATTENTION, attention),
            )
            if happened
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "run": self.run_id,
            "engagement": self.engagement_id,
            "files": self.files,
            "rows": dict(self.counts),
            "batches": self.batches,
            "attempts": self.attempts,
            "retries": self.retries,
            "recovered": self.recovered,
            "stopped": self.stopped or None,
            "incomplete": self.incomplete,
            "problems": self.problems,
            "dry_run": self.dry_run,
            "duration_seconds": round(self.duration, 3),
            "exit_code": int(self.exit_code),
        }


@dataclass
class Sender:
    """Everything a send loop needs besides the rows."""

    client: EngageSparkClient
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    progress: Progress = field(default_factory=NoProgress)
    stop: threading.Event = field(default_factory=threading.Event)  # finish what is in flight
    hard_stop: threading.Event = field(default_factory=threading.Event)  # stop at once
    dry_run: DryRunSink | None = None
    failures_to_stop: int = 3


def resolve_custom_fields(
    sources: Sequence[MappedSource], client: EngageSparkClient
) -> dict[str, dict[str, int]]:
    """Return, per source, {custom field id: column}, resolving names through the API."""
    resolved: dict[str, dict[str, int]] = {}
    for source in sources:
        columns = {}
        for name, column in source.mapping.custom.items():
            field_id = name if name.isdigit() else str(client.resolve_custom_field(name))
            columns[field_id] = column
        resolved[source.table.source] = columns
    return resolved


def run_import(
    paths: Sequence[Path],
    options: ImportOptions,
    settings: SendSettings,
    ledger: Ledger,
    sender: Sender,
    *,
    resubscribe: bool = False,
) -> RunSummary:
    """Record every row of ``paths`` in the ledger, then send the sendable ones.

    No request leaves before every row of every file is recorded: a file that
    breaks off halfway, or changes while it is read, sends nothing and leaves
    nothing a later `retry` could send. A stop while reading leaves the files
    marked incomplete (every command says so); the same command continues.
    """
    started = time.monotonic()
    summary = RunSummary("run", settings.engagement_id, dry_run=sender.dry_run is not None)
    summary.recovered = ledger.recover_interrupted()
    with open_sources(paths, options) as sources:
        custom = resolve_custom_fields(sources, sender.client) if _has_custom(sources) else {}
        summary.run_id = ledger.start_run("run", settings.engagement_id, settings.to_json())
        summary.files = [s.table.source for s in sources]
        before = {s.table.source: _look(Path(s.table.source)) for s in sources}
        source_ids = _register_sources(ledger, summary.run_id, settings.engagement_id, sources)
        summary.source_ids = list(source_ids.values())
        try:
            complete = _record(
                ledger,
                summary.run_id,
                settings.engagement_id,
                source_ids,
                checked_rows(sources, options, custom_fields=custom),
                resubscribe=resubscribe,
                stop=sender.stop,
            )
            if complete:
                _refuse_changed(sources, before)
        except InputError:
            ledger.forget_unsent_rows(summary.run_id, summary.source_ids)
            ledger.finish_run(summary.run_id, int(ExitCode.USAGE))
            raise
    if complete:
        for source_id in summary.source_ids:
            ledger.complete_source(source_id)
        queued = ledger.queued_rows(
            engagement_id=settings.engagement_id, source_ids=summary.source_ids
        )
        total = ledger.count_queued(settings.engagement_id, summary.source_ids)
        _send(ledger, queued, total, settings, sender, summary)
    else:
        summary.stopped = (
            "Stopped on request while reading the files: nothing was sent; run the same "
            "command again to record the rest and send."
        )
    summary.incomplete = [i.describe() for i in ledger.incomplete_sources(summary.source_ids)]
    summary.counts = ledger.counts(source_ids=summary.source_ids)
    return _finish(ledger, summary, started)


def retry_rows(
    ledger: Ledger,
    settings: SendSettings,
    sender: Sender,
    *,
    run_id: int | None = None,
    include_rejected: bool = False,
) -> RunSummary:
    """Send again the rows of one engagement that are pending or unknown (and failed, if asked).

    Files a stopped run did not read to the end are named in ``incomplete``:
    their recorded rows are sent, and the summary never calls them settled.
    """
    started = time.monotonic()
    summary = RunSummary("retry", settings.engagement_id, dry_run=sender.dry_run is not None)
    summary.recovered = ledger.recover_interrupted()
    statuses = (*SENDABLE, RowStatus.FAILED) if include_rejected else SENDABLE
    source_ids = ledger.sources_of(run_id) if run_id is not None else None
    summary.run_id = ledger.start_run("retry", settings.engagement_id, settings.to_json())
    queued = list(
        ledger.queued_rows(
            engagement_id=settings.engagement_id, statuses=statuses, source_ids=source_ids
        )
    )
    touched = ledger.sources_of_rows([row.id for row in queued])
    ledger.link_sources(summary.run_id, touched)
    summary.source_ids = touched
    _send(ledger, iter(queued), len(queued), settings, sender, summary)
    summary.counts = ledger.counts(row_ids=[row.id for row in queued])
    summary.incomplete = [
        i.describe()
        for i in ledger.incomplete_sources(source_ids)
        if i.engagement_id == settings.engagement_id
    ]
    return _finish(ledger, summary, started)


def _finish(ledger: Ledger, summary: RunSummary, started: float) -> RunSummary:
    summary.decide_exit_code()
    summary.duration = time.monotonic() - started
    if summary.run_id is not None:
        summary.touched = ledger.counts(touched_by=summary.run_id)
        ledger.finish_run(summary.run_id, int(summary.exit_code))
    return summary


def _has_custom(sources: Sequence[MappedSource]) -> bool:
    return any(source.mapping.custom for source in sources)


def _register_sources(
    ledger: Ledger, run_id: int, engagement_id: int, sources: Sequence[MappedSource]
) -> dict[str, int]:
    """Return a ledger source id per input: an unfinished earlier import of it, or a new one."""
    ids: dict[str, int] = {}
    for source in sources:
        table = source.table
        sha = fingerprint(Path(table.source))
        found = ledger.unfinished_source(sha, table.sheet, engagement_id)
        if found is None:
            found = ledger.add_source(
                run_id, engagement_id, table.source, sha, table.sheet, table.header
            )
        else:
            log.info("%s: continuing the earlier import of this file", table.source)
        ids[table.source] = found
    ledger.link_sources(run_id, list(ids.values()))
    return ids


def _look(path: Path) -> tuple[int, int] | None:
    """Return a file's size and modification time, to notice it changing while read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _refuse_changed(
    sources: Sequence[MappedSource], before: Mapping[str, tuple[int, int] | None]
) -> None:
    """Raise InputError when a file changed between its fingerprint and its last row."""
    for source in sources:
        name = source.table.source
        if _look(Path(name)) != before[name]:
            raise InputError(
                f"{name} changed while it was being read: nothing was sent. Run again once "
                "the program writing it has finished."
            )


def _record(
    ledger: Ledger,
    run_id: int,
    engagement_id: int,
    source_ids: Mapping[str, int],
    rows: Iterable[CheckedRow],
    *,
    resubscribe: bool,
    stop: threading.Event,
) -> bool:
    """Record checked rows a chunk at a time; return False when a stop request cut it short.

    Rows a resumed import recorded earlier keep their state.
    """
    for chunk in batched(rows, PAGE):
        if stop.is_set():
            return False
        by_source: dict[str, list[CheckedRow]] = {}
        for checked in chunk:
            by_source.setdefault(checked.source_row.source, []).append(checked)
        for source, checked_list in by_source.items():
            source_id = source_ids[source]
            handled: dict[str, str] = {}
            if not resubscribe:
                identities = [
                    c.contact.identity
                    for c in checked_list
                    if c.verdict is Verdict.VALID and c.contact
                ]
                handled = ledger.already_handled(
                    engagement_id, identities, exclude_source=source_id
                )
            ledger.record_rows(
                source_id, run_id, engagement_id, [_new_row(c, handled) for c in checked_list]
            )
    return True


def _new_row(checked: CheckedRow, handled: Mapping[str, str]) -> NewRow:
    contact = checked.contact
    row = checked.source_row
    if contact is None or checked.verdict is not Verdict.VALID:
        status = RowStatus.INVALID if checked.verdict is Verdict.INVALID else RowStatus.DUPLICATE
        return NewRow(
            row.row, status, row.cells, phone=checked.phone or None, reason=checked.reason
        )
    reason = handled.get(contact.identity)
    return NewRow(
        row.row,
        RowStatus.SKIPPED if reason else RowStatus.PENDING,
        row.cells,
        identity=contact.identity,
        phone=contact.phone,
        contact_id=contact.contact_id,
        reason=reason or "",
        payload=contact.payload(),
    )


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


def _send(
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
