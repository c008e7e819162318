"""Option groups several commands share, and the ImportOptions they build."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from bulkimport.credentials import API_KEY_ENV
from bulkimport.ledger.store import DEFAULT_LEDGER
from bulkimport.read.sources import ReadOptions
from bulkimport.rows.columns import MapOverride, parse_map
from bulkimport.rows.normalize import ContactDefaults
from bulkimport.rows.phones import PhonePolicy, check_country
from bulkimport.rows.prepare import ImportOptions
from bulkimport.send.client import DEFAULT_API_URL

F = TypeVar("F", bound=Callable[..., Any])


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
        click.option("--encoding", help="CSV encoding, when detection guesses wrong (cp1252...)."),
        click.option("--delimiter", help="CSV delimiter, when detection guesses wrong (; or tab)."),
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
    allow_possible: bool,
    mobile_only: bool,
    allow_duplicates: bool,
    groups: Sequence[int] = (),
    organization: int | None = None,
) -> ImportOptions:
    """Build ImportOptions from command-line values, refusing bad ones before any file is read."""
    overrides: tuple[MapOverride, ...] = tuple(parse_map(m) for m in maps)
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
            metavar="URL",
            help=f"API base URL (default {DEFAULT_API_URL}; the sandbox prints its own).",
        ),
        click.option(
            "--api-key-file",
            type=click.Path(path_type=Path, dir_okay=False),
            help=f"Read the API key from this file instead of ${API_KEY_ENV}.",
        ),
        click.option(
            "--batch-size", type=click.IntRange(1, 1000), help="Contacts per request (100)."
        ),
        click.option(
            "--concurrency", type=click.IntRange(1, 32), help="Requests in flight at once (2)."
        ),
        click.option(
            "--timeout", type=click.FloatRange(1, 600), help="Seconds to wait for an answer (30)."
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON line."),
        click.option(
            "--dry-run", is_flag=True, help="Do everything but send: print what would be sent."
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command
