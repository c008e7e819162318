"""`bulkimport run`: the import."""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bulkimport.cli.display import _finish_send
from bulkimport.cli.options import (
    connection_options,
    delivery_options,
    import_options,
    input_options,
    ledger_option,
)
from bulkimport.cli.sending import Delivery, _write_results, make_sender, open_ledger
from bulkimport.cli.stopping import graceful_stop
from bulkimport.credentials import load_api_key
from bulkimport.settings import SendSettings

if TYPE_CHECKING:
    pass


@click.command()
@input_options
@click.option("--engagement", "engagement_id", type=int, required=True, help="Engagement id.")
@ledger_option
@connection_options
@delivery_options
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
    send_window: str | None,
    timezone: str | None,
    timezone_for_all: str | None,
    wait_for_window: bool,
    max_per_minute: int | None,
    limit: int | None,
    unknown: str | None,
    assume_yes: bool,
    **options: Any,
) -> None:
    """Subscribe the valid rows to an engagement.

    Every row is recorded in the ledger with what happened to it.

    Running the same command again continues where it stopped; numbers already
    subscribed to the engagement are skipped, so nothing is sent twice.

    Each person gets the engagement's SMS or call the moment they are
    subscribed: --send-window keeps messages inside waking hours in each
    person's own time, --limit sends a few first, --max-per-minute spreads them
    out. On a terminal the command asks once before the first request.

    \b
    Example (try it on the sandbox first):
      export ENGAGESPARK_API_KEY=...
      bulkimport run applicants.xlsx --engagement 1234 --country PH --results results.xlsx
      bulkimport run applicants.xlsx --engagement 1234 --country PH --limit 5
      bulkimport run applicants.xlsx --engagement 1234 --send-window 08:00-20:00 --wait
    """
    from bulkimport.jobs.importing import run_import
    from bulkimport.output.tables import check_destination

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
        send_window=send_window,
        timezone=timezone,
        timezone_for_all=timezone_for_all,
        max_per_minute=max_per_minute,
        unknown=unknown,
    )
    delivery = Delivery.from_options(
        limit=limit, wait_for_window=wait_for_window, assume_yes=assume_yes, dry_run=dry_run
    )
    with open_ledger(ledger, dry_run=dry_run) as book, graceful_stop() as signals:
        sender = make_sender(
            key, settings, signals, as_json=as_json, dry_run=dry_run, delivery=delivery
        )
        with closing(sender.client):
            summary = run_import(
                list(files), import_opts, settings, book, sender, resubscribe=resubscribe
            )
        written = _write_results(book, results, summary.source_ids, summary, dry_run=dry_run)
    _finish_send(summary, written, as_json)
