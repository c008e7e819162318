"""Run the import stages for `run` and `retry`: record, plan, send, settle.

One thread (the caller's) owns the ledger; worker threads only talk HTTP.
A batch's rows are committed as ``sending`` before the batch is handed to a
worker, and its outcome is recorded when the worker returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bulkimport.api import DEFAULT_API_URL, EngageSparkClient
from bulkimport.contacts import RowStatus
from bulkimport.errors import ApiRefused, ExitCode, InputError
from bulkimport.ledger import (
    PAGE,
    SENDABLE,
    AttemptRecord,
    Ledger,
    NewRow,
    QueuedRow,
    Settlement,
)
from bulkimport.plan import batched
from bulkimport.retry import ConsecutiveFailures, RetryPolicy
from bulkimport.send import BatchOutcome, Subscriber, subscribe_batch
from bulkimport.sources import fingerprint, open_source
from bulkimport.validate import (
    CheckedRow,
    ImportOptions,
    MappedSource,
    Verdict,
    checked_rows,
    open_sources,
)

log = logging.getLogger(__name__)

NEEDS_ATTENTION = ("invalid", "duplicate", "failed", "unknown", "pending", "sending")


@dataclass(frozen=True)
class SendSettings:
    """How to talk to the API for one engagement (kept in the ledger, never the key)."""

    engagement_id: int
    api_url: str = DEFAULT_API_URL
    reuse: bool = True  # try_using_existing=newest; False creates a contact every time
    batch_size: int = 100
    concurrency: int = 2
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.concurrency < 1:
            raise InputError("--batch-size and --concurrency must be at least 1.")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, saved: Mapping[str, Any], **overrides: Any) -> SendSettings:
        """Return settings from a saved run, with the given non-None overrides."""
        known = {k: v for k, v in saved.items() if k in self.__dataclass_fields__}
        merged = {**asdict(self), **known, **{k: v for k, v in overrides.items() if v is not None}}
        return SendSettings(**merged)


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
    refused: bool = False
    refused_status: int | None = None  # 401 key, 402 funds, 403 organization, 404 engagement
    unavailable: bool = False
    exit_code: ExitCode = ExitCode.OK
    dry_run: bool = False
    duration: float = 0.0

    def decide_exit_code(self) -> None:
        if self.refused:
            self.exit_code = ExitCode.API_REFUSED
        elif self.unavailable:
            self.exit_code = ExitCode.API_UNAVAILABLE
        elif any(self.counts[s] for s in NEEDS_ATTENTION) or self.stopped:
            self.exit_code = ExitCode.ROWS_NEED_ATTENTION
        else:
            self.exit_code = ExitCode.OK

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
    stop: threading.Event = field(default_factory=threading.Event)
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
    """Record every row of ``paths`` in the ledger, then send the sendable ones."""
    started = time.monotonic()
    summary = RunSummary("run", settings.engagement_id, dry_run=sender.dry_run is not None)
    summary.recovered = ledger.recover_interrupted()
    with open_sources(paths, options) as sources:
        custom = resolve_custom_fields(sources, sender.client) if _has_custom(sources) else {}
        _read_through(sources, options)
        summary.run_id = ledger.start_run("run", settings.engagement_id, settings.to_json())
        summary.files = [s.table.source for s in sources]
        source_ids = _register_sources(ledger, summary.run_id, settings.engagement_id, sources)
        summary.source_ids = list(source_ids.values())
        queued = _record_and_queue(
            ledger,
            summary.run_id,
            settings.engagement_id,
            source_ids,
            checked_rows(sources, options, custom_fields=custom),
            resubscribe=resubscribe,
        )
        try:
            _send(ledger, queued, 0, settings, sender, summary)
            if not sender.stop.is_set():
                # Refused or API down: record the rest so `retry` can finish without
                # the file. (Stopped on request: the same command continues instead.)
                for _ in queued:
                    pass
        except InputError:
            # Not expected after _read_through; if a file still breaks off, its unsent
            # rows must not go out later with `retry`.
            ledger.forget_unsent_rows(summary.run_id, summary.source_ids)
            ledger.finish_run(summary.run_id, int(ExitCode.USAGE))
            raise
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
    """Send again the rows of one engagement that are pending or unknown (and failed, if asked)."""
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
    return _finish(ledger, summary, started)


def _finish(ledger: Ledger, summary: RunSummary, started: float) -> RunSummary:
    summary.decide_exit_code()
    summary.duration = time.monotonic() - started
    if summary.run_id is not None:
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


def _read_through(sources: Sequence[MappedSource], options: ImportOptions) -> None:
    """Read each text file to its end once, so that one breaking off halfway sends nothing.

    Workbooks need no such pass: they are loaded whole when opened.
    """
    for source in sources:
        if source.table.encoding is None:
            continue
        with open_source(Path(source.table.source), options.read) as table:
            for _ in table.rows:
                pass


def _record_and_queue(
    ledger: Ledger,
    run_id: int,
    engagement_id: int,
    source_ids: Mapping[str, int],
    rows: Iterable[CheckedRow],
    *,
    resubscribe: bool,
) -> Iterator[QueuedRow]:
    """Record checked rows a chunk at a time, yielding each chunk's sendable rows at once.

    So the first batch leaves after one chunk, and later chunks are read, checked
    and recorded while earlier batches are on the wire. A row is always recorded
    before it is queued; rows a resumed import recorded earlier are queued again
    when their chunk comes round.
    """
    for chunk in batched(rows, PAGE):
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
            yield from ledger.queued_rows(
                engagement_id=engagement_id,
                source_ids=[source_id],
                rows_between=(checked_list[0].source_row.row, checked_list[-1].source_row.row),
            )
    for source_id in source_ids.values():
        ledger.complete_source(source_id)


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
    assert summary.run_id is not None
    run_id = summary.run_id
    sender.progress.begin(total)
    breaker = ConsecutiveFailures(sender.failures_to_stop)
    limit = ConcurrencyLimit(settings.concurrency)
    refused: ApiRefused | None = None
    in_flight: dict[Future[BatchOutcome], tuple[str, list[QueuedRow]]] = {}
    done: set[Future[BatchOutcome]] = set()  # answered, not yet recorded

    def settle() -> None:
        nonlocal refused
        for future in sorted(done, key=lambda f: in_flight[f][0]):
            label, rows = in_flight.pop(future)
            outcome = future.result()
            _settle(ledger, run_id, label, outcome, summary)
            breaker.record(not outcome.unavailable)
            limit.record(outcome)
            refused = refused or outcome.refused
            sender.progress.advance(len(rows))
        done.clear()

    def wait_for_a_slot() -> None:
        while len(in_flight) - len(done) >= limit.current:
            running = [f for f in in_flight if f not in done]
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            done.update(finished)
        # A refusal or an outage must be seen before another batch leaves.
        if any(f.result().refused or f.result().unavailable for f in done):
            settle()

    try:
        with ThreadPoolExecutor(settings.concurrency, thread_name_prefix="send") as pool:
            for number, batch in enumerate(_batches(queued, settings), start=1):
                wait_for_a_slot()
                if refused or breaker.tripped or sender.stop.is_set():
                    break
                reuse = settings.reuse or any(row.reuse for row in batch)
                label = f"{run_id}.{number}"
                if sender.dry_run is not None:
                    sender.dry_run(label, reuse, [row.payload for row in batch])
                    summary.batches += 1
                    continue
                with ledger.transaction():  # committed before the batch leaves
                    ledger.mark_sending([row.id for row in batch])
                    settle()  # the batches that ended meanwhile
                subscribers = [Subscriber(row.id, row.payload) for row in batch]
                future = pool.submit(
                    subscribe_batch,
                    sender.client,
                    settings.engagement_id,
                    subscribers,
                    reuse=reuse,
                    policy=sender.policy,
                    label=label,
                )
                in_flight[future] = (label, batch)
                summary.batches += 1
            done.update(in_flight)
            wait(in_flight)
            settle()
    finally:
        sender.progress.end()
    if refused:
        summary.stopped = str(refused)
    elif breaker.tripped:
        summary.stopped = (
            f"The API failed {breaker.count} batches in a row even after retries: "
            "sending stopped; run `bulkimport retry` when it is back."
        )
    elif sender.stop.is_set():
        summary.stopped = "Stopped on request: run the same command again to continue."
    summary.refused = refused is not None
    summary.refused_status = refused.status if refused else None
    summary.unavailable = breaker.tripped


def _settle(
    ledger: Ledger, run_id: int, label: str, outcome: BatchOutcome, summary: RunSummary
) -> None:
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
    summary.attempts += len(outcome.attempts)
    summary.retries += max(0, len(outcome.attempts) - 1)


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
