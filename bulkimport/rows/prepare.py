"""Read, map, normalize and deduplicate rows: the stages `check` and `run` share.

Every input file is opened and its header mapped before the first row is
normalized, so a bad file stops the whole import before anything happens.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from bulkimport.contacts import Contact, Field, Problem, SourceRow
from bulkimport.errors import InputError
from bulkimport.read.sources import ReadOptions, SourceInput, SourceTable, listed, open_source
from bulkimport.read.table import header_names
from bulkimport.rows.columns import (
    BARE_ID,
    SYNONYMS,
    ColumnMapping,
    MapOverride,
    header_key,
    map_columns,
)
from bulkimport.rows.duplicates import Deduper
from bulkimport.rows.normalize import ContactDefaults, RowNormalizer
from bulkimport.rows.phones import PhoneNormalizer, PhonePolicy
from bulkimport.rows.workers import PhonePrefetch
from bulkimport.settings import DEFAULT_HEADER_ROW, HEADER_SEARCH_ROWS, check_header_row

FIRST_PROBLEMS = 20
# From about this size (some 5,000 rows) phone numbers are parsed on other cores too.
LARGE_INPUT_BYTES = 384 * 1024


@dataclass(frozen=True)
class ImportOptions:
    """How to read, map and validate the input files."""

    read: ReadOptions = ReadOptions()
    overrides: tuple[MapOverride, ...] = ()
    phones: PhonePolicy = PhonePolicy()
    allow_duplicates: bool = False
    defaults: ContactDefaults = ContactDefaults()
    workers: int | None = None  # processes for phone numbers: None = one per core, 1 = none
    header_row: int | None = DEFAULT_HEADER_ROW  # the spreadsheet row of the header; None: find it

    def __post_init__(self) -> None:
        check_header_row(self.header_row)


@dataclass(frozen=True)
class MappedSource:
    """An opened input: its table (rows not yet read) and its column mapping."""

    table: SourceTable
    mapping: ColumnMapping


class Verdict(StrEnum):
    """What local validation says about a row."""

    VALID = "valid"
    INVALID = "invalid"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class CheckedRow:
    """A source row with its verdict, the contact to send (when valid) and why not."""

    source_row: SourceRow
    verdict: Verdict
    contact: Contact | None = None
    code: Problem | None = None
    reason: str = ""

    @property
    def phone(self) -> str:
        return (self.contact.phone or "") if self.contact else ""


@dataclass(frozen=True)
class RowProblem:
    """A row that will not be sent, for the summary's list of first problems."""

    source: str
    sheet: str
    row: int
    code: str
    message: str


@dataclass
class Tally:
    """Counts verdicts and problems as rows stream past."""

    rows: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)
    first_problems: list[RowProblem] = field(default_factory=list)

    def add(self, checked: CheckedRow) -> None:
        self.rows += 1
        self.verdicts[checked.verdict] += 1
        if checked.verdict is Verdict.VALID:
            return
        code = checked.code.value if checked.code else checked.verdict.value
        self.problems[code] += 1
        if len(self.first_problems) < FIRST_PROBLEMS:
            row = checked.source_row
            self.first_problems.append(
                RowProblem(row.source, row.sheet, row.row, code, checked.reason)
            )


@contextmanager
def open_sources(
    paths: Sequence[SourceInput], options: ImportOptions
) -> Iterator[list[MappedSource]]:
    """Open every input and map its header; raise InputError before any row is read."""
    if not paths:
        raise InputError("No input file given: name one or more .csv, .xlsx, .xls or .ods files.")
    with ExitStack() as stack:
        mapped = []
        for path in paths:
            table = stack.enter_context(open_source(path, options.read))
            try:
                if options.header_row is None:
                    source = _found_header(table, options.overrides)
                else:
                    source = _chosen_header(table, options.header_row, options.overrides)
            except InputError as error:
                raise InputError(f"{table.source}: {error}{_other_sheets(table)}") from error
            mapped.append(source)
        yield mapped


# The contact fields a header must map for its row to be the header.
_IDENTIFYING = (Field.PHONE, Field.CONTACT_ID)
_IDENTIFYING_KEYS = frozenset(
    {BARE_ID}.union(*(tier for target in _IDENTIFYING for tier in SYNONYMS[target]))
)


