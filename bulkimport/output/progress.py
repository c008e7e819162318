"""Progress: the protocol the send loop reports to, a bar on a terminal, log lines elsewhere.

rich is imported only when a bar is drawn, so commands that draw none start fast.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TextIO, runtime_checkable

if TYPE_CHECKING:
    from rich.progress import TaskID

log = logging.getLogger("bulkimport.output.progress")


class Progress(Protocol):
    """Where the pipeline reports rows done (a progress bar, log lines, or nothing)."""

    def begin(self, total: int) -> None: ...  # 0 when not known in advance
    def advance(self, rows: int) -> None: ...
    def end(self) -> None: ...


@runtime_checkable
class PacedProgress(Protocol):
    """A progress display that can count a pace (--max-per-minute) into its time left."""

    def pace(self, per_minute: int) -> None: ...


def paced_minutes(rows: int, per_minute: int) -> float:
    """Return the minutes ``rows`` take at ``per_minute`` (the pace bounds the time left)."""
    return rows / per_minute


class NoProgress:
    """Reports nowhere: for --json, dry runs and the library face."""

    def begin(self, total: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass

    def end(self) -> None:
        pass


class BarProgress:
    """A rich progress bar: rows done of total, rows per second, time left.

    The time left is the longer of what the rows per second so far and the
    pace (--max-per-minute) say: a burst of fast answers cannot shorten a pace.
    """

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as Bar

        self._bar = Bar(
            TextColumn("sending"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s"),
            TextColumn("[cyan]{task.fields[left]}"),
            console=Console(file=stream),
            transient=True,
        )
        self._task: TaskID | None = None
        self._started = 0.0
        self._done = 0
        self._total = 0
        self._per_minute: int | None = None

    def pace(self, per_minute: int) -> None:
        self._per_minute = per_minute

    def begin(self, total: int) -> None:
        self._started = time.monotonic()
        self._total = total
        self._done = 0
        self._bar.start()
        # 0: not known in advance.
        self._task = self._bar.add_task(
            "send", total=total or None, rate="-", left=self._time_left(0.0)
        )

    def advance(self, rows: int) -> None:
        self._done += rows
        elapsed = max(time.monotonic() - self._started, 1e-6)
        if self._task is not None:
            self._bar.update(
                self._task,
                advance=rows,
                rate=f"{self._done / elapsed:,.0f}",
                left=self._time_left(elapsed),
            )

    def _time_left(self, elapsed: float) -> str:
        return describe_left(self._total, self._done, elapsed, self._per_minute)

    def end(self) -> None:
        self._bar.stop()


def describe_left(total: int, done: int, elapsed: float, per_minute: int | None) -> str:
    """Return the time left as ``H:MM:SS``: at the rate so far, never less than at the pace."""
    remaining = max(total - done, 0)
    if not total:
        return "-:--:--"
    seconds = remaining * elapsed / done if done else 0.0
    if per_minute:
        seconds = max(seconds, paced_minutes(remaining, per_minute) * 60)
    elif not done:
        return "-:--:--"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class LogProgress:
    """One log line at most every ``every`` seconds, for cron and log files.

    The lines hold counts and rates only, never a phone number. ``clock``
    (seconds, monotonic) is injectable so a test can move time on without sleeping.
    """

    def __init__(self, every: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every
        self._clock = clock
        self._total = 0
        self._done = 0
        self._started = self._last = 0.0
        self._per_minute: int | None = None

    def pace(self, per_minute: int) -> None:
        self._per_minute = per_minute

    def begin(self, total: int) -> None:
        self._total = total
        self._started = self._last = self._clock()
        if total and self._per_minute:
            minutes = paced_minutes(total, self._per_minute)
            log.info(
                "sending %d rows at most %d a minute (about %.1f minutes)",
                total,
                self._per_minute,
                minutes,
            )
        elif total:
            log.info("sending %d rows", total)
        else:
            log.info("sending rows as they are read")

    def advance(self, rows: int) -> None:
        self._done += rows
        now = self._clock()
        if now - self._last >= self._every:
            self._last = now
            rate = self._done / max(now - self._started, 1e-6)
            of = f" of {self._total}" if self._total else ""
            log.info("sent %d%s rows (%.0f rows/s)", self._done, of, rate)

    def end(self) -> None:
        log.info("sent %d rows", self._done)


def progress_for(
    stream: TextIO, *, quiet: bool = False, clock: Callable[[], float] = time.monotonic
) -> Progress:
    """Return a bar when ``stream`` is a terminal, log lines otherwise, nothing when quiet.

    The log lines are INFO records of ``bulkimport.output.progress``; that logger is
    set to INFO (unless it already logs more), so the lines show at the default
    verbosity, where the root logger shows only warnings.
    """
    if quiet:
        return NoProgress()
    if stream.isatty():
        return BarProgress(stream)
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    return LogProgress(clock=clock)
