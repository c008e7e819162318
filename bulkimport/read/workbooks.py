"""XLSX, XLSM, XLSB, XLS and ODS workbooks through calamine: the sheet asked for, cells as text."""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from python_calamine import (
    CalamineError,
    CalamineSheet,
    CalamineWorkbook,
    PasswordError,
    SheetTypeEnum,
    SheetVisibleEnum,
)

from bulkimport.errors import InputError
from bulkimport.read.guards import (
    Container,
    ErrorCells,
    check_container,
    check_xlsx_extent,
    protected_message,
    xls_error_cells,
    zip_damage,
)
from bulkimport.read.table import ReadOptions, SourceTable, listed, open_binary, split_header
from bulkimport.read.text import SAMPLE_BYTES
from bulkimport.read.text import _refuse_binary_text as refuse_binary_text

logger = logging.getLogger(__name__)

EXCEL_DIGITS = 15  # significant digits Excel keeps and shows of a number
_ODS_DURATION = re.compile(r"(-?)PT([0-9]{1,9})H([0-9]{1,2})M([0-9]{1,2}(?:\.[0-9]{1,9})?)S")


@contextmanager
def open_workbook(path: Path, suffix: str, options: ReadOptions) -> Iterator[SourceTable]:
    """Yield one sheet of a workbook as a table, streaming its rows."""
    if options.encoding is not None or options.delimiter is not None:
        logger.warning("Ignoring the encoding and delimiter options for workbook %s", path)
    with open_binary(path) as binary:
        container = check_container(path, suffix, binary)
        zipped = container.zipped
        workbook = _load_workbook(path, suffix, binary, ole2=not zipped)
        ods = suffix == ".ods"
        with workbook:
            index = _sheet_index(workbook, options.sheet, path)
            found: ErrorCells = {}
            if zipped:  # an ODS has no XLSX worksheets, so this measures nothing there
                found = check_xlsx_extent(path, index, workbook.sheet_names[index])
            if workbook.sheets_metadata[index].typ != SheetTypeEnum.WorkSheet:
                raise InputError(_no_rows_message(workbook, index, path, zipped=zipped))
            sheet = _load_sheet(workbook, index, path, zipped=zipped)
            if sheet.start is None:
                raise InputError(_no_rows_message(workbook, index, path, zipped=zipped))
            logger.info("Reading sheet %r of %s", sheet.name, path)
            errors = _error_cells(path, index, container, found)
            records = _refuse_binary_strings(
                path, sheet.name, _sheet_records(sheet, ods=ods, errors=errors)
            )
            header_row, header, rows = split_header(str(path), sheet.name, records)
            yield SourceTable(
                str(path), sheet.name, header, header_row, rows, sheets=tuple(workbook.sheet_names)
            )


def _error_cells(path: Path, index: int, container: Container, found: ErrorCells) -> ErrorCells:
    """Return the formula error cells of the sheet at an index, which calamine reads as empty.

    ``found`` holds those of an XLSX or XLSB sheet, collected while it was measured.
    """
    if not container.zipped:
        return xls_error_cells(path, index)
    if container.ods_errors:
        return container.ods_errors[index] if index < len(container.ods_errors) else {}
    return found


def _sheet_records(
    sheet: CalamineSheet, *, ods: bool, errors: Mapping[tuple[int, int], str]
) -> Iterator[tuple[int, list[str]]]:
    """Yield (row number, cells as text) per row, the first cell always in column A.

    calamine's rows start at the sheet's first used column; the blanks before it
    are put back so that a cell's position is the one Excel shows. calamine hands
    an ODS duration of a day or more over as its ISO text (``PT255H10M10S``),
    which becomes ``255:10:10`` as in the other formats. ``errors`` holds the
    formula error cells calamine reads as empty, by (row, column) from 0.
    """
    start = sheet.start
    before = [""] * (start[1] if start is not None else 0)
    by_row = _errors_by_row(errors)
    for number, cells in enumerate(sheet.iter_rows(), start=1):
        texts = [value if type(value) is str else cell_text(value) for value in cells]
        if ods:
            texts = [_ods_duration_text(text) for text in texts]
        cells_text = [*before, *texts] if before else texts
        row_errors = by_row.get(number - 1)
        if row_errors:
            _put_errors(cells_text, row_errors)
        yield number, cells_text


