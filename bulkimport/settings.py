"""Every default, limit and validator of an import setting, written down once.

The CLI options (click types and help texts), the nightly config's TOML keys
and the library face all read this module, so a default or a range cannot
differ between them. It imports only the standard library and
:mod:`bulkimport.errors`: the CLI reads it at start-up.

A validator takes the value and the name to show in its error: the flag for
the CLI (``--batch-size``), the key for the nightly config (``"batch_size"``,
which the config prefixes with its file and line), the argument's name for
Python. It raises :class:`SettingError`, which also says in words what the
value must be, so each face can word the refusal its own way.
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import time as clock_time
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bulkimport.errors import InputError


class SettingError(InputError):
    """A setting's value cannot be used; ``must_be`` says in words what it must be."""

    def __init__(self, name: str, value: object, must_be: str, message: str = "") -> None:
        self.name = name
        self.value = value
        self.must_be = must_be
        super().__init__(message or f"{name} must be {must_be}, not {value!r}.")


# --- where things are ---------------------------------------------------------------------

DEFAULT_API_URL = "https://start.engagespark.com/api/v1"
API_KEY_ENV = "ENGAGESPARK_API_KEY"  # the environment variable that holds the API key
DEFAULT_LEDGER = Path("bulkimport.sqlite")  # relative: to the current folder, or the config's

# --- how to send ----------------------------------------------------------------------------

DEFAULT_BATCH_SIZE = 100  # contacts per request
MIN_BATCH_SIZE, MAX_BATCH_SIZE = 1, 1000
DEFAULT_CONCURRENCY = 2  # requests in flight at once
MIN_CONCURRENCY, MAX_CONCURRENCY = 1, 32
DEFAULT_TIMEOUT = 30.0  # seconds to wait for the answer to one request
MIN_TIMEOUT, MAX_TIMEOUT = 1.0, 600.0
DEFAULT_REUSE = True  # try_using_existing=newest; False creates a contact every time

# --- when people get the message -----------------------------------------------------------

DEFAULT_SEND_WINDOW: str | None = None  # None: any hour; "08:00-20:00" in each person's time
NO_SEND_WINDOW = "any"  # what turns off a window an earlier run saved
SEND_WINDOW_MUST_BE = 'a window like "08:00-20:00" (it may wrap midnight: "20:00-06:00") or "any"'
TIMEZONE_MUST_BE = 'an IANA time zone such as "Asia/Manila" or "America/Los_Angeles"'
DEFAULT_WAIT_FOR_WINDOW = True  # nightly: stay and send as windows open (run/retry: --wait)
MAX_WAIT_SECONDS = 24 * 3600.0  # --wait gives up after this long
MIN_PER_MINUTE, MAX_PER_MINUTE = 1, 100_000
MIN_LIMIT, MAX_LIMIT = 1, 10_000_000


class UnknownPolicy(StrEnum):
    """What happens to rows whose answer was lost (they may have got the message)."""

    RESEND = "resend"  # send again with contact reuse: nobody missed, someone maybe twice
    HOLD = "hold"  # keep them unknown until a person sends them (retry --include-unknown)


DEFAULT_UNKNOWN = UnknownPolicy.RESEND
UNKNOWN_MUST_BE = '"resend" or "hold"'

# --- the nightly import -------------------------------------------------------------------

DEFAULT_SETTLE_SECONDS = 5.0  # a file changed more recently is still being written
MIN_SETTLE_SECONDS, MAX_SETTLE_SECONDS = 0.0, 3600.0

# --- finding the header -------------------------------------------------------------------

DEFAULT_HEADER_ROW: int | None = None  # None: the first row that names a phone or contact id
HEADER_SEARCH_ROWS = 20  # rows looked at for that header (title rows above it are skipped)
MIN_HEADER_ROW, MAX_HEADER_ROW = 1, 1_048_576  # Excel's last row

# --- reading CSV --------------------------------------------------------------------------

# Names a person may give instead of the character itself (case does not matter).
DELIMITER_NAMES = {
    "\\t": "\t",
    "tab": "\t",
    "comma": ",",
    "semicolon": ";",
    "pipe": "|",
}
ENCODING_MUST_BE = 'an encoding name such as "utf-8", "cp1252" or "latin-1"'
DELIMITER_MUST_BE = 'one character such as ";" or a name: "tab", "comma", "semicolon", "pipe"'
API_URL_MUST_BE = "an http(s) address"


