"""What the commands print: text made safe for a terminal, send summaries, next steps."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bulkimport.cli.stopping import exit_now_if_abandoned
from bulkimport.errors import RefusalCause
from bulkimport.ledger.states import REPORT_ORDER

if TYPE_CHECKING:
    from bulkimport.jobs.summary import RunSummary

# Control characters, bidi overrides, invisible marks (a hostile cell could use them
# to rewrite the terminal) and undecodable bytes of file names are shown as escapes.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufeff]"
)


def shown(text: object) -> str:
    """Return ``text`` safe to print on one terminal line."""
    return _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], str(text))


def _counts_line(counts: Any) -> str:
    return " · ".join(
        f"{status} {counts[status]:,}" for status in REPORT_ORDER if counts.get(status)
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
    if summary.declined:
        click.secho(shown(summary.stopped), fg="yellow", err=True)
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
    if summary.per_minute:
        click.echo(f"  paced at most {summary.per_minute:,} people a minute")
    if summary.recovered:
        click.echo(f"  {summary.recovered} rows interrupted earlier were marked unknown.")
    for waits in _waiting_lines(summary):
        click.secho(shown(f"  {waits}"), fg="yellow")
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


def _waiting_lines(summary: RunSummary) -> list[str]:
    """Say what waits: the limit's rest, each closed window, the unknown rows and the choice."""
    lines = []
    if summary.limited:
        sent = summary.touched.get("subscribed", 0)
        lines.append(
            f"{sent:,} subscribed; {summary.limited:,} wait: run `bulkimport retry` "
            "to send them (--limit)."
        )
    if summary.waiting:
        opens = ", ".join(f"{rows:,} at {when}" for when, rows in sorted(summary.waiting.items()))
        lines.append(
            f"{summary.waiting_rows:,} row(s) wait for their send window (opens: {opens}): "
            f"{summary.resume_with}."
        )
    unknown = summary.counts.get("unknown", 0) or summary.unknown_held
    if unknown:
        lines.append(
            f"{unknown:,} row(s) unknown: their answer was lost, so the person may have got "
            "the message. --unknown resend (the default) sends them again with contact "
            "reuse (no second contact, but maybe a second message); --unknown hold keeps "
            "them until `bulkimport retry --include-unknown`."
        )
    return lines


def _next_steps(summary: RunSummary, results_path: Path | None) -> list[str]:
    if summary.dry_run:
        return _dry_run_steps(summary)
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
    elif (
        summary.waiting
        and counts["pending"] == summary.waiting_pending
        and not (counts["unknown"] or counts["sending"])
    ):
        pass  # said above: the rows wait for their window
    elif counts["pending"] or counts["unknown"] or counts["sending"]:
        hints.append("`bulkimport retry` sends the rows left pending or unknown.")
    return hints


def _dry_run_steps(summary: RunSummary) -> list[str]:
    """A dry run records nothing: there is no ledger to retry or to write results from."""
    hints = []
    if summary.counts["invalid"] or summary.counts["duplicate"]:
        hints.append(
            "fix the invalid rows (`bulkimport check` with --report check.xlsx gives "
            "every row's reason) and run the file again."
        )
    if summary.incomplete:
        hints.append("run the same command again to read the files to their end.")
    hints.append(
        "to send, run the same command without --dry-run. A dry run only shows what "
        f"`bulkimport {summary.command}` would send (the payloads above): it sends and "
        "records nothing, so there is nothing to retry."
    )
    return hints
