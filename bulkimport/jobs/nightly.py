"""The scheduled import: a TOML config, the inbox of exports, one locked night of work.

A night finishes last night's business first (rows left pending or unknown),
then imports each input file that is new, settled and not yet fully imported,
under one lock on the ledger. It never prints: it returns a
:class:`NightSummary` whose JSON form is the one line a morning reader needs.
"""

from __future__ import annotations

import dataclasses
import errno
import glob
import json
import logging
import os
import shutil
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from bulkimport.errors import (
    ApiRefused,
    ApiUnavailable,
    ExitCode,
    InputError,
    LedgerLocked,
    worst,
)
from bulkimport.jobs.config import AfterImport, NightlyConfig
from bulkimport.jobs.importing import retry_rows, run_import
from bulkimport.jobs.sending import Sender
from bulkimport.jobs.summary import RunSummary
from bulkimport.ledger.store import Ledger
from bulkimport.output.results import write_results
from bulkimport.read.sources import fingerprint
from bulkimport.redaction import Redact
from bulkimport.rows.prepare import open_sources
from bulkimport.settings import SendSettings

log = logging.getLogger(__name__)


# --- the inbox --------------------------------------------------------------------------


class FileOutcome(StrEnum):
    """What a night did, or would do, with one input file."""

    NEW = "new"  # would be imported
    PROCESSED = "processed"
    SKIPPED = "skipped"  # identical to a file already fully imported
    STILL_WRITING = "still_writing"  # size or mtime changed while looked at: next run
    DEFERRED = "deferred"  # the API stopped the night before this file: next run
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class InputFile:
    """An input file and what becomes of it tonight."""

    path: Path
    outcome: FileOutcome
    reason: str = ""


@dataclass(frozen=True)
class NightPlan:
    """What the inputs match now, for `--check-config`."""

    patterns: tuple[tuple[str, tuple[Path, ...]], ...]
    files: tuple[InputFile, ...]


def find_inputs(config: NightlyConfig) -> list[Path]:
    """Return the files the input patterns match now, sorted, once each.

    Files inside the results or archive folder, the ledger and log files, and
    Excel's ``~$`` lock files are left out, so the night never eats its own output.
    An entry that cannot be looked at (a symlink loop, a dangling link, no
    permission) is kept, under its own name: :func:`triage` reports it as unreadable.
    """
    found: dict[Path, None] = {}
    for pattern in config.inputs:
        found.update(dict.fromkeys(_matches(config, pattern)))
    return sorted(found)


def _matches(config: NightlyConfig, pattern: str) -> list[Path]:
    ledger = _resolved(config.ledger)
    log_file = _resolved(config.log_file) if config.log_file else None
    own_folders = [_resolved(d) for d in (config.results_dir, config.archive_dir) if d]
    names = glob.glob(os.path.expanduser(pattern), root_dir=config.folder, recursive=True)
    paths = []
    for name in names:
        entry = config.folder / name
        if entry.name.startswith("~$"):
            continue
        try:
            path = entry.resolve(strict=True)
            is_file = stat.S_ISREG(path.stat().st_mode)
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python 3.11)
            if os.path.lexists(entry):
                paths.append(Path(os.path.abspath(entry)))  # triage says what is wrong
            continue
        if not is_file or path == log_file:
            continue
        # The ledger comes with -wal, -shm and .lock files beside it.
        if path.parent == ledger.parent and path.name.startswith(ledger.name):
            continue
        if any(path.is_relative_to(folder) for folder in own_folders):
            continue
        paths.append(path)
    return paths


