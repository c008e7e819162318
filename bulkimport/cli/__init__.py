"""The `bulkimport` command: the only module that prints, prompts or exits."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple, TypeVar

import click

from bulkimport import __version__
from bulkimport.credentials import API_KEY_ENV, describe_env, load_api_key
from bulkimport.errors import BulkImportError, ExitCode, InputError, RefusalCause
from bulkimport.jobs.check import CheckSummary, check_files
from bulkimport.jobs.config import NightlyConfig, check_paths, load_config
from bulkimport.jobs.importing import RunSummary, Sender, SendSettings, retry_rows, run_import
from bulkimport.jobs.nightly import (
    FileOutcome,
    NightPlan,
    failure_json,
    night_log,
    preview_night,
    run_night,
)
from bulkimport.ledger.lock import LedgerLock
from bulkimport.ledger.store import DEFAULT_LEDGER, Ledger
from bulkimport.output.progress import LogProgress, progress_for
from bulkimport.output.results import STATUS_ORDER, write_results
from bulkimport.output.tables import check_destination
from bulkimport.read.sources import ReadOptions
from bulkimport.rows.columns import MapOverride, parse_map
from bulkimport.rows.normalize import ContactDefaults
from bulkimport.rows.phones import PhonePolicy, check_country
from bulkimport.rows.prepare import ImportOptions, Verdict
from bulkimport.send.client import DEFAULT_API_URL, EngageSparkClient, Timeouts

F = TypeVar("F", bound=Callable[..., Any])

# Control characters, bidi overrides, invisible marks (a hostile cell could use them
# to rewrite the terminal) and undecodable bytes of file names are shown as escapes.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufeff]"
)


def shown(text: object) -> str:
    """Return ``text`` safe to print on one terminal line."""
    return _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], str(text))


class BulkImportGroup(click.Group):
    """Turns every BulkImportError into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BulkImportError as error:
            click.secho(f"Error: {shown(error)}", err=True, fg="red")
            ctx.exit(int(error.exit_code))
        except KeyboardInterrupt:
            click.secho(
                "Interrupted: the ledger is consistent; run the same command again to continue.",
                err=True,
                fg="yellow",
            )
            ctx.exit(int(ExitCode.ROWS_NEED_ATTENTION))


