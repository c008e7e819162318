"""`bulkimport status`: the runs in the ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bulkimport.cli.display import _counts_line, shown
from bulkimport.cli.options import ledger_option

if TYPE_CHECKING:
    pass


@click.command()
@ledger_option
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def status(ledger: Path, as_json: bool) -> None:
    """List the runs in the ledger and their rows.

    For each run: when, which command, engagement, files and rows by status.
    """
    from bulkimport.ledger.store import Ledger

    with Ledger.existing(ledger) as book:
        runs = book.runs()
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
