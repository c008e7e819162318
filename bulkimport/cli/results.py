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
    from bulkimport.ledger.store import Ledger
    from bulkimport.output.results import write_results

    with Ledger.existing(ledger) as book:
        source_ids = None
        if run_id is not None:
            book.run_settings(run_id)  # refuses an unknown run
            source_ids = book.sources_of(run_id)
        count = write_results(book, output, source_ids=source_ids)
        incomplete = book.incomplete_sources(source_ids)
    click.echo(f"Wrote {count:,} rows to {output}")
    for item in incomplete:
        click.secho(shown(f"Incomplete: {item.describe()}"), err=True, fg="yellow")
    sys.exit(int(ExitCode.ROWS_NEED_ATTENTION if incomplete else ExitCode.OK))