def _resolved(path: Path) -> Path:
    """Return ``path`` resolved, or only made absolute when it cannot be (a symlink loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


def entry_problem(path: Path) -> str | None:
    """Return why an inbox entry cannot be used as a file (one sentence), or None if it can."""
    try:
        path.resolve(strict=True).stat()
    except RuntimeError:
        return (
            f"{path} is a symbolic link that loops (it points back to itself): "
            "remove it from the inbox or point it at a file."
        )
    except FileNotFoundError:
        if path.is_symlink():
            return (
                f"{path} is a symbolic link to a file that does not exist: "
                "remove the link or put the file back."
            )
        return f"{path} disappeared while the inbox was read: it is looked at again next run."
    except OSError as error:
        if error.errno == errno.ELOOP:
            return (
                f"{path} is a symbolic link that loops (it points back to itself): "
                "remove it from the inbox or point it at a file."
            )
        return (
            f"Cannot look at {path} ({error.strerror}): give the user running the import "
            "access to it and its folder, or remove it from the inbox."
        )
    return None


def still_writing(
    paths: Sequence[Path], settle_seconds: float, sleep: Callable[[float], None]
) -> set[Path]:
    """Return the files whose size or mtime changes across ``settle_seconds`` (one wait)."""
    if settle_seconds <= 0 or not paths:
        return set()
    first = {path: _look(path) for path in paths}
    sleep(settle_seconds)
    return {path for path in paths if _look(path) != first[path]}


def _look(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


def triage(path: Path, config: NightlyConfig, ledger: Ledger | None) -> InputFile:
    """Return whether ``path`` is new, identical to a file already imported, or unusable.

    The file is opened and its header mapped, so a file `run` would refuse
    (missing column, damaged workbook) is reported here, before anything is sent.
    """
    problem = entry_problem(path)
    if problem is not None:
        return InputFile(path, FileOutcome.UNREADABLE, problem)
    try:
        with open_sources([path], config.import_options()) as sources:
            sheet = sources[0].table.sheet
        sha = fingerprint(path)
    except InputError as error:
        return InputFile(path, FileOutcome.UNREADABLE, str(error))
    except OSError as error:  # readers raise InputError; this is a last guard for the night
        return InputFile(
            path,
            FileOutcome.UNREADABLE,
            f"Cannot read {path} ({error.strerror}): check the file and its permissions.",
        )
    if ledger is not None and ledger.source_seen(sha, sheet, config.engagement):
        return InputFile(
            path, FileOutcome.SKIPPED, "identical to a file already imported for this engagement"
        )
    return InputFile(path, FileOutcome.NEW)


def preview_night(config: NightlyConfig) -> NightPlan:
    """Return what the inputs match now and which files a night would skip; sends nothing."""
    with ExitStack() as stack:
        ledger = (
            stack.enter_context(Ledger.open(config.ledger)) if config.ledger.is_file() else None
        )
        patterns = tuple((p, tuple(sorted(set(_matches(config, p))))) for p in config.inputs)
        files = tuple(triage(path, config, ledger) for path in find_inputs(config))
    return NightPlan(patterns, files)


# --- one night --------------------------------------------------------------------------


@dataclass
class NightSummary:
    """What a night did: files, the retry and import runs, and the exit code."""

    config: Path
    engagement_id: int
    started_at: datetime
    files: dict[Path, InputFile] = field(default_factory=dict)
    parts: list[RunSummary] = field(default_factory=list)
    recovered: int = 0
    results: list[Path] = field(default_factory=list)
    archived: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    refused: bool = False
    unavailable: bool = False
    duration: float = 0.0
    exit_code: ExitCode = ExitCode.OK

    def mark(self, path: Path, outcome: FileOutcome, reason: str = "") -> None:
        self.files[path] = InputFile(path, outcome, reason)

    def add(self, part: RunSummary) -> None:
        self.parts.append(part)
        self.refused = self.refused or part.refused
        self.unavailable = self.unavailable or part.unavailable

    @property
    def stopped(self) -> bool:
        """True when the API refused the run or stayed unavailable: send nothing more."""
        return self.refused or self.unavailable

    def _waiting_json(self) -> dict[str, Any] | None:
        return _night_waiting(self.parts)

    @property
    def rows(self) -> Counter[str]:
        """Return the rows tonight's runs recorded or sent, by status (not earlier nights')."""
        total: Counter[str] = Counter()
        for part in self.parts:
            total.update(part.touched)
        return +total

    def decide_exit_code(self) -> None:
        codes = [part.exit_code for part in self.parts]
        if self.refused:
            codes.append(ExitCode.API_REFUSED)
        if self.unavailable:
            codes.append(ExitCode.API_UNAVAILABLE)
        if self.problems:
            codes.append(ExitCode.ROWS_NEED_ATTENTION)
        self.exit_code = worst(codes)

    def to_json(self) -> dict[str, Any]:
        """Return the night as the one JSON object printed at the end."""
        by_outcome: dict[str, list[str]] = {}
        for item in self.files.values():
            by_outcome.setdefault(item.outcome.value, []).append(str(item.path))
        counts = {
            o.value: len(by_outcome.get(o.value, ())) for o in FileOutcome if o.value != "new"
        }
        stopped = next((p.stopped for p in self.parts if p.stopped), None)
        return {
            "command": "nightly",
            "config": str(self.config),
            "engagement": self.engagement_id,
            "started": self.started_at.isoformat(timespec="seconds"),
            "files": {"seen": len(self.files), **counts},
            "paths": by_outcome,
            "runs": [p.run_id for p in self.parts],
            "recovered": self.recovered,
            "rows": dict(self.rows),
            "batches": sum(p.batches for p in self.parts),
            "attempts": sum(p.attempts for p in self.parts),
            "retries": sum(p.retries for p in self.parts),
            "results": [str(path) for path in self.results],
            "archived": [str(path) for path in self.archived],
            "problems": self.problems,
            "waiting": self._waiting_json(),
            "stopped": stopped,
            "duration_seconds": round(self.duration, 3),
            "exit_code": int(self.exit_code),
        }


def _night_waiting(parts: Sequence[RunSummary]) -> dict[str, Any] | None:
    """Return the rows that still wait for their window at the end of the night, if any."""
    windows: Counter[str] = Counter()
    opens: dict[str, str | None] = {}
    for part in parts:
        found = part.waiting_json()
        for window in found["windows"] if found else ():
            windows[window["opens"]] += window["rows"]
            opens[window["opens"]] = window["at"]
    if not windows:
        return None
    return {
        "rows": sum(windows.values()),
        "windows": [
            {"opens": opening, "at": opens[opening], "rows": rows}
            for opening, rows in sorted(windows.items())
        ],
        "command": "bulkimport nightly (its next run) or bulkimport retry",
    }


def failure_json(config: Path, error: Exception, exit_code: ExitCode) -> dict[str, Any]:
    """Return the JSON line of a night that could not start (bad config, ledger locked)."""
    return {
        "command": "nightly",
        "config": str(config),
        "error": str(error),
        "exit_code": int(exit_code),
    }


def run_night(
    config: NightlyConfig,
    sender: Sender,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] | None = None,
) -> NightSummary:
    """Run one night under the ledger's lock: retry what is open, then import new files.

    Raises LedgerLocked at once when another run holds the ledger.
    """
    started = clock()
    night = NightSummary(config.path, config.engagement, (now or _local_now)())
    try:
        with Ledger.locked(config.ledger) as ledger:
            _work(config, ledger, sender, night, sleep)
    except LedgerLocked as error:
        log.warning("%s", error)  # so the log file, not only cron mail, says why nothing ran
        raise
    night.duration = clock() - started
    night.decide_exit_code()
    log.info("night done: %s", json.dumps(night.to_json(), ensure_ascii=False))
    return night


def _local_now() -> datetime:
    return datetime.now().astimezone()


def _work(
    config: NightlyConfig,
    ledger: Ledger,
    sender: Sender,
    night: NightSummary,
    sleep: Callable[[float], None],
) -> None:
    paths = find_inputs(config)
    log.info("%d input file(s) match %s", len(paths), ", ".join(config.inputs))
    moving = still_writing(paths, config.settle_seconds, sleep)
    for path in paths:
        if path in moving:
            log.info("%s is still being written: left for the next run", config.show(path))
            night.mark(path, FileOutcome.STILL_WRITING, "its size or time changed while looked at")
        else:
            found = triage(path, config, ledger)
            night.files[path] = found
            if found.outcome is FileOutcome.UNREADABLE:
                log.warning("%s", found.reason)
                night.problems.append(found.reason)
    settings = config.send_settings()
    _finish_open_rows(config, ledger, settings, sender, night)
    for path, found in list(night.files.items()):
        if found.outcome is FileOutcome.NEW:
            _import_file(config, ledger, settings, sender, night, path)
        if night.files[path].outcome in (FileOutcome.PROCESSED, FileOutcome.SKIPPED):
            _archive(config, night, path)
    _wait_for_windows(config, ledger, settings, sender, night)
    _judge_incomplete_at_the_end(ledger, night)


def _wait_for_windows(
    config: NightlyConfig,
    ledger: Ledger,
    settings: SendSettings,
    sender: Sender,
    night: NightSummary,
) -> None:
    """Stay, once every file is recorded, and send the rows that wait as their windows open.

    Every file is read and checked at night; people are messaged from the
    opening of their window. The lock stays held; a stop request ends the wait.
    """
    if not config.wait_for_window or night.stopped or sender.stop.is_set():
        return
    if not any(part.waiting for part in night.parts):
        return
    log.info("rows wait for their send window: staying to send them as the windows open")
    part = retry_rows(ledger, settings, dataclasses.replace(sender, wait_for_window=True))
    for earlier in night.parts:
        # The waiting rows are this last part's now: it says what became of them.
        earlier.hand_over_waiting()
        if earlier.run_id is not None:
            earlier.touched = ledger.counts(touched_by=earlier.run_id)
        earlier.decide_exit_code()
    night.add(part)


def _judge_incomplete_at_the_end(ledger: Ledger, night: NightSummary) -> None:
    """Keep only files still incomplete after the night: tonight's import may have finished one.

    The retry of earlier rows comes first and sees a file an earlier night did
    not read to its end; the import of that file later tonight completes it.
    """
    still = {item.describe() for item in ledger.incomplete_sources()}
    for part in night.parts:
        if part.incomplete:
            part.incomplete = [item for item in part.incomplete if item in still]
            part.decide_exit_code()


def _finish_open_rows(
    config: NightlyConfig,
    ledger: Ledger,
    settings: SendSettings,
    sender: Sender,
    night: NightSummary,
) -> None:
    """Send the rows an earlier run left pending, unknown or sending (unknown with reuse)."""
    if config.engagement not in ledger.engagements_with_open_rows():
        return
    log.info("sending the rows left pending or unknown by earlier runs")
    part = retry_rows(ledger, settings, sender)  # it recovers rows left `sending` first
    night.recovered = part.recovered
    if part.recovered:
        log.info("%d row(s) interrupted earlier were sent again with contact reuse", part.recovered)
    night.add(part)


def _import_file(
    config: NightlyConfig,
    ledger: Ledger,
    settings: SendSettings,
    sender: Sender,
    night: NightSummary,
    path: Path,
) -> None:
    if night.stopped or sender.stop.is_set():
        night.mark(path, FileOutcome.DEFERRED, "the night stopped before this file")
        return
    log.info("importing %s", config.show(path))
    try:
        part = run_import([path], config.import_options(), settings, ledger, sender)
    except (ApiRefused, ApiUnavailable) as error:
        night.refused = night.refused or isinstance(error, ApiRefused)
        night.unavailable = night.unavailable or isinstance(error, ApiUnavailable)
        night.problems.append(str(error))
        night.mark(path, FileOutcome.DEFERRED, str(error))
        return
    except InputError as error:
        log.warning("%s", error)
        night.problems.append(str(error))
        night.mark(path, FileOutcome.UNREADABLE, str(error))
        return
    night.add(part)
    night.mark(path, FileOutcome.PROCESSED)
    if config.results_dir is not None:
        _write_results(config, ledger, night, path, part.source_ids)


def _write_results(
    config: NightlyConfig,
    ledger: Ledger,
    night: NightSummary,
    path: Path,
    source_ids: Sequence[int],
) -> None:
    assert config.results_dir is not None
    target = _free_name(config.results_dir, path.stem, ".xlsx", night.started_at.date())
    try:
        write_results(ledger, target, source_ids=source_ids)
    except InputError as error:
        night.problems.append(str(error))
        return
    night.results.append(target)


def _archive(config: NightlyConfig, night: NightSummary, path: Path) -> None:
    """Move a file the ledger fully holds into the archive folder, under a dated name."""
    if config.after is not AfterImport.ARCHIVE or config.archive_dir is None:
        return
    target = _free_name(config.archive_dir, path.stem, path.suffix, night.started_at.date())
    try:
        shutil.move(path, target)
    except OSError as error:
        night.problems.append(
            f"Cannot move {path} to {target} ({error.strerror}): "
            "check the archive folder's permissions."
        )
        return
    log.info("archived %s as %s", config.show(path), config.show(target))
    night.archived.append(target)


def _free_name(folder: Path, stem: str, suffix: str, day: date) -> Path:
    """Return ``folder/stem-YYYY-MM-DD.suffix``, numbered when that name is taken."""
    target = folder / f"{stem}-{day.isoformat()}{suffix}"
    number = 2
    while target.exists():
        target = folder / f"{stem}-{day.isoformat()}-{number}{suffix}"
        number += 1
    return target


# --- logging ----------------------------------------------------------------------------


@contextmanager
def night_log(log_file: Path | None, *, secrets: Sequence[str] = ()) -> Iterator[None]:
    """Log the package's INFO lines (to ``log_file`` too), phone numbers and key masked."""
    package = logging.getLogger("bulkimport")
    redact = Redact(secrets)
    handlers = list(logging.getLogger().handlers)
    if log_file is not None:
        try:
            if not log_file.exists():
                # The log names files and people's masked numbers: keep it private like the ledger.
                os.close(os.open(log_file, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600))
            file_handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as error:
            raise InputError(
                f"Cannot open the log file {log_file} ({error.strerror}): "
                "check its folder's permissions or change log_file."
            ) from error
        file_handler.setLevel(logging.INFO)
        file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        package.addHandler(file_handler)
        handlers.append(file_handler)
    for handler in handlers:
        handler.addFilter(redact)
    level = package.level
    package.setLevel(min(package.getEffectiveLevel(), logging.INFO))
    try:
        yield
    finally:
        package.setLevel(level)
        for handler in handlers:
            handler.removeFilter(redact)
        if log_file is not None:
            package.removeHandler(file_handler)
            file_handler.close()
