"""`bulkimport discard`: leave out, on purpose, rows that can never be sent as recorded."""

from __future__ import annotations

from pathlib import Path

import click

from bulkimport.cli.options import ledger_option


@click.command()
@ledger_option
@click.option("--run", "run_id", type=int, help="The unsent rows of this run (see `status`).")
@click.option(
    "--engagement",
    "engagement_id",
    type=int,
    help="The unsent rows of this engagement (with --run: of both).",
)
def discard(ledger: Path, run_id: int | None, engagement_id: int | None) -> None:
    """Leave out rows that wait to be sent: they are never sent by any command again.

    For rows stranded by a wrong engagement id (the API answered "not
    found"): every bare `retry` and every night would try them again. The
    pending, unknown and failed rows of the run (or engagement) become
    `discarded` in the ledger, with the reason; nothing is deleted, and
    `results` still lists them.

    \b
    Example:
      bulkimport discard --run 4
    """
    from bulkimport.ledger.store import Ledger, require_ledger

    if run_id is None and engagement_id is None:
        raise click.UsageError(
            "Say which rows: --run N (see `bulkimport status`) or --engagement ID."
        )
    require_ledger(ledger)
    with Ledger.locked(ledger) as book:
        if run_id is not None:
            book.run_settings(run_id)  # refuses an unknown run
        count = book.discard(run_id=run_id, engagement_id=engagement_id)
    which = " and ".join(
        part
        for part in (
            f"run {run_id}" if run_id is not None else "",
            f"engagement {engagement_id}" if engagement_id is not None else "",
        )
        if part
    )
    if not count:
        click.echo(f"Nothing to discard: no row of {which} waits to be sent.")
        return
    rows = "1 row" if count == 1 else f"{count:,} rows"
    click.echo(f"Discarded {rows} of {which}: no command will send them; `results` lists them.")
