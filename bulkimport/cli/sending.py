"""What run and retry share: the sender, the locked ledger, the results file after a send.

The stages are imported when a command calls these, not when the CLI starts.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bulkimport.cli.display import _print_dry_batch
from bulkimport.cli.stopping import StopSignals
from bulkimport.errors import InputError

if TYPE_CHECKING:
    from bulkimport.jobs.sending import Sender, SendPreview
    from bulkimport.jobs.summary import RunSummary
    from bulkimport.ledger.store import Ledger
    from bulkimport.output.progress import Progress
    from bulkimport.send.client import EngageSparkClient
    from bulkimport.settings import SendSettings


@dataclass(frozen=True)
class Delivery:
    """How many people a command sends, whether it waits for windows, whether it asks first."""

    limit: int | None = None
    wait_for_window: bool = False
    ask: bool = False

    @classmethod
    def from_options(
        cls, *, limit: int | None, wait_for_window: bool, assume_yes: bool, dry_run: bool
    ) -> Delivery:
        """Ask only a person at a terminal: never under cron, a pipe, --yes or --dry-run."""
        at_terminal = sys.stdin.isatty() and sys.stderr.isatty()
        if wait_for_window:
            # Say when the wait resumes, even without -v: a person may be watching.
            waiting = logging.getLogger("bulkimport.jobs.waiting")
            if waiting.getEffectiveLevel() > logging.INFO:
                waiting.setLevel(logging.INFO)
        return cls(limit, wait_for_window, ask=at_terminal and not assume_yes and not dry_run)


def ask_before_sending(preview: SendPreview) -> bool:
    """Ask on the terminal whether to send; return True only for y or yes."""
    try:
        answer = click.prompt(
            f"{preview.describe()} Continue? [y/N]",
            default="",
            show_default=False,
            prompt_suffix=" ",
            err=True,
        )
    except click.Abort:  # Ctrl-D or Ctrl-C at the question
        return False
    return str(answer).strip().lower() in ("y", "yes")


def make_sender(
    key: str,
    settings: SendSettings,
    signals: StopSignals,
    *,
    as_json: bool,
    dry_run: bool,
    delivery: Delivery | None = None,
) -> Sender:
    """Return the client and progress display a send loop uses."""
    from bulkimport.output.progress import progress_for
    from bulkimport.send.client import EngageSparkClient, Timeouts

    return sender_for(
        EngageSparkClient(key, settings.api_url, Timeouts(read=settings.timeout)),
        signals,
        progress=progress_for(sys.stderr, quiet=as_json),
        dry_run=dry_run,
        delivery=delivery,
    )


def sender_for(
    client: EngageSparkClient,
    signals: StopSignals,
    *,
    progress: Progress,
    dry_run: bool = False,
    delivery: Delivery | None = None,
) -> Sender:
    """Return the Sender of every command that sends.

    Tests replace ``bulkimport.jobs.sending.Sender`` (looked up here, at call time)
    to give every command a zero-sleep retry policy.
    """
    from bulkimport.jobs import sending

    delivery = delivery or Delivery()
    return sending.Sender(
        client,
        progress=progress,
        stop=signals.stop,
        hard_stop=signals.hard_stop,
        dry_run=_print_dry_batch if dry_run else None,
        limit=delivery.limit,
        wait_for_window=delivery.wait_for_window,
        confirm=ask_before_sending if delivery.ask else None,
    )


def open_ledger(path: Path, *, dry_run: bool = False) -> AbstractContextManager[Ledger]:
    """Lock and open the ledger (a private in-memory copy for a dry run)."""
    from bulkimport.ledger.store import Ledger

    return Ledger.in_memory_copy(path) if dry_run else Ledger.locked(path)


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
    from bulkimport.output.results import write_results

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
