"""Option groups several commands share, and the ImportOptions they build."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bulkimport.settings import (
    API_KEY_ENV,
    DEFAULT_API_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_LEDGER,
    DEFAULT_TIMEOUT,
    HEADER_SEARCH_ROWS,
    MAX_BATCH_SIZE,
    MAX_CONCURRENCY,
    MAX_TIMEOUT,
    MIN_BATCH_SIZE,
    MIN_CONCURRENCY,
    MIN_TIMEOUT,
    SettingError,
    UnknownPolicy,
    check_api_url,
    check_batch_size,
    check_concurrency,
    check_delimiter,
    check_encoding,
    check_header_row,
    check_limit,
    check_max_per_minute,
    check_send_window,
    check_timeout,
    check_timezone,
)

if TYPE_CHECKING:
    from bulkimport.rows.prepare import ImportOptions

F = TypeVar("F", bound=Callable[..., Any])


class SettingType(click.ParamType[Any, Any]):
    """A click type that parses text and hands it to the setting's validator in settings.py.

    The validator is the one the nightly config and the library use; here it
    names the flag, and its refusal is a usage error (exit code 2).
    """

    def __init__(
        self,
        name: str,
        check: Callable[[Any, str], Any],
        parse: Callable[[str], Any] = str,
    ) -> None:
        self.name = name
        self._check = check
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        flag = param.opts[0] if param is not None and param.opts else self.name
        if isinstance(value, str):
            try:
                value = self._parse(value)
            except ValueError:
                self.fail(f"{value!r} is not {self.name}.", param, ctx)
        try:
            return self._check(value, flag)
        except SettingError as error:
            raise click.UsageError(str(error), ctx) from error


ENCODING = SettingType("an encoding name", check_encoding)
DELIMITER = SettingType("a delimiter", check_delimiter)
API_URL = SettingType("an http(s) address", check_api_url)
BATCH_SIZE = SettingType("a whole number", check_batch_size, int)
CONCURRENCY = SettingType("a whole number", check_concurrency, int)
TIMEOUT = SettingType("a number", check_timeout, float)
HEADER_ROW = SettingType("a whole number", check_header_row, int)
SEND_WINDOW = SettingType("a send window", check_send_window)
TIMEZONE = SettingType("a time zone", check_timezone)
PER_MINUTE = SettingType("a whole number", check_max_per_minute, int)
LIMIT = SettingType("a whole number", check_limit, int)


def input_options(command: F) -> F:
    """Options that say how to read, map and validate the input files."""
    decorators = [
        click.argument(
            "files",
            nargs=-1,
            required=True,
            type=click.Path(path_type=Path, dir_okay=True, exists=False),
        ),
        click.option(
            "--country",
            metavar="CC",
            help="Country of national numbers like 0917 123 4567 (two letters: PH, US, KE).",
        ),
        click.option("--sheet", metavar="NAME|NUMBER", help="Workbook sheet (default: the first)."),
        click.option(
            "--map",
            "maps",
            multiple=True,
            metavar='"Header=field"',
            help="Map a column: a field (fullPhoneNumber, firstName, lastName, fullName, "
            "email, language, groups, organizationId, id), custom:NAME, or ignore. Repeatable.",
        ),
        click.option(
            "--encoding",
            type=ENCODING,
            metavar="NAME",
            help="CSV encoding, when detection guesses wrong (cp1252...).",
        ),
        click.option(
            "--delimiter",
            type=DELIMITER,
            metavar="CHAR",
            help="CSV delimiter, when detection guesses wrong (; or tab, semicolon, pipe).",
        ),
        click.option(
            "--header-row",
            type=HEADER_ROW,
            metavar="N",
            help="The row that holds the column names (default: the first of the first "
            f"{HEADER_SEARCH_ROWS} rows that names a phone or contact id column).",
        ),
        click.option(
            "--allow-possible",
            is_flag=True,
            help="Accept numbers that have a possible length but are not valid for their country.",
        ),
        click.option("--mobile-only", is_flag=True, help="Reject numbers that are not mobile."),
        click.option(
            "--allow-duplicates",
            is_flag=True,
            help="Keep rows whose number already appeared earlier in the import.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def import_options(
    *,
    country: str | None,
    sheet: str | None,
    maps: Sequence[str],
    encoding: str | None,
    delimiter: str | None,
    header_row: int | None,
    allow_possible: bool,
    mobile_only: bool,
    allow_duplicates: bool,
    groups: Sequence[int] = (),
    organization: int | None = None,
) -> ImportOptions:
    """Build ImportOptions from command-line values, refusing bad ones before any file is read."""
    from bulkimport.read.table import ReadOptions
    from bulkimport.rows.columns import parse_map
    from bulkimport.rows.normalize import ContactDefaults
    from bulkimport.rows.phones import PhonePolicy, check_country
    from bulkimport.rows.prepare import ImportOptions

    overrides = tuple(parse_map(m) for m in maps)
    return ImportOptions(
        read=ReadOptions(sheet=sheet, encoding=encoding, delimiter=delimiter),
        overrides=overrides,
        phones=PhonePolicy(
            country=check_country(country) if country else None,
            allow_possible=allow_possible,
            mobile_only=mobile_only,
        ),
        allow_duplicates=allow_duplicates,
        defaults=ContactDefaults(groups=tuple(groups), organization_id=organization),
        header_row=header_row,
    )


def ledger_option(command: F) -> F:
    return click.option(
        "--ledger",
        type=click.Path(path_type=Path, dir_okay=False),
        default=DEFAULT_LEDGER,
        show_default=True,
        help="The results ledger (SQLite) that records every row.",
    )(command)


def connection_options(command: F) -> F:
    """Options that say how to reach the API (shared by run and retry)."""
    decorators = [
        click.option(
            "--api-url",
            type=API_URL,
            metavar="URL",
            help=f"API base URL (default {DEFAULT_API_URL}; the sandbox prints its own).",
        ),
        click.option(
            "--api-key-file",
            type=click.Path(path_type=Path, dir_okay=False),
            help=f"Read the API key from this file instead of ${API_KEY_ENV}.",
        ),
        click.option(
            "--batch-size",
            type=BATCH_SIZE,
            metavar=f"{MIN_BATCH_SIZE}-{MAX_BATCH_SIZE}",
            help=f"Contacts per request ({DEFAULT_BATCH_SIZE}).",
        ),
        click.option(
            "--concurrency",
            type=CONCURRENCY,
            metavar=f"{MIN_CONCURRENCY}-{MAX_CONCURRENCY}",
            help=f"Requests in flight at once ({DEFAULT_CONCURRENCY}).",
        ),
        click.option(
            "--timeout",
            type=TIMEOUT,
            metavar=f"{MIN_TIMEOUT:g}-{MAX_TIMEOUT:g}",
            help=f"Seconds to wait for an answer ({DEFAULT_TIMEOUT:g}).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON line."),
        click.option(
            "--dry-run", is_flag=True, help="Do everything but send: print what would be sent."
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def delivery_options(command: F) -> F:
    """Options that say when and how fast people get the message (shared by run and retry)."""
    decorators = [
        click.option(
            "--send-window",
            type=SEND_WINDOW,
            metavar="HH:MM-HH:MM",
            help="Send only inside this window, read in each person's local time (from their "
            'number), e.g. 08:00-20:00; it may wrap midnight (20:00-06:00); "any" turns off a '
            "window an earlier run set. Rows outside wait as pending (exit code 6). "
            "Default for retry: the original run's.",
        ),
        click.option(
            "--timezone",
            type=TIMEZONE,
            metavar="TZ",
            help="The zone of rows whose number tells none and of rows that name a contact id "
            "(e.g. Asia/Manila; default: this machine's).",
        ),
        click.option(
            "--timezone-for-all",
            type=TIMEZONE,
            metavar="TZ",
            help="Read the send window in this one zone for everyone, whatever their number.",
        ),
        click.option(
            "--wait",
            "wait_for_window",
            is_flag=True,
            help="Stay while rows wait for their send window and send them as it opens "
            "(at most 24 hours; Ctrl-C or SIGTERM stop the wait; the ledger stays locked).",
        ),
        click.option(
            "--max-per-minute",
            type=PER_MINUTE,
            metavar="N",
            help="Subscribe at most N people a minute across all requests (batches shrink or "
            "wait to fit), e.g. for a call centre that answers the callbacks.",
        ),
        click.option(
            "--limit",
            type=LIMIT,
            metavar="N",
            help="Send at most N people in this command (the first N sendable rows); the "
            "rest stay pending for `bulkimport retry`. A canary: check the message first.",
        ),
        click.option(
            "--unknown",
            type=click.Choice([p.value for p in UnknownPolicy]),
            help="Rows whose answer was lost (they may have got the message): resend them "
            "with contact reuse (default; someone may get it twice) or hold them as unknown "
            "until `bulkimport retry --include-unknown` (someone may miss it).",
        ),
        click.option(
            "--yes",
            "assume_yes",
            is_flag=True,
            help="Do not ask before sending (on a terminal the command asks once; "
            "without one it never asks).",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command
