"""`bulkimport results`: the rows back, with their outcome."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bulkimport.cli.display import shown
from bulkimport.cli.options import ledger_option
from bulkimport.errors import ExitCode

if TYPE_CHECKING:
    pass


@click.command()
@ledger_option
@click.option("--run", "run_id", type=int, help="The files of this run, as that run read them.")
@click.option(
    "--history",
    is_flag=True,
    help="Every version of every file, each with all its rows (for audits).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write: results.xlsx or results.csv.",
)
def results(ledger: Path, run_id: int | None, history: bool, output: Path) -> None:
    """Write your rows back with their outcome: one line per row of each file.

    Each file appears as its newest version, in its own row order. Every row
    gets its status, the person's contact id and when they were subscribed,
    the reason, then your own columns. An .xlsx adds a "Needs attention"
    sheet with the rows a person must act on, and what to do.

    \b
    Example:
      bulkimport results -o results.xlsx
    """
    from bulkimport.ledger.store import Ledger
    from bulkimport.output.results import chosen_sources, write_results

    if run_id is not None and history:
        raise click.UsageError("Give --run or --history, not both.")
    with Ledger.existing(ledger) as book:
        source_ids = chosen_sources(book, run_id=run_id, history=history)
        count = write_results(book, output, source_ids=source_ids)
        incomplete = book.incomplete_sources(source_ids)
    click.echo(f"Wrote {count:,} rows to {output}")
    for item in incomplete:
        click.secho(shown(f"Incomplete: {item.describe()}"), err=True, fg="yellow")
    sys.exit(int(ExitCode.ROWS_NEED_ATTENTION if incomplete else ExitCode.OK))
