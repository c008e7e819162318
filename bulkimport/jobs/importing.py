"""Run the import stages for `run` and `retry`: record every row, then send from the ledger."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from bulkimport.contacts import RowStatus
from bulkimport.errors import ExitCode, InputError
from bulkimport.jobs.sending import Sender, send_rows
from bulkimport.jobs.summary import RunSummary
from bulkimport.ledger.states import sendable_states
from bulkimport.ledger.store import (
    PAGE,
    Handled,
    KeptRow,
    Ledger,
    NewRow,
)
from bulkimport.ledger.versions import Carryover
from bulkimport.read.sources import SourceInput, fingerprint_of
from bulkimport.rows.chunks import batched
from bulkimport.rows.prepare import (
    CheckedRow,
    ImportOptions,
    MappedSource,
    Verdict,
    checked_rows,
    open_sources,
)
from bulkimport.send.batch import SubscriptionApi
from bulkimport.settings import SendSettings, UnknownPolicy

log = logging.getLogger(__name__)


def resolve_custom_fields(
    sources: Sequence[MappedSource], client: SubscriptionApi
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
    paths: Sequence[SourceInput],
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
    settings = settings.keeping_window(ledger.last_settings(settings.engagement_id))
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
        statuses = sendable_states(unknown=settings.unknown is UnknownPolicy.RESEND)
        queued = ledger.queued_rows(
            engagement_id=settings.engagement_id, source_ids=summary.source_ids, statuses=statuses
        )
        total = ledger.count_queued(settings.engagement_id, summary.source_ids, statuses)
        send_rows(ledger, queued, total, settings, sender, summary)
    else:
        summary.stopped = (
            "Stopped on request while reading the files: nothing was sent; run the same "
            "command again to record the rest and send."
        )
    summary.incomplete = [i.describe() for i in ledger.incomplete_sources(summary.source_ids)]
    summary.counts = ledger.counts(source_ids=summary.source_ids)
    holds = settings.unknown is UnknownPolicy.HOLD
    return _finish(ledger, summary, started, holds_unknown=holds)


def retry_rows(
    ledger: Ledger,
    settings: SendSettings,
    sender: Sender,
    *,
    run_id: int | None = None,
    include_rejected: bool = False,
    include_unknown: bool = False,
) -> RunSummary:
    """Send again the rows of one engagement that are pending or unknown (and failed, if asked).

    Files a stopped run did not read to the end are named in ``incomplete``:
    their recorded rows are sent, and the summary never calls them settled.
    """
    started = time.monotonic()
    settings = settings.keeping_window(ledger.last_settings(settings.engagement_id))
    summary = RunSummary("retry", settings.engagement_id, dry_run=sender.dry_run is not None)
    summary.recovered = ledger.recover_interrupted()
    statuses = sendable_states(
        unknown=include_unknown or settings.unknown is UnknownPolicy.RESEND,
        rejected=include_rejected,
    )
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
    send_rows(ledger, iter(queued), len(queued), settings, sender, summary)
    summary.counts = ledger.counts(row_ids=[row.id for row in queued])
    summary.incomplete = [
        i.describe()
        for i in ledger.incomplete_sources(source_ids)
        if i.engagement_id == settings.engagement_id
    ]
    return _finish(ledger, summary, started, holds_unknown=RowStatus.UNKNOWN not in statuses)


def _finish(
    ledger: Ledger, summary: RunSummary, started: float, *, holds_unknown: bool = False
) -> RunSummary:
    if holds_unknown:  # left for a person: say how many, whichever run left them
        summary.unknown_held = ledger.count_in_state(summary.engagement_id, RowStatus.UNKNOWN)
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
        sha = fingerprint_of(table)
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

    A row identical to one of the file's previous version is kept by
    reference, with its state; rows a resumed import recorded earlier keep
    theirs. With ``resubscribe`` every row is recorded anew, to be sent again.
    """
    versions = {
        source_id: _Version(ledger, source_id, keep=not resubscribe)
        for source_id in source_ids.values()
    }
    for chunk in batched(rows, PAGE):
        if stop.is_set():
            return False
        by_source: dict[str, list[CheckedRow]] = {}
        for checked in chunk:
            by_source.setdefault(checked.source_row.source, []).append(checked)
        for source, checked_list in by_source.items():
            source_id = source_ids[source]
            version = versions[source_id]
            fresh = [_new_row(c) for c in checked_list if c.source_row.row > version.upto]
            kept = [version.carryover.keep(row) for row in fresh]
            handled: dict[str, Handled] = {}
            if not resubscribe:
                identities = [
                    row.identity
                    for row, keeps in zip(fresh, kept, strict=True)
                    if keeps is None and row.identity and row.status is RowStatus.PENDING
                ]
                handled = ledger.already_handled(
                    engagement_id,
                    identities,
                    exclude_source=source_id,
                    exclude_rows={k.row_id for k in kept if k is not None},
                )
            ledger.record_rows(
                source_id,
                run_id,
                engagement_id,
                [
                    keeps or _unless_handled(row, handled)
                    for row, keeps in zip(fresh, kept, strict=True)
                ],
            )
    return True


class _Version:
    """A version being recorded: where a resumed import goes on, and what it may keep."""

    def __init__(self, ledger: Ledger, source_id: int, *, keep: bool) -> None:
        held = {member.row_id for member in ledger.members(source_id)}
        self.upto = ledger.recorded_upto(source_id)
        base = ledger.base_of(source_id) if keep else None
        self.carryover = Carryover(ledger, base, taken=held)


def _new_row(checked: CheckedRow) -> NewRow:
    """Return a checked row as the ledger first records it: a verdict, or pending."""
    contact = checked.contact
    row = checked.source_row
    if contact is None or checked.verdict is not Verdict.VALID:
        status = RowStatus.INVALID if checked.verdict is Verdict.INVALID else RowStatus.DUPLICATE
        return NewRow(
            row.row, status, row.cells, phone=checked.phone or None, reason=checked.reason
        )
    return NewRow(
        row.row,
        RowStatus.PENDING,
        row.cells,
        identity=contact.identity,
        phone=contact.phone,
        contact_id=contact.contact_id,
        payload=contact.payload(),
    )


def _unless_handled(row: NewRow, handled: Mapping[str, Handled]) -> NewRow | KeptRow:
    """Return ``row`` skipped when its person is subscribed or queued elsewhere."""
    found = handled.get(row.identity or "")
    if found is None:
        return row
    return replace(
        row,
        status=RowStatus.SKIPPED,
        reason=found.reason,
        contact_id=row.contact_id if row.contact_id is not None else found.contact_id,
    )