@click.group(cls=BulkImportGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bulkimport")
@click.option("-v", "--verbose", count=True, help="More log lines (-vv for debug).")
def main(verbose: int) -> None:
    """Subscribe the people in a spreadsheet to an engageSPARK engagement.

    Start with `bulkimport check FILE` to see what is wrong with a file, then
    `bulkimport run FILE --engagement ID` (try it against `bulkimport sandbox` first).
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(message)s")


def input_options(command: F) -> F:
    """Options that say how to read, map and validate the input files."""
    decorators = [
        click.argument(
            "files",
            nargs=-1,
            required=True,
            type=click.Path(path_type=Path, dir_okay=True, exists=False),
        ),
        click.option(
            "--country",
            metavar="CC",
            help="Country of national numbers like 0917 123 4567 (two letters: PH, US, KE).",
        ),
        click.option("--sheet", metavar="NAME|NUMBER", help="Workbook sheet (default: the first)."),
        click.option(
            "--map",
            "maps",
            multiple=True,
            metavar='"Header=field"',
            help="Map a column: a field (fullPhoneNumber, firstName, lastName, fullName, "
            "email, language, groups, organizationId, id), custom:NAME, or ignore. Repeatable.",
        ),
        click.option("--encoding", help="CSV encoding, when detection guesses wrong (cp1252...)."),
        click.option("--delimiter", help="CSV delimiter, when detection guesses wrong (; or tab)."),
        click.option(
            "--allow-possible",
            is_flag=True,
            help="Accept numbers that have a possible length but are not valid for their country.",
        ),
        click.option("--mobile-only", is_flag=True, help="Reject numbers that are not mobile."),
        click.option(
            "--allow-duplicates",
            is_flag=True,
            help="Keep rows whose number already appeared earlier in the import.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def import_options(
    *,
    country: str | None,
    sheet: str | None,
    maps: Sequence[str],
    encoding: str | None,
    delimiter: str | None,
    allow_possible: bool,
    mobile_only: bool,
    allow_duplicates: bool,
    groups: Sequence[int] = (),
    organization: int | None = None,
) -> ImportOptions:
    """Build ImportOptions from command-line values, refusing bad ones before any file is read."""
    overrides: tuple[MapOverride, ...] = tuple(parse_map(m) for m in maps)
    return ImportOptions(
        read=ReadOptions(sheet=sheet, encoding=encoding, delimiter=delimiter),
        overrides=overrides,
        phones=PhonePolicy(
            country=check_country(country) if country else None,
            allow_possible=allow_possible,
            mobile_only=mobile_only,
        ),
        allow_duplicates=allow_duplicates,
        defaults=ContactDefaults(groups=tuple(groups), organization_id=organization),
    )


@main.command()
@input_options
@click.option(
    "--report",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write every row with its status and reason to a .csv or .xlsx file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def check(files: tuple[Path, ...], report: Path | None, as_json: bool, **options: Any) -> None:
    """Say, row by row, what is wrong with files.

    Sends nothing.

    Exit code 0 when every row is valid, 1 when some are invalid or duplicate,
    2 when a file or option cannot be used.

    \b
    Example:
      bulkimport check applicants.xlsx --country PH --report check.xlsx
    """
    if report is not None:
        check_destination(report)
    summary = check_files(list(files), import_options(**options), report)
    if as_json:
        click.echo(json.dumps(summary.to_json(), ensure_ascii=False))
    else:
        _print_check(summary)
    sys.exit(int(summary.exit_code))


def _print_check(summary: CheckSummary) -> None:
    for source in summary.sources:
        where = f" (sheet {source.sheet})" if source.sheet else ""
        read_as = ", ".join(
            part
            for part in (
                source.encoding and f"encoding {source.encoding}",
                source.delimiter and f"delimiter {_show_delimiter(source.delimiter)}",
            )
            if part
        )
        click.echo(f"{source.source}{where}" + (f": {read_as}" if read_as else ""))
        mapped = ", ".join(f"{header} → {target}" for header, target in source.mapped)
        click.echo(shown(f"  columns used: {mapped}"))
        if source.ignored:
            click.echo(shown(f"  columns not used: {', '.join(source.ignored)}"))
    tally = summary.tally
    counts = " · ".join(f"{v.value} {tally.verdicts[v]:,}" for v in Verdict)
    click.echo(f"\nRows read {tally.rows:,} · {counts}")
    if tally.problems:
        click.echo("\nProblems:")
        for code, count in tally.problems.most_common():
            click.echo(f"  {code:<28}{count:>8,}")
        click.echo("\nFirst problems:")
        for problem in tally.first_problems:
            sheet = f" [{problem.sheet}]" if problem.sheet else ""
            click.echo(shown(f"  {problem.source}{sheet} row {problem.row}: {problem.message}"))
    if summary.report:
        click.echo(f"\nReport written to {summary.report}")
    elif tally.problems:
        click.echo("\nFor every row with its reason: add --report check.xlsx")


def _show_delimiter(delimiter: str) -> str:
    return {"\t": "tab", " ": "space"}.get(delimiter, repr(delimiter))


# ---------------------------------------------------------------------------
# run, retry, results, status


def ledger_option(command: F) -> F:
    return click.option(
        "--ledger",
        type=click.Path(path_type=Path, dir_okay=False),
        default=DEFAULT_LEDGER,
        show_default=True,
        help="The results ledger (SQLite) that records every row.",
    )(command)


def connection_options(command: F) -> F:
    """Options that say how to reach the API (shared by run and retry)."""
    decorators = [
        click.option(
            "--api-url",
            metavar="URL",
            help=f"API base URL (default {DEFAULT_API_URL}; the sandbox prints its own).",
        ),
        click.option(
            "--api-key-file",
            type=click.Path(path_type=Path, dir_okay=False),
            help=f"Read the API key from this file instead of ${API_KEY_ENV}.",
        ),
        click.option(
            "--batch-size", type=click.IntRange(1, 1000), help="Contacts per request (100)."
        ),
        click.option(
            "--concurrency", type=click.IntRange(1, 32), help="Requests in flight at once (2)."
        ),
        click.option(
            "--timeout", type=click.FloatRange(1, 600), help="Seconds to wait for an answer (30)."
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON line."),
        click.option(
            "--dry-run", is_flag=True, help="Do everything but send: print what would be sent."
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def make_sender(
    key: str, settings: SendSettings, signals: StopSignals, *, as_json: bool, dry_run: bool
) -> Sender:
    """Return the client and progress display a send loop uses."""
    return Sender(
        EngageSparkClient(key, settings.api_url, Timeouts(read=settings.timeout)),
        progress=progress_for(sys.stderr, quiet=as_json),
        stop=signals.stop,
        hard_stop=signals.hard_stop,
        dry_run=_print_dry_batch if dry_run else None,
    )


class StopSignals(NamedTuple):
    """The two stop requests a send loop honours."""

    stop: threading.Event  # finish the batches in flight, record them, send no more
    hard_stop: threading.Event  # do not wait for the batches in flight


# Ctrl-C, and what a service manager or a closed terminal sends.
GRACEFUL_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def graceful_stop() -> Iterator[StopSignals]:
    """First Ctrl-C, SIGTERM or SIGHUP: finish the batches in flight and stop.

    A second: stop at once, recording every answer that already arrived. A third:
    interrupt wherever the command is.
    """
    signals = StopSignals(threading.Event(), threading.Event())

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signals.hard_stop.is_set():
            raise KeyboardInterrupt
        if signals.stop.is_set():
            signals.hard_stop.set()
            click.secho(f"\n{name}: stopping now.", err=True, fg="yellow")
            return
        signals.stop.set()
        click.secho(
            f"\n{name}: stopping after the batches in flight (press Ctrl-C or send {name} "
            "again to stop now)...",
            err=True,
            fg="yellow",
        )

    previous = {signum: signal.signal(signum, handle) for signum in GRACEFUL_SIGNALS}
    try:
        yield signals
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def exit_now_if_abandoned(summary: RunSummary, code: int) -> None:
    """Exit without waiting for send threads when a stop at once left batches in flight.

    Their answers would never be recorded (their rows are already `sending`, and
    become `unknown` on the next start), so waiting for them helps nobody.
    """
    if summary.abandoned:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


@contextmanager
def open_ledger(path: Path, *, dry_run: bool = False) -> Iterator[Ledger]:
    """Lock and open the ledger (a private in-memory copy for a dry run)."""
    if dry_run:
        ledger = Ledger.in_memory_copy(path)
        try:
            yield ledger
        finally:
            ledger.close()
        return
    with LedgerLock(path):
        ledger = Ledger.open(path)
        try:
            yield ledger
        finally:
            ledger.close()


@main.command()
@input_options
@click.option("--engagement", "engagement_id", type=int, required=True, help="Engagement id.")
@ledger_option
@connection_options
@click.option(
    "--always-create",
    is_flag=True,
    help="Create a new contact for every row, even when the number exists in engageSPARK. "
    "By default the newest existing contact with the number is reused "
    "(try_using_existing=newest): no duplicate contacts, but a reused contact keeps its "
    "old name and groups.",
)
@click.option("--group", "groups", type=int, multiple=True, help="Add every contact to this group.")
@click.option("--organization", type=int, help="Create the contacts in this organization id.")
@click.option(
    "--resubscribe",
    is_flag=True,
    help="Send numbers already subscribed to this engagement in the ledger again.",
)
@click.option(
    "--results",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write every row with its status, contact id and reason (.xlsx or .csv).",
)
def run(
    files: tuple[Path, ...],
    engagement_id: int,
    ledger: Path,
    api_url: str | None,
    api_key_file: Path | None,
    batch_size: int | None,
    concurrency: int | None,
    timeout: float | None,
    as_json: bool,
    always_create: bool,
    groups: tuple[int, ...],
    organization: int | None,
    resubscribe: bool,
    dry_run: bool,
    results: Path | None,
    **options: Any,
) -> None:
    """Subscribe the valid rows to an engagement.

    Every row is recorded in the ledger with what happened to it.

    Running the same command again continues where it stopped; numbers already
    subscribed to the engagement are skipped, so nothing is sent twice.

    \b
    Example (try it on the sandbox first):
      export ENGAGESPARK_API_KEY=...
      bulkimport run applicants.xlsx --engagement 1234 --country PH --results results.xlsx
    """
    key = load_api_key(os.environ, api_key_file)
    if results is not None:
        check_destination(results)
    import_opts = import_options(groups=groups, organization=organization, **options)
    settings = SendSettings(engagement_id).updated(
        {},
        api_url=api_url,
        reuse=not always_create,
        batch_size=batch_size,
        concurrency=concurrency,
        timeout=timeout,
    )
    with open_ledger(ledger, dry_run=dry_run) as book, graceful_stop() as signals:
        sender = make_sender(key, settings, signals, as_json=as_json, dry_run=dry_run)
        with sender.client:
            summary = run_import(
                list(files), import_opts, settings, book, sender, resubscribe=resubscribe
            )
        written = _write_results(book, results, summary.source_ids, summary, dry_run=dry_run)
    _finish_send(summary, written, as_json)


@main.command()
@ledger_option
@connection_options
@click.option("--run", "run_id", type=int, help="Only the rows of this run (see `status`).")
@click.option(
    "--include-rejected",
    is_flag=True,
    help="Also re-send rows the server rejected (after you fixed the cause).",
)
@click.option(
    "--results",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the rows of the retried files with their outcome (.xlsx or .csv).",
)
def retry(
    ledger: Path,
    api_url: str | None,
    api_key_file: Path | None,
    batch_size: int | None,
    concurrency: int | None,
    timeout: float | None,
    as_json: bool,
    run_id: int | None,
    include_rejected: bool,
    dry_run: bool,
    results: Path | None,
) -> None:
    """Send again the rows left pending or unknown.

    The payloads come from the ledger: the original file is not needed.

    Unknown rows (the API may have created them) are sent with contact reuse
    on, so no contact is created twice. Settings default to the original run's.

    \b
    Example:
      bulkimport retry --ledger bulkimport.sqlite
    """
    if not ledger.exists():
        raise InputError(f"There is no ledger at {ledger}: give the one `run` wrote with --ledger.")
    key = load_api_key(os.environ, api_key_file)
    if results is not None:
        check_destination(results)
    summaries = []
    with open_ledger(ledger, dry_run=dry_run) as book, graceful_stop() as signals:
        if run_id is not None:
            engagements = [book.run_settings(run_id)[0]]
        else:
            engagements = book.engagements_with_open_rows(include_rejected=include_rejected)
        if not engagements:
            _nothing_to_retry(book, run_id)
        for engagement_id in engagements:
            saved = (
                book.run_settings(run_id)[1]
                if run_id is not None
                else book.last_settings(engagement_id)
            )
            settings = SendSettings(engagement_id).updated(
                saved,
                engagement_id=engagement_id,
                api_url=api_url,
                batch_size=batch_size,
                concurrency=concurrency,
                timeout=timeout,
            )
            sender = make_sender(key, settings, signals, as_json=as_json, dry_run=dry_run)
            with sender.client:
                summary = retry_rows(
                    book, settings, sender, run_id=run_id, include_rejected=include_rejected
                )
            summaries.append(summary)
            if summary.refused or summary.unavailable or signals.stop.is_set():
                break
        ids = sorted({i for s in summaries for i in s.source_ids})
        written = _write_results(book, results, ids, summaries[-1], dry_run=dry_run)
    for summary in summaries[:-1]:
        _print_send(summary, None, as_json)
    _finish_send(summaries[-1], written, as_json)


def _nothing_to_retry(book: Ledger, run_id: int | None) -> None:
    """Say there is nothing to send, and exit: 0 only when no file is missing rows."""
    incomplete = book.incomplete_sources(book.sources_of(run_id) if run_id is not None else None)
    if not incomplete:
        click.echo("Nothing to retry: every row in the ledger is settled.")
        sys.exit(int(ExitCode.OK))
    click.echo("Nothing recorded is left to send, but not every file was read to its end:")
    for item in incomplete:
        click.secho(shown(f"  {item.describe()}"), fg="yellow")
    sys.exit(int(ExitCode.ROWS_NEED_ATTENTION))


def _write_results(
    book: Ledger,
    target: Path | None,
    source_ids: Sequence[int],
    summary: RunSummary,
    *,
    dry_run: bool,
) -> Path | None:
    """Write the results file after a send; a failure is reported with the summary.

    What was sent matters more than the results file: the summary is printed
    either way, and `bulkimport results` can write the file later.
    """
    if target is None or dry_run:
        return None
    try:
        write_results(book, target, source_ids=source_ids)
    except InputError as error:
        summary.problems.append(
            f"{error} The import itself is recorded: `bulkimport results -o FILE` "
            "writes the results later."
        )
        summary.decide_exit_code()
        return None
    return target


@main.command()
@ledger_option
@click.option("--run", "run_id", type=int, help="Only the files of this run (default: all).")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write: results.xlsx or results.csv.",
)
def results(ledger: Path, run_id: int | None, output: Path) -> None:
    """Write your rows back with their outcome.

    Every row gets its status, contact id and reason, then your own columns.

    \b
    Example:
      bulkimport results -o results.xlsx
    """
    if not ledger.exists():
        raise InputError(f"There is no ledger at {ledger}: give the one `run` wrote with --ledger.")
    book = Ledger.open(ledger)
    try:
        source_ids = None
        if run_id is not None:
            book.run_settings(run_id)  # refuses an unknown run
            source_ids = book.sources_of(run_id)
        count = write_results(book, output, source_ids=source_ids)
        incomplete = book.incomplete_sources(source_ids)
    finally:
        book.close()
    click.echo(f"Wrote {count:,} rows to {output}")
    for item in incomplete:
        click.secho(shown(f"Incomplete: {item.describe()}"), err=True, fg="yellow")
    sys.exit(int(ExitCode.ROWS_NEED_ATTENTION if incomplete else ExitCode.OK))


@main.command()
@ledger_option
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def status(ledger: Path, as_json: bool) -> None:
    """List the runs in the ledger and their rows.

    For each run: when, which command, engagement, files and rows by status.
    """
    if not ledger.exists():
        raise InputError(f"There is no ledger at {ledger}: give the one `run` wrote with --ledger.")
    book = Ledger.open(ledger)
    try:
        runs = book.runs()
    finally:
        book.close()
    if as_json:
        click.echo(json.dumps([_run_json(r) for r in runs], ensure_ascii=False))
        return
    if not runs:
        click.echo("No runs yet.")
    for info in runs:
        ended = f"exit {info.exit_code}" if info.exit_code is not None else "did not finish"
        click.echo(
            f"run {info.id}  {info.started_at}  {info.command}  engagement {info.engagement_id}"
            f"  ({ended})"
        )
        if info.files:
            click.echo(shown(f"  files: {', '.join(info.files)}"))
        click.echo(f"  rows:  {_counts_line(info.counts) or 'none'}")
        for item in info.incomplete:
            click.secho(shown(f"  incomplete: {item.describe()}"), fg="yellow")


def _run_json(info: Any) -> dict[str, Any]:
    return {
        "run": info.id,
        "command": info.command,
        "engagement": info.engagement_id,
        "started": info.started_at,
        "finished": info.finished_at,
        "exit_code": info.exit_code,
        "files": info.files,
        "rows": info.counts,
        "incomplete": [item.describe() for item in info.incomplete],
    }


def _counts_line(counts: Any) -> str:
    return " · ".join(
        f"{status} {counts[status]:,}" for status in STATUS_ORDER if counts.get(status)
    )


def _print_dry_batch(label: str, reuse: bool, payloads: list[dict[str, Any]]) -> None:
    query = "?try_using_existing=newest" if reuse else ""
    click.echo(f"batch {label}: {len(payloads)} contacts, POST .../contacts/{query}")
    click.echo(json.dumps(payloads, ensure_ascii=False))


def _finish_send(summary: RunSummary, results_path: Path | None, as_json: bool) -> None:
    _print_send(summary, results_path, as_json)
    exit_now_if_abandoned(summary, int(summary.exit_code))
    sys.exit(int(summary.exit_code))


def _print_send(summary: RunSummary, results_path: Path | None, as_json: bool) -> None:
    if as_json:
        line = summary.to_json()
        line["results"] = str(results_path) if results_path else None
        click.echo(json.dumps(line, ensure_ascii=False))
        return
    title = "Dry run" if summary.dry_run else summary.command.capitalize()
    files = f" · {', '.join(summary.files)}" if summary.files else ""
    click.echo(f"\n{title} {summary.run_id} · engagement {summary.engagement_id}" + shown(files))
    click.echo(f"  rows: {_counts_line(summary.counts) or 'none'}")
    retries = f", {summary.retries} retries" if summary.retries else ""
    click.echo(
        f"  {summary.batches} batches, {summary.attempts} requests{retries}, "
        f"{summary.duration:.1f} s"
    )
    if summary.recovered:
        click.echo(f"  {summary.recovered} rows interrupted earlier were marked unknown.")
    if summary.stopped:
        click.secho(shown(f"  {summary.stopped}"), fg="yellow")
    for item in summary.incomplete:
        click.secho(shown(f"  Incomplete: {item}"), fg="yellow")
    for problem in summary.problems:
        click.secho(shown(f"  {problem}"), fg="red")
    if results_path:
        click.echo(f"  Results written to {results_path}")
    for hint in _next_steps(summary, results_path):
        click.echo(f"  Next: {hint}")


def _next_steps(summary: RunSummary, results_path: Path | None) -> list[str]:
    counts, hints = summary.counts, []
    where = str(results_path) if results_path else "`bulkimport results -o results.xlsx`"
    if counts["invalid"] or counts["duplicate"]:
        hints.append(f"fix the invalid rows (reasons in {where}) and run the file again.")
    if counts["failed"]:
        hints.append("the server rejected some rows; their reasons are in the results.")
    if summary.refused_cause is RefusalCause.SETTING:
        hints.append("fix --api-url (or api_url in the config), then `bulkimport retry`.")
    elif summary.refused_cause is RefusalCause.ENGAGEMENT:
        # retry would send to the same engagement: the rows must go to the right one.
        hints.append(
            "run the file again with the right --engagement; the rows recorded for "
            f"engagement {summary.engagement_id} stay pending."
        )
    elif summary.refused:
        hints.append("fix what the message above says, then `bulkimport retry`.")
    elif summary.incomplete:
        hints.append("run the same command again to read the files to their end.")
    elif counts["pending"] or counts["unknown"] or counts["sending"]:
        hints.append("`bulkimport retry` sends the rows left pending or unknown.")
    return hints


# ---------------------------------------------------------------------------
# sandbox


@main.command()
@click.option("--port", type=int, default=8765, show_default=True, help="Port on 127.0.0.1.")
@click.option("--token", default=None, help="The API key the sandbox accepts (sandbox-token).")
@click.option(
    "--engagement",
    "engagements",
    type=int,
    multiple=True,
    help="Engagement ids that exist (default 1234). Repeatable.",
)
@click.option("--latency-ms", type=float, default=0, help="Delay every answer, like a real API.")
@click.option(
    "--faults",
    default="",
    help='Misbehave on purpose, e.g. "429=0.1,500=0.05,reset=0.05,slow=0.05,shuffle=0.5,'
    'nodata=0.05,trickle=0.05". nodata: a 2xx without the contact list (bare list, HTML page '
    "or 204); trickle: the answer one byte every trickle_ms (default 1000). Also "
    "slow_seconds, retry_after.",
)
@click.option("--seed", type=int, default=0, help="Seed for the faults, to repeat a rehearsal.")
def sandbox(
    port: int,
    token: str | None,
    engagements: tuple[int, ...],
    latency_ms: float,
    faults: str,
    seed: int,
) -> None:
    """Run a local stand-in for the engageSPARK API.

    Rehearse an import against it before the real thing.

    \b
    Example:
      bulkimport sandbox --port 8765 &
      ENGAGESPARK_API_KEY=sandbox-token bulkimport run applicants.xlsx \\
          --engagement 1234 --country PH --api-url http://127.0.0.1:8765/api/v1
    """
    from bulkimport.sandbox import SANDBOX_TOKEN, Faults, serve

    logging.getLogger("bulkimport.sandbox").setLevel(logging.INFO)
    click.echo(f"Sandbox at http://127.0.0.1:{port}/api/v1 (API key: {token or SANDBOX_TOKEN})")
    serve(
        host="127.0.0.1",
        port=port,
        token=token or SANDBOX_TOKEN,
        engagements=engagements or (1234,),
        latency_ms=latency_ms,
        faults=Faults.parse(faults),
        seed=seed,
    )


# ---------------------------------------------------------------------------
# nightly


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    metavar="FILE",
    help="The nightly import's TOML file (see sample_data/nightly.toml).",
)
@click.option(
    "--check-config",
    is_flag=True,
    help="Validate the config and show which files match now and which would be skipped; "
    "sends nothing.",
)
def nightly(config_path: Path, check_config: bool) -> None:
    """Import new exports, for cron or a timer.

    The config file names the inputs and every setting of `run`.

    First sends the rows earlier runs left pending or unknown, then imports each
    input file that is new and no longer being written. A file already imported
    is skipped; people already subscribed are skipped, so a grown export costs
    only its new rows. Log lines go to stderr (and the log file); one JSON line
    goes to stdout. Exit code: 0 all done, 1 rows need attention, 2 config or
    input error, 3 the API refused, 4 another run holds the ledger, 5 the API
    stayed unavailable.

    \b
    Example:
      bulkimport nightly --config /etc/bulkimport/import.toml --check-config
      bulkimport nightly --config /etc/bulkimport/import.toml
    """
    if check_config:
        config = load_config(config_path)
        check_paths(config)
        _print_plan(config, preview_night(config))
        return
    try:
        config = load_config(config_path)
        check_paths(config)
        key = load_api_key(os.environ, config.api_key_file, config.api_key_env)
        client = EngageSparkClient(key, config.api_url, Timeouts(read=config.timeout))
        with (
            night_log(config.log_file, secrets=(key,)),
            client,
            graceful_stop() as signals,
        ):
            sender = Sender(
                client, progress=LogProgress(), stop=signals.stop, hard_stop=signals.hard_stop
            )
            summary = run_night(config, sender)
    except BulkImportError as error:
        line = failure_json(config_path, error, error.exit_code)
        click.echo(json.dumps(line, ensure_ascii=False))
        raise
    click.echo(json.dumps(summary.to_json(), ensure_ascii=False))
    for part in summary.parts:
        exit_now_if_abandoned(part, int(summary.exit_code))
    sys.exit(int(summary.exit_code))


_PLAN_WORDS = {
    FileOutcome.NEW: "new: would be imported",
    FileOutcome.SKIPPED: "would be skipped (identical to a file already imported)",
    FileOutcome.UNREADABLE: "cannot be read",
}


def _print_plan(config: NightlyConfig, plan: NightPlan) -> None:
    click.echo(f"{config.path}: the config is valid.")
    click.echo(f"  engagement {config.engagement} at {config.api_url}")
    click.echo(f"  API key: {_key_note(config)}")
    click.echo(f"  ledger: {config.ledger}")
    for pattern, paths in plan.patterns:
        found = f"{len(paths)} file(s) now" if paths else "no file now"
        click.echo(f"  inputs {pattern!r}: {found}")
    for item in plan.files:
        words = _PLAN_WORDS.get(item.outcome, item.outcome.value)
        click.echo(f"    {config.show(item.path)}: {words}")
        if item.outcome is FileOutcome.UNREADABLE:
            click.secho(f"      {item.reason}", fg="yellow")
    click.echo(f"  results: {config.results_dir or 'not written (set results_dir)'}")
    after = f"moved to {config.archive_dir}" if config.archive_dir else "left where they are"
    click.echo(f"  imported files: {after}")
    click.echo(f"  log file: {config.log_file or 'none (log lines go to stderr only)'}")
    if config.settle_seconds:
        click.echo(
            f"  A file whose size or time changes within {config.settle_seconds:g} s "
            "is left for the next run (checked when the night runs)."
        )
    else:
        click.echo("  Files are not checked for still being written (settle_seconds = 0).")


def _key_note(config: NightlyConfig) -> str:
    where = (
        f"file {config.api_key_file}" if config.api_key_file else describe_env(config.api_key_env)
    )
    try:
        load_api_key(os.environ, config.api_key_file, config.api_key_env)
    except InputError as error:
        return f"from {where}, NOT available in this shell ({error})"
    return f"from {where} (available in this shell)"
