"""The nightly import's TOML config: every `run` setting, validated strictly.

Unknown keys, wrong types and missing required keys are ConfigErrors that
name the key (and its line), before anything is read or sent.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from bulkimport.contacts import Field
from bulkimport.errors import InputError
from bulkimport.read.sources import ReadOptions
from bulkimport.rows.columns import MapOverride, parse_map
from bulkimport.rows.normalize import ContactDefaults
from bulkimport.rows.phones import PhonePolicy, check_country
from bulkimport.rows.prepare import ImportOptions
from bulkimport.settings import (
    API_KEY_ENV,
    API_URL_MUST_BE,
    DEFAULT_API_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_HEADER_ROW,
    DEFAULT_LEDGER,
    DEFAULT_REUSE,
    DEFAULT_SETTLE_SECONDS,
    DEFAULT_TIMEOUT,
    DEFAULT_UNKNOWN,
    DEFAULT_WAIT_FOR_WINDOW,
    DELIMITER_MUST_BE,
    ENCODING_MUST_BE,
    MAX_BATCH_SIZE,
    MAX_CONCURRENCY,
    MAX_HEADER_ROW,
    MAX_PER_MINUTE,
    MAX_SETTLE_SECONDS,
    MAX_TIMEOUT,
    MIN_BATCH_SIZE,
    MIN_CONCURRENCY,
    MIN_HEADER_ROW,
    MIN_PER_MINUTE,
    MIN_SETTLE_SECONDS,
    MIN_TIMEOUT,
    SEND_WINDOW_MUST_BE,
    TIMEZONE_MUST_BE,
    UNKNOWN_MUST_BE,
    SendSettings,
    SettingError,
    UnknownPolicy,
    check_api_url,
    check_batch_size,
    check_concurrency,
    check_delimiter,
    check_encoding,
    check_header_row,
    check_max_per_minute,
    check_send_window,
    check_settle_seconds,
    check_timeout,
    check_timezone,
    check_unknown,
    seconds_range,
    whole_number_range,
)

log = logging.getLogger(__name__)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ConfigError(InputError):
    """The nightly config file cannot be used as written (exit code 2)."""


class AfterImport(StrEnum):
    """What happens to an input file once the ledger holds all its rows."""

    LEAVE = "leave"
    ARCHIVE = "archive"


# --- the config file --------------------------------------------------------------------


def _anything(value: Any) -> bool:
    return True


@dataclass(frozen=True)
class _Key:
    """One config key: what it must be, in words, and the test for it.

    ``check`` is the setting's own validator from :mod:`bulkimport.settings`
    (the one the CLI and the library use too); it returns the value to use.
    """

    must_be: str
    accepts: Callable[[Any], bool] = _anything
    required: bool = False
    check: Callable[[Any, str], Any] | None = None


def _is_int(value: Any, low: int = 1, high: int | None = None) -> bool:
    # TOML booleans are Python ints; `batch_size = true` must not pass as 1.
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return value >= low and (high is None or value <= high)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_path(value: Any) -> bool:
    # No file system allows a NUL in a name; open() would raise ValueError on it.
    return _is_text(value) and "\0" not in value


def _is_globs(value: Any) -> bool:
    if isinstance(value, str):
        return _is_text(value)
    return isinstance(value, list) and bool(value) and all(_is_text(v) for v in value)


KEYS: Mapping[str, _Key] = {
    "engagement": _Key("the engagement id, a whole number", _is_int, required=True),
    "inputs": _Key(
        'a file pattern or a list of them, e.g. ["inbox/*.xlsx"]', _is_globs, required=True
    ),
    "api_url": _Key(API_URL_MUST_BE, check=check_api_url),
    "api_key_env": _Key(
        "the name of an environment variable",
        lambda v: isinstance(v, str) and bool(_ENV_NAME.fullmatch(v)),
    ),
    "api_key_file": _Key("a file path in quotes", _is_path),
    "country": _Key('a two-letter country code in quotes, e.g. "PH"', _is_text),
    "ledger": _Key("a file path in quotes", _is_path),
    "sheet": _Key("a sheet name in quotes or a sheet number", lambda v: _is_text(v) or _is_int(v)),
    "encoding": _Key(ENCODING_MUST_BE, _is_text, check=check_encoding),
    "delimiter": _Key(DELIMITER_MUST_BE, check=check_delimiter),
    "header_row": _Key(whole_number_range(MIN_HEADER_ROW, MAX_HEADER_ROW), check=check_header_row),
    "map": _Key('a table of "Header" = "field" lines', lambda v: isinstance(v, dict)),
    "batch_size": _Key(whole_number_range(MIN_BATCH_SIZE, MAX_BATCH_SIZE), check=check_batch_size),
    "concurrency": _Key(
        whole_number_range(MIN_CONCURRENCY, MAX_CONCURRENCY), check=check_concurrency
    ),
    "timeout": _Key(seconds_range(MIN_TIMEOUT, MAX_TIMEOUT), check=check_timeout),
    "reuse": _Key("true or false", lambda v: isinstance(v, bool)),
    "groups": _Key(
        "a list of group ids, e.g. [12, 15]",
        lambda v: isinstance(v, list) and all(_is_int(g) for g in v),
    ),
    "organization": _Key("an organization id, a whole number", _is_int),
    "allow_possible": _Key("true or false", lambda v: isinstance(v, bool)),
    "mobile_only": _Key("true or false", lambda v: isinstance(v, bool)),
    "allow_duplicates": _Key("true or false", lambda v: isinstance(v, bool)),
    "results_dir": _Key("a folder path in quotes", _is_path),
    "after": _Key('"leave" or "archive"', lambda v: v in tuple(AfterImport)),
    "archive_dir": _Key("a folder path in quotes", _is_path),
    "log_file": _Key("a file path in quotes", _is_path),
    "settle_seconds": _Key(
        seconds_range(MIN_SETTLE_SECONDS, MAX_SETTLE_SECONDS), check=check_settle_seconds
    ),
    "send_window": _Key(SEND_WINDOW_MUST_BE, _is_text, check=check_send_window),
    "timezone": _Key(TIMEZONE_MUST_BE, _is_text, check=check_timezone),
    "timezone_for_all": _Key(TIMEZONE_MUST_BE, _is_text, check=check_timezone),
    "wait_for_window": _Key("true or false", lambda v: isinstance(v, bool)),
    "max_per_minute": _Key(
        whole_number_range(MIN_PER_MINUTE, MAX_PER_MINUTE), check=check_max_per_minute
    ),
    "unknown": _Key(UNKNOWN_MUST_BE, check=check_unknown),
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
    header_row: int | None = DEFAULT_HEADER_ROW
    maps: tuple[MapOverride, ...] = ()
    batch_size: int = DEFAULT_BATCH_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT
    reuse: bool = DEFAULT_REUSE
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
    send_window: str | None = None
    timezone: str | None = None
    timezone_for_all: str | None = None
    wait_for_window: bool = DEFAULT_WAIT_FOR_WINDOW
    max_per_minute: int | None = None
    unknown: UnknownPolicy = DEFAULT_UNKNOWN
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
            send_window=self.send_window,
            timezone=self.timezone,
            timezone_for_all=self.timezone_for_all,
            max_per_minute=self.max_per_minute,
            unknown=self.unknown,
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
            header_row=self.header_row,
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

    checked: dict[str, Any] = {}
    for key, value in raw.items():
        spec = KEYS.get(key)
        if spec is None:
            raise fail(key, _unknown_key(key))
        if not spec.accepts(value):
            raise fail(key, _bad_value(key, spec, value))
        checked[key] = value
        if spec.check is not None:
            try:
                checked[key] = spec.check(value, f'"{key}"')
            except SettingError as error:
                raise fail(key, _bad_value(key, spec, value)) from error
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
        api_url=checked.get("api_url", DEFAULT_API_URL),
        api_key_env=raw.get("api_key_env", API_KEY_ENV),
        api_key_file=path_of("api_key_file"),
        country=_country(raw.get("country"), fail),
        sheet=None if sheet is None else str(sheet),
        encoding=checked.get("encoding"),
        delimiter=checked.get("delimiter"),
        header_row=checked.get("header_row", DEFAULT_HEADER_ROW),
        maps=_maps(raw.get("map", {}), fail),
        batch_size=checked.get("batch_size", DEFAULT_BATCH_SIZE),
        concurrency=checked.get("concurrency", DEFAULT_CONCURRENCY),
        timeout=checked.get("timeout", DEFAULT_TIMEOUT),
        reuse=raw.get("reuse", DEFAULT_REUSE),
        groups=tuple(raw.get("groups", ())),
        organization=raw.get("organization"),
        allow_possible=raw.get("allow_possible", False),
        mobile_only=raw.get("mobile_only", False),
        allow_duplicates=raw.get("allow_duplicates", False),
        results_dir=path_of("results_dir"),
        after=after,
        archive_dir=path_of("archive_dir"),
        log_file=path_of("log_file"),
        settle_seconds=checked.get("settle_seconds", DEFAULT_SETTLE_SECONDS),
        send_window=checked.get("send_window"),
        timezone=checked.get("timezone"),
        timezone_for_all=checked.get("timezone_for_all"),
        wait_for_window=raw.get("wait_for_window", DEFAULT_WAIT_FOR_WINDOW),
        max_per_minute=checked.get("max_per_minute"),
        unknown=checked.get("unknown", DEFAULT_UNKNOWN),
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


# Keys whose value names something: a wrong value may be a secret pasted in its place.
_NAMES_NOT_SHOWN = {
    "api_key_env": (
        "api_key_env must name an environment variable such as ENGAGESPARK_API_KEY, "
        "not hold the key itself: put the key in that variable (or in a file named by "
        "api_key_file) and write only the variable's name here, in letters, digits and _."
    ),
}


def _bad_value(key: str, spec: _Key, value: Any) -> str:
    """Return why ``value`` is wrong for ``key``, never echoing a value that should be a name."""
    if key in _NAMES_NOT_SHOWN:
        return _NAMES_NOT_SHOWN[key]
    return f'"{key}" must be {spec.must_be}, not {_shown(value)}; fix the value.'


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
    if config.log_file is not None and config.log_file.is_dir():
        raise config.error("log_file", f'"log_file": {config.log_file} is a folder; name a file.')