def _found_header(table: SourceTable, overrides: Sequence[MapOverride]) -> MappedSource:
    """Map the first row (within HEADER_SEARCH_ROWS) whose cells name a phone or contact id.

    The first non-blank row is the header whenever it maps, or when it names
    such a column but cannot be used (its error is the one to see). Otherwise
    a later row is the header when it maps and every row above it has fewer
    cells filled in (a title, a date, a note), so a data row is never taken.
    """
    try:
        return MappedSource(table, map_columns(table.header, overrides))
    except InputError as error:
        if _names_identifier(table.header, overrides):
            raise
        first_error = error
    widest_above = _filled(table.header)
    for row in table.rows:
        if row.row > HEADER_SEARCH_ROWS:
            break
        header = header_names(row.cells)
        filled = _filled(header)
        if filled > widest_above:
            try:
                mapping = map_columns(header, overrides)
            except InputError:
                if _names_identifier(header, overrides):
                    raise
            else:
                return MappedSource(_reheaded(table, row.row, header, table.rows), mapping)
        widest_above = max(widest_above, filled)
    raise first_error


def _chosen_header(
    table: SourceTable, number: int, overrides: Sequence[MapOverride]
) -> MappedSource:
    """Map the row the user named as the header (``--header-row``, ``header_row``)."""
    if number == table.header_row:
        return MappedSource(table, map_columns(table.header, overrides))
    if number > table.header_row:
        for row in table.rows:
            if row.row == number:
                header = header_names(row.cells)
                mapping = map_columns(header, overrides)
                return MappedSource(_reheaded(table, number, header, table.rows), mapping)
            if row.row > number:
                break
    raise InputError(
        f"the header row {number} is blank or past the last row: "
        f"give the row that holds the column names (the first non-blank row is {table.header_row})."
    )


def _reheaded(
    table: SourceTable, number: int, header: tuple[str, ...], rows: Iterator[SourceRow]
) -> SourceTable:
    """Return the table with row ``number`` as its header and ``rows`` (those below) as data."""
    first = next(rows, None)
    if first is None:
        raise InputError(
            f"the header (row {number}) has no data rows below it: add the people below it."
        )
    return dataclasses.replace(
        table, header=header, header_row=number, rows=itertools.chain([first], rows)
    )


def _names_identifier(header: Sequence[str], overrides: Sequence[MapOverride]) -> bool:
    """Return whether a row names a phone or contact id column (by synonym or by --map)."""
    keys = {header_key(name) for name in header}
    chosen = {header_key(o.header) for o in overrides if o.field in _IDENTIFYING}
    return bool(keys & (_IDENTIFYING_KEYS | chosen))


def _filled(cells: Sequence[str]) -> int:
    return sum(1 for cell in cells if cell.strip())


def _other_sheets(table: SourceTable) -> str:
    others = [name for name in table.sheets if name != table.sheet]
    if not others:
        return ""
    return f" The workbook has other sheets too ({listed(others)}): pick one with --sheet."


def checked_rows(
    sources: Sequence[MappedSource],
    options: ImportOptions,
    *,
    custom_fields: Mapping[str, Mapping[str, int]] | None = None,
) -> Iterator[CheckedRow]:
    """Normalize and deduplicate every row of every source, in file and row order.

    ``custom_fields`` maps a source name to its resolved {field id: column};
    without it, custom fields are taken as mapped (names unresolved), which
    is enough to check a file.
    """
    phones = PhoneNormalizer(options.phones)
    deduper = Deduper()
    with PhonePrefetch(phones, workers=options.workers) as prefetch:
        for source in sources:
            normalizer = RowNormalizer(
                source.mapping,
                phones,
                custom_fields=(custom_fields or {}).get(source.table.source),
                defaults=options.defaults,
            )
            phone_cell = normalizer.phone_cell if normalizer.maps_phone else None
            large = _size(source.table.source) >= LARGE_INPUT_BYTES
            for row in prefetch.rows(source.table.rows, phone_cell, large=large):
                yield _check_row(row, normalizer, deduper, options.allow_duplicates)


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _check_row(
    row: SourceRow, normalizer: RowNormalizer, deduper: Deduper, allow_duplicates: bool
) -> CheckedRow:
    result = normalizer.normalize(row)
    if not isinstance(result, Contact):
        return CheckedRow(row, Verdict.INVALID, code=result.code, reason=result.message)
    repeated = deduper.duplicate_of(result, row)
    if repeated is not None and not allow_duplicates:
        return CheckedRow(row, Verdict.DUPLICATE, contact=result, reason=repeated)
    return CheckedRow(row, Verdict.VALID, contact=result)
