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
    """List the engagements and the runs in the ledger, with their rows.

    Per engagement: the people subscribed, the rows still open (pending,
    unknown) and the rows that failed. For each run: when, which command,
    engagement, files and rows by status.
    """
    from bulkimport.ledger.store import Ledger

    with Ledger.existing(ledger) as book:
        engagements = book.engagements()
        runs = book.runs()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "engagements": [_engagement_json(e) for e in engagements],
                    "runs": [_run_json(r) for r in runs],
                },
                ensure_ascii=False,
            )
        )
        return
    if not runs:
        click.echo("No runs yet.")
    for engagement in engagements:
        click.echo(_engagement_line(engagement))
    if engagements:
        click.echo()
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


def _engagement_line(info: Any) -> str:
    counts = info.counts
    open_rows = counts.get("pending", 0) + counts.get("unknown", 0) + counts.get("sending", 0)
    line = (
        f"engagement {info.engagement_id}: {info.people:,} people subscribed · "
        f"{open_rows:,} rows open · {counts.get('failed', 0):,} failed"
    )
    if counts.get("discarded"):
        line += f" · {counts['discarded']:,} discarded"
    return line


def _engagement_json(info: Any) -> dict[str, Any]:
    counts = info.counts
    return {
        "engagement": info.engagement_id,
        "people_subscribed": info.people,
        "rows_open": {s: counts[s] for s in ("pending", "unknown", "sending") if counts.get(s)},
        "rows_failed": counts.get("failed", 0),
        "rows": counts,
    }


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