def check_encoding(encoding: str | None, name: str = "encoding") -> str | None:
    """Return the encoding if Python knows it (``None`` means detect it)."""
    if encoding is None:
        return None
    try:
        codecs.lookup(encoding)
    except (LookupError, ValueError, TypeError) as exc:  # ValueError: a NUL in the name
        raise SettingError(
            name,
            encoding,
            ENCODING_MUST_BE,
            f"Unknown encoding {encoding!r} for {name}: "
            "use a name such as utf-8, cp1252 or latin-1.",
        ) from exc
    return encoding


def check_delimiter(delimiter: str | None, name: str = "delimiter") -> str | None:
    """Return the delimiter as one character (``None`` means detect it).

    A name from :data:`DELIMITER_NAMES` stands for its character: "tab" and
    "\\t" for a tab, "semicolon" for ``;``.
    """
    if delimiter is None:
        return None
    character = (
        DELIMITER_NAMES.get(delimiter.lower(), delimiter) if isinstance(delimiter, str) else ""
    )
    if len(character) != 1:
        raise SettingError(
            name,
            delimiter,
            DELIMITER_MUST_BE,
            f"Delimiter {delimiter!r} for {name} is not one character: "
            "use one such as , ; | or tab.",
        )
    return character


def check_header_row(value: object, name: str = "header_row") -> int | None:
    """Return the spreadsheet row number of the header (``None`` means find it)."""
    if value is None:
        return None
    return _whole_number(value, name, MIN_HEADER_ROW, MAX_HEADER_ROW)


# --- sending --------------------------------------------------------------------------------


def check_api_url(url: str, name: str = "api_url") -> str:
    """Return ``url`` if it is an http(s) address with a host."""
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.netloc)
    except (ValueError, TypeError, AttributeError):  # e.g. an unclosed IPv6 bracket
        usable = False
    if not usable:
        raise SettingError(
            name,
            url,
            API_URL_MUST_BE,
            f"The API URL {url!r} for {name} is not an http(s) address: "
            f"give one like {DEFAULT_API_URL}.",
        )
    return url


def check_batch_size(value: object, name: str = "batch_size") -> int:
    """Return the number of contacts per request, if it is a whole number in range."""
    return _whole_number(value, name, MIN_BATCH_SIZE, MAX_BATCH_SIZE)


def check_concurrency(value: object, name: str = "concurrency") -> int:
    """Return the number of requests in flight at once, if it is a whole number in range."""
    return _whole_number(value, name, MIN_CONCURRENCY, MAX_CONCURRENCY)


def check_timeout(value: object, name: str = "timeout") -> float:
    """Return the seconds to wait for one answer, if they are in range."""
    return _seconds(value, name, MIN_TIMEOUT, MAX_TIMEOUT)


def check_settle_seconds(value: object, name: str = "settle_seconds") -> float:
    """Return the seconds a file must stay unchanged before it is read, if in range."""
    return _seconds(value, name, MIN_SETTLE_SECONDS, MAX_SETTLE_SECONDS)


def parse_send_window(value: str) -> tuple[clock_time, clock_time] | None:
    """Return a window's opening and closing times (None for "any"); raise ValueError."""
    if value.strip().lower() == NO_SEND_WINDOW:
        return None
    opens, sep, closes = value.partition("-")
    if not sep:
        raise ValueError(value)
    start, end = (_clock_time(part) for part in (opens, closes))
    if start == end:
        raise ValueError(value)  # an empty window (or a whole day: say "any")
    return start, end


def _clock_time(text: str) -> clock_time:
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or len(minutes) != 2 or not minutes.isdigit():
        raise ValueError(text)
    if hours == "24" and minutes == "00":
        return clock_time(0, 0)  # "20:00-24:00" closes at midnight
    return clock_time(int(hours), int(minutes))  # ValueError beyond 23:59


def check_send_window(value: object, name: str = "send_window") -> str | None:
    """Return the window as given, e.g. ``"08:00-20:00"`` (``None``: no window)."""
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        parse_send_window(value)
    except ValueError as error:
        raise SettingError(name, value, SEND_WINDOW_MUST_BE) from error
    return value.strip()


def check_timezone(value: object, name: str = "timezone") -> str | None:
    """Return an IANA zone name that the zone database knows (``None``: none given)."""
    if value is None:
        return None
    from zoneinfo import ZoneInfo  # here, not at start-up: it reads the zone database

    try:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(value)
        ZoneInfo(value.strip())
    except (ValueError, OSError, KeyError) as error:  # ZoneInfoNotFoundError is a KeyError
        raise SettingError(name, value, TIMEZONE_MUST_BE) from error
    return value.strip()


