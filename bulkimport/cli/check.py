"""`bulkimport check`: what is wrong with my file?"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bulkimport.cli.display import shown
from bulkimport.cli.options import import_options, input_options

if TYPE_CHECKING:
    from bulkimport.jobs.check import CheckSummary


@click.command()
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
    from bulkimport.jobs.check import check_files
    from bulkimport.output.tables import check_destination

    if report is not None:
        check_destination(report)
    summary = check_files(list(files), import_options(**options), report)
    if as_json:
        click.echo(json.dumps(summary.to_json(), ensure_ascii=False))
    else:
        _print_check(summary)
    sys.exit(int(summary.exit_code))


def _print_check(summary: CheckSummary) -> None:
    from bulkimport.read.sources import listed
    from bulkimport.rows.prepare import Verdict

    for source in summary.sources:
        where = f" (sheet {source.sheet})" if source.sheet else ""
        read_as = ", ".join(
            part
            for part in (
                source.encoding and f"encoding {source.encoding}",
                source.delimiter and f"delimiter {_show_delimiter(source.delimiter)}",
                source.header_row != 1 and f"header found in row {source.header_row}",
            )
            if part
        )
        click.echo(f"{source.source}{where}" + (f": {read_as}" if read_as else ""))
        mapped = listed([f"{header} → {target}" for header, target in source.mapped])
        click.echo(shown(f"  columns used: {mapped}"))
        if source.ignored:
            click.echo(shown(f"  columns not used: {listed(source.ignored)}"))
        if source.longer_rows:
            click.echo(_longer_rows(source.longer_rows))
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


def _longer_rows(count: int) -> str:
    rows = "1 row is" if count == 1 else f"{count:,} rows are"
    return (
        f"  {rows} longer than the header: "
        "the cells to its right are kept as columns of their own (column N)"
    )


def _show_delimiter(delimiter: str) -> str:
    return {"\t": "tab", " ": "space"}.get(delimiter, repr(delimiter))