def _errors_by_row(errors: Mapping[tuple[int, int], str]) -> dict[int, list[tuple[int, str]]]:
    """Return formula error cells grouped by row: row -> [(column, error)]."""
    by_row: dict[int, list[tuple[int, str]]] = {}
    for (row, column), error in errors.items():
        by_row.setdefault(row, []).append((column, error))
    return by_row


def _put_errors(cells: list[str], errors: list[tuple[int, str]]) -> None:
    """Write a row's formula errors (``#N/A``...) into its cells, which calamine left empty."""
    for column, error in errors:
        cells.extend([""] * (column + 1 - len(cells)))
        cells[column] = error


def _refuse_binary_strings(
    path: Path, name: str, records: Iterator[tuple[int, list[str]]]
) -> Iterator[tuple[int, list[str]]]:
    """Pass the records on once their first text passes the CSV reader's test for binary data.

    Text with a NUL between every letter is an old workbook decoded at the wrong
    character width; it is refused as a CSV file holding it would be.
    """
    sample: list[tuple[int, list[str]]] = []
    size = 0
    for record in records:
        sample.append(record)
        size += sum(len(cell) for cell in record[1])
        if size >= SAMPLE_BYTES:
            break
    try:
        refuse_binary_text(path, "".join(cell for _, cells in sample for cell in cells))
    except InputError as exc:
        raise InputError(
            f"{path} sheet {name!r} holds text with control characters (a NUL between "
            "every letter, say), as when an old workbook is decoded at the wrong character width: "
            "open it in Excel or LibreOffice and save it again as .xlsx."
        ) from exc
    yield from sample
    yield from records


def _ods_duration_text(text: str) -> str:
    """Return an ODS duration (``PT255H10M10S``) as ``255:10:10``; any other text as it is."""
    if not text.startswith(("PT", "-PT")):
        return text
    match = _ODS_DURATION.fullmatch(text)
    if match is None:
        return text
    sign, hours, minutes, seconds = match.groups()
    duration = timedelta(hours=int(hours), minutes=int(minutes), seconds=float(seconds))
    return _duration_text(-duration if sign else duration)


def _load_workbook(path: Path, suffix: str, binary: BinaryIO, *, ole2: bool) -> CalamineWorkbook:
    """Return the workbook, calamine detecting the format from the bytes, not the name.

    An XLSX inside an OLE2 container is how Excel stores a password-protected
    workbook; an OLE2 file that calamine can read is an old .xls with a new name.
    """
    ooxml = suffix in {".xlsx", ".xlsm", ".xlsb"}
    try:
        return CalamineWorkbook.from_filelike(binary)
    except PasswordError as exc:
        application = "LibreOffice" if suffix == ".ods" else "Excel"
        raise InputError(protected_message(path, application)) from exc
    except CalamineError as exc:
        if ole2 and ooxml:
            raise InputError(protected_message(path)) from exc
        damage = None if ole2 else zip_damage(path)
        if damage is not None:
            raise InputError(
                f"{path} is damaged or incomplete ({damage}): download or export it again."
            ) from exc
        raise InputError(
            f"{path} cannot be read as a workbook ({exc}): "
            "open it in Excel or LibreOffice and save it again as .xlsx."
        ) from exc


def _sheet_index(workbook: CalamineWorkbook, wanted: str | None, path: Path) -> int:
    """Return the index of the sheet asked for: by name, by number from 1, else the first shown."""
    names = workbook.sheet_names
    if not names:
        raise InputError(
            f"{path} has no worksheets: open it in Excel or LibreOffice and save it again as .xlsx."
        )
    if wanted is None:
        return _first_visible_sheet(workbook)
    if wanted in names:
        return names.index(wanted)
    if wanted.strip().isdigit() and 1 <= int(wanted) <= len(names):
        return int(wanted) - 1
    folded = [name.casefold() for name in names]
    if folded.count(wanted.strip().casefold()) != 1:
        listing = listed([f"{number} {name!r}" for number, name in enumerate(names, 1)])
        raise InputError(
            f"{path} has no sheet {wanted!r}: give --sheet one of {listing} (by name or number)."
        )
    return folded.index(wanted.strip().casefold())