def check_max_per_minute(value: object, name: str = "max_per_minute") -> int | None:
    """Return the most people subscribed per minute (``None``: as fast as the API takes)."""
    if value is None:
        return None
    return _whole_number(value, name, MIN_PER_MINUTE, MAX_PER_MINUTE)


def check_limit(value: object, name: str = "limit") -> int | None:
    """Return the most people one command sends (``None``: all of them)."""
    if value is None:
        return None
    return _whole_number(value, name, MIN_LIMIT, MAX_LIMIT)


def check_unknown(value: object, name: str = "unknown") -> UnknownPolicy:
    """Return what to do with rows whose answer was lost: resend or hold."""
    try:
        return UnknownPolicy(str(value) if isinstance(value, str) else "")
    except ValueError as error:
        raise SettingError(name, value, UNKNOWN_MUST_BE) from error


def whole_number_range(low: int, high: int) -> str:
    """Return how a message or help text words a whole-number range."""
    return f"a whole number from {low} to {high}"


def seconds_range(low: float, high: float) -> str:
    """Return how a message or help text words a range of seconds."""
    return f"a number of seconds from {low:g} to {high:g}"


def _whole_number(value: object, name: str, low: int, high: int) -> int:
    # A bool is an int in Python (and TOML's `true` becomes one): never take it for 1.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SettingError(name, value, whole_number_range(low, high))
    return value


def _seconds(value: object, name: str, low: float, high: float) -> float:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or not low <= number <= high:
        raise SettingError(name, value, seconds_range(low, high))
    return float(number)


@dataclass(frozen=True)
class SendSettings:
    """How to talk to the API for one engagement (kept in the ledger, never the key).

    Every value is checked here as well, under its Python name, so the library
    face refuses what the CLI and the nightly config refuse (only a timeout
    below ``MIN_TIMEOUT`` passes here, for a local sandbox).
    """

    engagement_id: int
    api_url: str = DEFAULT_API_URL
    reuse: bool = DEFAULT_REUSE
    batch_size: int = DEFAULT_BATCH_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT
    send_window: str | None = DEFAULT_SEND_WINDOW  # read in each person's time zone
    timezone: str | None = None  # the zone of rows whose number tells none (None: this machine's)
    timezone_for_all: str | None = None  # read the window in this one zone for everyone
    max_per_minute: int | None = None  # people subscribed per minute, across all batches
    unknown: UnknownPolicy = DEFAULT_UNKNOWN

    def __post_init__(self) -> None:
        check_api_url(self.api_url)
        check_batch_size(self.batch_size)
        check_concurrency(self.concurrency)
        check_send_window(self.send_window)
        check_timezone(self.timezone)
        check_timezone(self.timezone_for_all, "timezone_for_all")
        check_max_per_minute(self.max_per_minute)
        object.__setattr__(self, "unknown", check_unknown(self.unknown))
        # Below MIN_TIMEOUT is allowed here: a rehearsal against a local sandbox may wait less.
        object.__setattr__(self, "timeout", _seconds(self.timeout, "timeout", 0.001, MAX_TIMEOUT))

    @property
    def has_window(self) -> bool:
        """Return whether rows are sent only inside a send window."""
        return self.send_window is not None and parse_send_window(self.send_window) is not None

    def to_json(self) -> dict[str, Any]:
        saved = asdict(self)
        saved["unknown"] = str(self.unknown)
        return saved

    def keeping_window(self, saved: Mapping[str, Any]) -> SendSettings:
        """Return these settings with the send window an earlier run saved, if none is given.

        A window, once set for an engagement, holds for every later command
        (a resumed run, a night) until one says ``--send-window any``.
        """
        if self.send_window is not None or not saved.get("send_window"):
            return self
        return replace(
            self,
            send_window=saved["send_window"],
            timezone=self.timezone or saved.get("timezone"),
            timezone_for_all=self.timezone_for_all or saved.get("timezone_for_all"),
        )

    def updated(self, saved: Mapping[str, Any], **overrides: Any) -> SendSettings:
        """Return settings from a saved run, with the given non-None overrides."""
        known = {k: v for k, v in saved.items() if k in self.__dataclass_fields__}
        merged = {**asdict(self), **known, **{k: v for k, v in overrides.items() if v is not None}}
        return SendSettings(**merged)
