"""`bulkimport retry`: send again what is left pending or unknown."""

from __future__ import annotations

import dataclasses
import os
import sys
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bulkimport.cli.display import _finish_send, _print_send, shown
from bulkimport.cli.options import connection_options, delivery_options, ledger_option
from bulkimport.cli.sending import Delivery, _write_results, make_sender, open_ledger
from bulkimport.cli.stopping import graceful_stop
from bulkimport.credentials import load_api_key
from bulkimport.errors import ExitCode
from bulkimport.settings import SendSettings

if TYPE_CHECKING:
    from bulkimport.ledger.store import Ledger


@click.command()
@ledger_option
@connection_options
@delivery_options
@click.option("--run", "run_id", type=int, help="Only the rows of this run (see `status`).")
@click.option(
    "--engagement",
    "engagement_id",
    type=int,
    help="Only the rows of this engagement; rows of others are left as they are.",
)
@click.option(
    "--include-rejected",
    is_flag=True,
    help="Also re-send rows the server rejected (after you fixed the cause).",
)
@click.option(
    "--include-unknown",
    is_flag=True,
    help="Also send the rows held as unknown (--unknown hold), with contact reuse: their "
    "answer was lost, so a person may get the message twice.",
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
    engagement_id: int | None,
    include_rejected: bool,
    dry_run: bool,
    results: Path | None,
    include_unknown: bool,
    send_window: str | None,
    timezone: str | None,
    timezone_for_all: str | None,
    wait_for_window: bool,
    max_per_minute: int | None,
    limit: int | None,
    unknown: str | None,
    assume_yes: bool,
) -> None:
    """Send again the rows left pending or unknown.

    The payloads come from the ledger: the original file is not needed.

    Unknown rows (the API may have created them) are sent with contact reuse
    on, so no contact is created twice; with --unknown hold they stay unknown
    until --include-unknown. Settings, the send window among them, default to
    the original run's: a row never goes out outside its window.

    \b
    Example:
      bulkimport retry --ledger bulkimport.sqlite
      bulkimport retry --ledger bulkimport.sqlite --include-unknown
    """
    from bulkimport.jobs.importing import retry_rows
    from bulkimport.ledger.store import require_ledger
    from bulkimport.output.tables import check_destination

    require_ledger(ledger)  # before the key is asked for
    key = load_api_key(os.environ, api_key_file)
    if results is not None:
        check_destination(results)
    delivery = Delivery.from_options(
        limit=limit, wait_for_window=wait_for_window, assume_yes=assume_yes, dry_run=dry_run
    )
    summaries = []
    with open_ledger(ledger, dry_run=dry_run) as book, graceful_stop() as signals:
        if run_id is not None:
            engagements = [book.run_settings(run_id)[0]]
        else:
            engagements = book.engagements_with_open_rows(include_rejected=include_rejected)
        others: list[int] = []
        if engagement_id is not None:
            others = [e for e in engagements if e != engagement_id]
            engagements = [e for e in engagements if e == engagement_id]
        if not engagements:
            _nothing_to_retry(book, run_id, engagement_id, others)
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
                send_window=send_window,
                timezone=timezone,
                timezone_for_all=timezone_for_all,
                max_per_minute=max_per_minute,
                unknown=unknown,
            )
            sender = make_sender(
                key, settings, signals, as_json=as_json, dry_run=dry_run, delivery=delivery
            )
            with closing(sender.client):
                summary = retry_rows(
                    book,
                    settings,
                    sender,
                    run_id=run_id,
                    include_rejected=include_rejected,
                    include_unknown=include_unknown,
                )
            summaries.append(summary)
            if delivery.limit is not None:  # --limit counts people across engagements
                left = max(delivery.limit - summary.handed, 0)
                if left == 0:
                    break
                delivery = dataclasses.replace(delivery, limit=left)
            if summary.refused or summary.unavailable or summary.declined or signals.stop.is_set():
                break
        ids = sorted({i for s in summaries for i in s.source_ids})
        written = _write_results(book, results, ids, summaries[-1], dry_run=dry_run)
    for summary in summaries[:-1]:
        _print_send(summary, None, as_json)
    _finish_send(summaries[-1], written, as_json)


def _nothing_to_retry(
    book: Ledger, run_id: int | None, engagement_id: int | None, others: list[int]
) -> None:
    """Say there is nothing to send, and exit: 0 only when no file is missing rows.

    With ``--engagement``, the engagements left out that still have rows are named.
    """
    incomplete = book.incomplete_sources(book.sources_of(run_id) if run_id is not None else None)
    if engagement_id is not None:
        incomplete = [item for item in incomplete if item.engagement_id == engagement_id]
    if not incomplete:
        if engagement_id is None:
            click.echo("Nothing to retry: every row in the ledger is settled.")
        else:
            click.echo(f"Nothing to retry for engagement {engagement_id}: its rows are settled.")
        for other in others:
            click.echo(
                f"  Engagement {other} has rows waiting: `bulkimport retry --engagement {other}` "
                f"sends them, `bulkimport discard --engagement {other}` leaves them out."
            )
        sys.exit(int(ExitCode.OK))
    click.echo("Nothing recorded is left to send, but not every file was read to its end:")
    for item in incomplete:
        click.secho(shown(f"  {item.describe()}"), fg="yellow")
    sys.exit(int(ExitCode.ROWS_NEED_ATTENTION))