def _load_sheet(
    workbook: CalamineWorkbook, index: int, path: Path, *, zipped: bool
) -> CalamineSheet:
    """Return the sheet at an index, a parse error becoming an InputError."""
    try:
        return workbook.get_sheet_by_index(index)
    except CalamineError as exc:
        damage = zip_damage(path) if zipped else None
        if damage is not None:
            raise InputError(
                f"{path} is damaged or incomplete ({damage}): download or export it again."
            ) from exc
        raise InputError(
            f"{path} sheet {workbook.sheet_names[index]!r} cannot be read ({exc}): "
            "open the workbook in Excel or LibreOffice and save it again as .xlsx."
        ) from exc


def _no_rows_message(workbook: CalamineWorkbook, index: int, path: Path, *, zipped: bool) -> str:
    """Return what to do about a sheet without rows: the sheets that hold rows, by --sheet."""
    name = workbook.sheet_names[index]
    kind = workbook.sheets_metadata[index].typ
    if kind == SheetTypeEnum.WorkSheet:
        what = "is empty"
    elif kind == SheetTypeEnum.ChartSheet:
        what = "is a chart sheet"
    else:
        what = "is not a worksheet"
    others = _sheets_with_rows(workbook, path, zipped=zipped)
    if not others:
        return (
            f"{path} sheet {name!r} {what}, and no other sheet holds rows: "
            "export the spreadsheet again with a header row and data rows."
        )
    listing = listed([repr(other) for other in others])
    return (
        f"{path} sheet {name!r} {what} (no rows): the sheets that hold rows are {listing}; "
        f"pick one with --sheet {shlex.quote(others[0])}."
    )


def _sheets_with_rows(workbook: CalamineWorkbook, path: Path, *, zipped: bool) -> list[str]:
    """Return the names of the worksheets that hold at least one cell, in workbook order."""
    names: list[str] = []
    for index, meta in enumerate(workbook.sheets_metadata):
        if meta.typ != SheetTypeEnum.WorkSheet:
            continue
        try:
            if zipped:
                check_xlsx_extent(path, index, meta.name)
            sheet = workbook.get_sheet_by_index(index)
        except (InputError, CalamineError):
            continue  # a sheet that cannot be read is no sheet to suggest
        if sheet.start is not None:
            names.append(meta.name)
    return names


def _first_visible_sheet(workbook: CalamineWorkbook) -> int:
    """Return the index of the first visible worksheet (Excel opens on it), else 0."""
    for index, meta in enumerate(workbook.sheets_metadata):
        if meta.visible == SheetVisibleEnum.Visible and meta.typ == SheetTypeEnum.WorkSheet:
            return index
    return 0


def cell_text(value: object) -> str:
    """Return a workbook cell as text: numbers without float noise, dates in ISO form.

    Whole numbers lose their ``.0`` and never turn into exponent notation
    (``639171234570.0`` gives ``639171234570``); booleans are ``TRUE``/``FALSE``;
    durations are ``H:MM:SS``; an empty cell is "".
    """
    match value:
        case None:
            return ""
        case str():
            return value
        case bool():
            return "TRUE" if value else "FALSE"
        case int():
            return str(value)
        case float() if value.is_integer():
            return str(int(value))
        case float():
            return _decimal_text(value)
        case datetime() if value.time() == time():
            return value.date().isoformat()  # ODS writes every date with a time of 00:00:00
        case date() | time():  # datetime is a date
            return value.isoformat()
        case timedelta():
            return _duration_text(value)
        case _:
            return str(value)


def _decimal_text(value: float) -> str:
    """Return a fraction as Excel shows it: 15 significant digits, never exponent notation."""
    shown = f"{value:.{EXCEL_DIGITS}g}"
    return format(Decimal(shown), "f") if "e" in shown else shown


def _duration_text(duration: timedelta) -> str:
    """Return a duration as Excel's ``[h]:mm:ss`` shows it."""
    seconds = round(duration.total_seconds())
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{seconds:02d}"
