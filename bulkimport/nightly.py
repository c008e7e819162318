"""The scheduled import: a TOML config, the inbox of exports, one locked night of work.

A night finishes last night's business first (rows left pending or unknown),
then imports each input file that is new, settled and not yet fully imported,
under one lock on the ledger. It never prints: it returns a
:class:`NightSummary` whose JSON form is the one line a morning reader needs.
"""

from __future__ import annotations

import codecs
import difflib
import glob
import json
import logging
import os
import re
import shutil
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bulkimport.api import DEFAULT_API_URL
from bulkimport.columns import MapOverride, parse_map
from bulkimport.contacts import Field, mask_phone
from bulkimport.credentials import API_KEY_ENV
from bulkimport.errors import ApiRefused, ApiUnavailable, ExitCode, InputError, LedgerLocked
from bulkimport.ledger import DEFAULT_LEDGER, Ledger
from bulkimport.lock import LedgerLock
from bulkimport.normalize import ContactDefaults
from bulkimport.phones import PhonePolicy, check_country
from bulkimport.pipeline import RunSummary, Sender, SendSettings, retry_rows, run_import
from bulkimport.report import write_results
from bulkimport.sources import ReadOptions, fingerprint
from bulkimport.validate import ImportOptions, open_sources

log = logging.getLogger(__name__)

