"""Stop requests: Ctrl-C, SIGTERM and SIGHUP stop gracefully; a second one stops at once."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import TYPE_CHECKING, NamedTuple

import click

if TYPE_CHECKING:
    from bulkimport.jobs.summary import RunSummary


class StopSignals(NamedTuple):
    """The two stop requests a send loop honours."""

    stop: threading.Event  # finish the batches in flight, record them, send no more
    hard_stop: threading.Event  # do not wait for the batches in flight


# Ctrl-C, and what a service manager or a closed terminal sends.
GRACEFUL_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def graceful_stop() -> Iterator[StopSignals]:
    """First Ctrl-C, SIGTERM or SIGHUP: finish the batches in flight and stop.

    A second: stop at once, recording every answer that already arrived. A third:
    interrupt wherever the command is.
    """
    signals = StopSignals(threading.Event(), threading.Event())

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signals.hard_stop.is_set():
            raise KeyboardInterrupt
        if signals.stop.is_set():
            signals.hard_stop.set()
            _say(f"\n{name}: stopping now.")
            return
        signals.stop.set()
        _say(
            f"\n{name}: stopping after the batches in flight (press Ctrl-C or send {name} "
            "again to stop now)..."
        )

    previous = {signum: signal.signal(signum, handle) for signum in GRACEFUL_SIGNALS}
    try:
        yield signals
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _say(text: str) -> None:
    """Tell the terminal, if there still is one: after SIGHUP it may be gone."""
    with suppress(OSError):  # EIO or a broken pipe: the stop itself must not fail
        click.secho(text, err=True, fg="yellow")


def exit_now_if_abandoned(summary: RunSummary, code: int) -> None:
    """Exit without waiting for send threads when a stop at once left batches in flight.

    Their answers would never be recorded (their rows are already `sending`, and
    become `unknown` on the next start), so waiting for them helps nobody.
    """
    if summary.abandoned:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