DEFAULT_SETTLE_SECONDS = 5.0
# Worst first: the code a night exits with is the worst of its parts.
SEVERITY = (
    ExitCode.API_REFUSED,
    ExitCode.API_UNAVAILABLE,
    ExitCode.ROWS_NEED_ATTENTION,
    ExitCode.OK,
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PHONE_LIKE = re.compile(r"(?<!\d)\+?(\d{9,15})(?!\d)")


class ConfigError(InputError):
    """The nightly config file cannot be used as written (exit code 2)."""


class AfterImport(StrEnum):
    """What happens to an input file once the ledger holds all its rows."""

    LEAVE = "leave"
    ARCHIVE = "archive"


# --- the config file --------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    """One config key: what it must be, in words, and the test for it."""

    must_be: str
    accepts: Callable[[Any], bool]
    required: bool = False


def _is_int(value: Any, low: int = 1, high: int | None = None) -> bool:
    # TOML booleans are Python ints; `batch_size = true` must not pass as 1.
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return value >= low and (high is None or value <= high)


def _is_number(value: Any, low: float, high: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return low <= value <= high


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_globs(value: Any) -> bool:
    if isinstance(value, str):
        return _is_text(value)
    return isinstance(value, list) and bool(value) and all(_is_text(v) for v in value)


def _is_url(value: Any) -> bool:
    if not _is_text(value):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _is_encoding(value: Any) -> bool:
    if not _is_text(value):
        return False
    try:
        codecs.lookup(value)
    except LookupError:
        return False
    return True


def _is_delimiter(value: Any) -> bool:
    return isinstance(value, str) and (len(value) == 1 or value.lower() in ("tab", "\\t"))


KEYS: Mapping[str, _Key] = {
    "engagement": _Key("the engagement id, a whole number", _is_int, required=True),
    "inputs": _Key(
        'a file pattern or a list of them, e.g. ["inbox/*.xlsx"]', _is_globs, required=True
    ),
    "api_url": _Key("an http(s) address", _is_url),
    "api_key_env": _Key(
        "the name of an environment variable",
        lambda v: isinstance(v, str) and bool(_ENV_NAME.fullmatch(v)),
    ),
    "api_key_file": _Key("a file path in quotes", _is_text),
    "country": _Key('a two-letter country code in quotes, e.g. "PH"', _is_text),
    "ledger": _Key("a file path in quotes", _is_text),
    "sheet": _Key("a sheet name in quotes or a sheet number", lambda v: _is_text(v) or _is_int(v)),
    "encoding": _Key('an encoding name such as "utf-8" or "cp1252"', _is_encoding),
    "delimiter": _Key('one character such as ";" or "tab"', _is_delimiter),
    "map": _Key('a table of "Header" = "field" lines', lambda v: isinstance(v, dict)),
    "batch_size": _Key("a whole number from 1 to 1000", lambda v: _is_int(v, 1, 1000)),
    "concurrency": _Key("a whole number from 1 to 32", lambda v: _is_int(v, 1, 32)),
    "timeout": _Key("a number of seconds from 1 to 600", lambda v: _is_number(v, 1, 600)),
    "reuse": _Key("true or false", lambda v: isinstance(v, bool)),
    "groups": _Key(
        "a list of group ids, e.g. [12, 15]",
        lambda v: isinstance(v, list) and all(_is_int(g) for g in v),
    ),
    "organization": _Key("an organization id, a whole number", _is_int),
    "allow_possible": _Key("true or false", lambda v: isinstance(v, bool)),
    "mobile_only": _Key("true or false", lambda v: isinstance(v, bool)),
    "allow_duplicates": _Key("true or false", lambda v: isinstance(v, bool)),
    "results_dir": _Key("a folder path in quotes", _is_text),
    "after": _Key('"leave" or "archive"', lambda v: v in tuple(AfterImport)),
    "archive_dir": _Key("a folder path in quotes", _is_text),
    "log_file": _Key("a file path in quotes", _is_text),
    "settle_seconds": _Key("a number of seconds from 0 to 3600", lambda v: _is_number(v, 0, 3600)),
}


@dataclass(frozen=True)
class NightlyConfig:
    """A validated nightly config; every path is absolute (relative ones start at its folder)."""

    path: Path
    engagement: int
    inputs: tuple[str, ...]
    ledger: Path
    api_url: str = DEFAULT_API_URL
    api_key_env: str = API_KEY_ENV
    api_key_file: Path | None = None
    country: str | None = None
    sheet: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    maps: tuple[MapOverride, ...] = ()
    batch_size: int = 100
    concurrency: int = 2
    timeout: float = 30.0
    reuse: bool = True
    groups: tuple[int, ...] = ()
    organization: int | None = None
    allow_possible: bool = False
    mobile_only: bool = False
    allow_duplicates: bool = False
    results_dir: Path | None = None
    after: AfterImport = AfterImport.LEAVE
    archive_dir: Path | None = None
    log_file: Path | None = None
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    text: str = field(default="", repr=False, compare=False)

    @property
    def folder(self) -> Path:
        """Return the folder the config file is in (where relative paths start)."""
        return self.path.parent

    def send_settings(self) -> SendSettings:
        """Return how to talk to the API, as `run` would from the same options."""
        return SendSettings(
            self.engagement,
            api_url=self.api_url,
            reuse=self.reuse,
            batch_size=self.batch_size,
            concurrency=self.concurrency,
            timeout=self.timeout,
        )

    def import_options(self) -> ImportOptions:
        """Return how to read, map and validate the inputs, as `run` would."""
        return ImportOptions(
            read=ReadOptions(sheet=self.sheet, encoding=self.encoding, delimiter=self.delimiter),
            overrides=self.maps,
            phones=PhonePolicy(
                country=self.country,
                allow_possible=self.allow_possible,
                mobile_only=self.mobile_only,
            ),
            allow_duplicates=self.allow_duplicates,
            defaults=ContactDefaults(groups=self.groups, organization_id=self.organization),
        )

    def show(self, path: Path) -> str:
        """Return ``path`` relative to the config's folder when it lies inside it."""
        try:
            return str(path.relative_to(self.folder))
        except ValueError:
            return str(path)

    def error(self, key: str, problem: str, *, table: str | None = None) -> ConfigError:
        """Return the error for ``key``, naming the config file and the key's line."""
        return ConfigError(f"{_where(self.path, self.text, key, table)}: {problem}")


def load_config(path: Path) -> NightlyConfig:
    """Read and validate a nightly config; raise ConfigError naming the first bad key."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise ConfigError(
            f"Cannot read the config file {path} ({reason}): check the path given to --config."
        ) from error
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            f"{path} is not valid TOML ({error}): fix the file at that line."
        ) from error
    return _parse(path.resolve(), text, raw)


def _parse(path: Path, text: str, raw: Mapping[str, Any]) -> NightlyConfig:
    """Return the config that ``raw`` (parsed TOML) describes, checking every key."""

    def fail(key: str, problem: str, table: str | None = None) -> ConfigError:
        return ConfigError(f"{_where(path, text, key, table)}: {problem}")

    for key, value in raw.items():
        spec = KEYS.get(key)
        if spec is None:
            raise fail(key, _unknown_key(key))
        if not spec.accepts(value):
            raise fail(key, f'"{key}" must be {spec.must_be}, not {_shown(value)}; fix the value.')
    for key, spec in KEYS.items():
        if spec.required and key not in raw:
            raise fail(key, f'the required key "{key}" is missing; add it, e.g. {_example(key)}.')
    folder = path.parent

    def path_of(key: str) -> Path | None:
        value = raw.get(key)
        return None if value is None else folder / Path(value).expanduser()

    _check_key_source(raw, fail)
    after = AfterImport(raw.get("after", AfterImport.LEAVE))
    _check_archive(raw, after, fail)
    inputs = raw["inputs"]
    sheet = raw.get("sheet")
    return NightlyConfig(
        path=path,
        engagement=raw["engagement"],
        inputs=(inputs,) if isinstance(inputs, str) else tuple(inputs),
        ledger=path_of("ledger") or folder / DEFAULT_LEDGER,
        api_url=raw.get("api_url", DEFAULT_API_URL),
        api_key_env=raw.get("api_key_env", API_KEY_ENV),
        api_key_file=path_of("api_key_file"),
        country=_country(raw.get("country"), fail),
        sheet=None if sheet is None else str(sheet),
        encoding=raw.get("encoding"),
        delimiter=raw.get("delimiter"),
        maps=_maps(raw.get("map", {}), fail),
        batch_size=raw.get("batch_size", 100),
        concurrency=raw.get("concurrency", 2),
        timeout=float(raw.get("timeout", 30.0)),
        reuse=raw.get("reuse", True),
        groups=tuple(raw.get("groups", ())),
        organization=raw.get("organization"),
        allow_possible=raw.get("allow_possible", False),
        mobile_only=raw.get("mobile_only", False),
        allow_duplicates=raw.get("allow_duplicates", False),
        results_dir=path_of("results_dir"),
        after=after,
        archive_dir=path_of("archive_dir"),
        log_file=path_of("log_file"),
        settle_seconds=float(raw.get("settle_seconds", DEFAULT_SETTLE_SECONDS)),
        text=text,
    )


Fail = Callable[..., ConfigError]


def _check_key_source(raw: Mapping[str, Any], fail: Fail) -> None:
    if "api_key_env" in raw and "api_key_file" in raw:
        raise fail(
            "api_key_file",
            '"api_key_env" and "api_key_file" both say where the API key is; keep only one.',
        )


def _check_archive(raw: Mapping[str, Any], after: AfterImport, fail: Fail) -> None:
    if after is AfterImport.ARCHIVE and "archive_dir" not in raw:
        raise fail(
            "after",
            '"archive_dir" is required when after = "archive"; add e.g. archive_dir = "archive".',
        )
    if after is AfterImport.LEAVE and "archive_dir" in raw:
        raise fail(
            "archive_dir",
            '"archive_dir" is set but after is "leave"; add after = "archive" '
            "or remove archive_dir.",
        )


def _country(value: str | None, fail: Fail) -> str | None:
    if value is None:
        return None
    try:
        return check_country(value)
    except InputError as error:
        raise fail(
            "country", f'"country" = {_shown(value)} is not a country code; {error}'
        ) from error


def _maps(table: Mapping[str, Any], fail: Fail) -> tuple[MapOverride, ...]:
    """Return the column overrides of the [map] table, refusing unknown targets."""
    overrides = []
    for header, target in table.items():
        key = f'map."{header}"'
        if not _is_text(target):
            raise fail(
                header,
                f"{key} must be a field name in quotes, not {_shown(target)}; fix the value.",
                "map",
            )
        try:
            overrides.append(parse_map(f"{header}={target}"))
        except InputError as error:
            known = ", ".join(f.value for f in Field)
            raise fail(
                header,
                f"{key} = {_shown(target)} is not a field; use one of {known}, "
                'custom:NAME or "ignore".',
                "map",
            ) from error
    return tuple(overrides)


def _unknown_key(key: str) -> str:
    if key in ("api_key", "key", "token"):
        return (
            f'"{key}": the API key does not belong in the config file; put it in the '
            "environment variable named by api_key_env, or in a file named by api_key_file."
        )
    close = difflib.get_close_matches(key, KEYS, n=1)
    hint = f' (did you mean "{close[0]}"?)' if close else ""
    return f'unknown key "{key}"{hint}; remove it or fix its name.'


def _example(key: str) -> str:
    return {"engagement": "engagement = 1234", "inputs": 'inputs = ["inbox/*.xlsx"]'}.get(
        key, f"{key} = ..."
    )


def _shown(value: Any) -> str:
    """Return a config value as TOML would write it, with its kind when that is the problem."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return f"the list {json.dumps(value, ensure_ascii=False, default=str)}"
    return str(value)


def _where(path: Path, text: str, key: str, table: str | None) -> str:
    line = _line_of(text, key, table)
    return f"{path.name} line {line}" if line else str(path.name)


def _line_of(text: str, key: str, table: str | None = None) -> int | None:
    """Return the 1-based line where ``key`` is set (inside ``[table]`` if given), if found."""
    quoted = rf"(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')"
    lines = text.splitlines()
    start = 0
    if table is not None:
        header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]")
        start = next((i + 1 for i, line in enumerate(lines) if header.match(line)), 0)
    patterns = (
        re.compile(rf"^\s*{quoted}\s*[=.]"),
        re.compile(rf"^\s*\[\s*{quoted}\s*\]"),
        re.compile(rf"(?:^|[\s{{,]){quoted}\s*="),
    )
    for pattern in patterns:
        for number, line in enumerate(lines[start:], start=start + 1):
            if pattern.search(line):
                return number
    return None


def check_paths(config: NightlyConfig) -> None:
    """Raise ConfigError when a folder the night writes to does not exist."""
    folders = {
        "ledger": config.ledger.parent,
        "log_file": config.log_file.parent if config.log_file else None,
        "results_dir": config.results_dir,
        "archive_dir": config.archive_dir,
    }
    for key, folder in folders.items():
        if folder is not None and not folder.is_dir():
            raise config.error(
                key, f'"{key}": the folder {folder} does not exist; create it or change {key}.'
            )
    if config.ledger.is_dir():
        raise config.error("ledger", f'"ledger": {config.ledger} is a folder; name a file.')


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
    """
    found: dict[Path, None] = {}
    for pattern in config.inputs:
        found.update(dict.fromkeys(_matches(config, pattern)))
    return sorted(found)


def _matches(config: NightlyConfig, pattern: str) -> list[Path]:
    ledger = config.ledger.resolve()
    log_file = config.log_file.resolve() if config.log_file else None
    own_folders = [d.resolve() for d in (config.results_dir, config.archive_dir) if d]
    names = glob.glob(os.path.expanduser(pattern), root_dir=config.folder, recursive=True)
    paths = []
    for name in names:
        path = (config.folder / name).resolve()
        if not path.is_file() or path.name.startswith("~$") or path == log_file:
            continue
        # The ledger comes with -wal, -shm and .lock files beside it.
        if path.parent == ledger.parent and path.name.startswith(ledger.name):
            continue
        if any(path.is_relative_to(folder) for folder in own_folders):
            continue
        paths.append(path)
    return paths


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
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def triage(path: Path, config: NightlyConfig, ledger: Ledger | None) -> InputFile:
    """Return whether ``path`` is new, identical to a file already imported, or unusable.

    The file is opened and its header mapped, so a file `run` would refuse
    (missing column, damaged workbook) is reported here, before anything is sent.
    """
    try:
        with open_sources([path], config.import_options()) as sources:
            sheet = sources[0].table.sheet
        sha = fingerprint(path)
    except InputError as error:
        return InputFile(path, FileOutcome.UNREADABLE, str(error))
    if ledger is not None and ledger.source_seen(sha, sheet, config.engagement):
        return InputFile(
            path, FileOutcome.SKIPPED, "identical to a file already imported for this engagement"
        )
    return InputFile(path, FileOutcome.NEW)


def preview_night(config: NightlyConfig) -> NightPlan:
    """Return what the inputs match now and which files a night would skip; sends nothing."""
    ledger = Ledger.open(config.ledger) if config.ledger.is_file() else None
    try:
        patterns = tuple((p, tuple(sorted(set(_matches(config, p))))) for p in config.inputs)
        files = tuple(triage(path, config, ledger) for path in find_inputs(config))
    finally:
        if ledger is not None:
            ledger.close()
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

    @property
    def rows(self) -> Counter[str]:
        """Return the rows the night's runs touched, by status."""
        total: Counter[str] = Counter()
        for part in self.parts:
            total.update(part.counts)
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
            "stopped": stopped,
            "duration_seconds": round(self.duration, 3),
            "exit_code": int(self.exit_code),
        }


def worst(codes: Sequence[ExitCode]) -> ExitCode:
    """Return the most serious of some exit codes: 3 > 5 > 1 > 0 (OK when there are none)."""
    return min(codes, key=SEVERITY.index, default=ExitCode.OK)


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
    lock = LedgerLock(config.ledger)
    try:
        lock.acquire()
    except LedgerLocked as error:
        log.warning("%s", error)  # so the log file, not only cron mail, says why nothing ran
        raise
    try:
        ledger = Ledger.open(config.ledger)
        try:
            _work(config, ledger, sender, night, sleep)
        finally:
            ledger.close()
    finally:
        lock.release()
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


def _finish_open_rows(
    config: NightlyConfig,
    ledger: Ledger,
    settings: SendSettings,
    sender: Sender,
    night: NightSummary,
) -> None:
    """Send the rows an earlier run left pending, unknown or sending (unknown with reuse)."""
    night.recovered = ledger.recover_interrupted()
    if night.recovered:
        log.info("%d row(s) interrupted earlier are now unknown", night.recovered)
    if config.engagement not in ledger.engagements_with_open_rows():
        return
    log.info("sending the rows left pending or unknown by earlier runs")
    night.add(retry_rows(ledger, settings, sender))


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


class Redact(logging.Filter):
    """Masks phone-like digit runs and the given secrets in every log record it sees."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for secret in self._secrets:
            message = message.replace(secret, "***")
        record.msg = _PHONE_LIKE.sub(lambda m: mask_phone(m.group(1)), message)
        record.args = None
        return True


@contextmanager
def night_log(log_file: Path | None, *, secrets: Sequence[str] = ()) -> Iterator[None]:
    """Log the package's INFO lines (to ``log_file`` too), phone numbers and key masked."""
    package = logging.getLogger("bulkimport")
    redact = Redact(secrets)
    handlers = list(logging.getLogger().handlers)
    if log_file is not None:
        if not log_file.exists():
            # The log names files and people's masked numbers: keep it private like the ledger.
            os.close(os.open(log_file, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600))
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
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
