"""Workbook results: a "Rows" sheet coloured by status, "Needs attention" and "Summary".

Kept apart from the CSV writer so that openpyxl is imported only when a
workbook is written. Rows are streamed (write-only sheets); every text cell
is made formula-safe and stored as text.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import IO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Font, NamedStyle, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from bulkimport.output.tables import Extras, Row, SummaryPairs, formula_safe

logger = logging.getLogger(__name__)

ROWS_SHEET = "Rows"
ATTENTION_SHEET = "Needs attention"
WHAT_TO_DO_COLUMN = "what to do"
SUMMARY_SHEET = "Summary"

# Excel's own "Good", "Neutral" and "Bad" cell-style colours, plus a grey for
# rows that were deliberately left alone.
GREEN = "C6EFCE"
AMBER = "FFEB9C"
RED = "FFC7CE"
GREY = "EDEDED"

STATUS_COLOURS: dict[str, str] = {
    "subscribed": GREEN,
    "skipped": GREY,
    "invalid": RED,
    "failed": RED,
    "duplicate": AMBER,
    "unknown": AMBER,
    "pending": AMBER,
    "sending": AMBER,
    "discarded": GREY,
}
"""Fill colour of a row by its status; ``valid`` and anything unlisted stay unfilled."""

HEADER_STYLE = "Header"
NUMBER_STYLE = "Whole number"
WHOLE_NUMBER = "0"

EXCEL_MAX_CELL_CHARS = 32_767
EXCEL_MAX_COLUMNS = 16_384  # column XFD
WIDTH_SAMPLE_ROWS = 100  # rows looked at to size columns before streaming the rest
MIN_WIDTH = 8
MAX_WIDTH = 50


def write_xlsx(
    stream: IO[bytes],
    columns: Sequence[str],
    rows: Iterable[Row],
    extras: Extras,
) -> int:
    """Write a streamed workbook with a "Rows" and a "Summary" sheet and return the row count.

    Rows that need a person also go, as they stream, to a "Needs attention"
    sheet with what to do (each streamed sheet has its own temporary file).
    """
    if len(columns) > EXCEL_MAX_COLUMNS:
        # Excel cannot open a wider sheet; the leading columns say what happened to each row.
        logger.warning(
            "an Excel sheet holds %d columns: the last %d of %d are left out (a .csv keeps them)",
            EXCEL_MAX_COLUMNS,
            len(columns) - EXCEL_MAX_COLUMNS,
            len(columns),
        )
        columns = columns[:EXCEL_MAX_COLUMNS]
        rows = (row[:EXCEL_MAX_COLUMNS] for row in rows)
    workbook = Workbook(write_only=True)
    _register_styles(workbook)
    sheet = workbook.create_sheet(ROWS_SHEET)
    row_iter = iter(rows)
    sample = list(itertools.islice(row_iter, WIDTH_SAMPLE_ROWS))
    _size_columns(sheet, columns, sample)
    sheet.freeze_panes = "A2"

    sheet.append([_text_cell(sheet, name, HEADER_STYLE) for name in columns])
    attention = extras.attention
    needs = None if attention is None else workbook.create_sheet(ATTENTION_SHEET)
    # The advice goes last, within Excel's width: the sheet drops a column for it if need be.
    needs_width = min(len(columns), EXCEL_MAX_COLUMNS - 1)
    if needs is not None:
        needs_columns = [*columns[:needs_width], WHAT_TO_DO_COLUMN]
        _size_columns(needs, needs_columns, sample)
        needs.freeze_panes = "A2"
        needs.append([_text_cell(needs, name, HEADER_STYLE) for name in needs_columns])
    status_column = extras.status_column
    status_index = columns.index(status_column) if status_column in columns else None
    count = needing = 0
    try:
        for row in itertools.chain(sample, row_iter):
            status = _status_of(row, status_index)
            sheet.append([_cell(sheet, value, status) for value in _padded(row, len(columns))])
            count += 1
            advice = None if attention is None else attention(row)
            if needs is not None and advice is not None:
                values = [*itertools.islice(_padded(row, needs_width), needs_width), advice]
                needs.append([_cell(needs, value, status) for value in values])
                needing += 1
    except BaseException:
        # Finish the sheets' own temporary files now: left to the garbage collector, they
        # print a traceback after the error message.
        sheet.close()
        if needs is not None:
            needs.close()
        raise
    last_column = get_column_letter(max(len(columns), 1))
    sheet.auto_filter.ref = f"A1:{last_column}{count + 1}"
    if needs is not None:
        needs.auto_filter.ref = f"A1:{get_column_letter(needs_width + 1)}{needing + 1}"

    summary = extras.summary
    pairs = summary() if callable(summary) else summary
    _write_summary(workbook.create_sheet(SUMMARY_SHEET), pairs)
    workbook.save(stream)
    return count


def _register_styles(workbook: Workbook) -> None:
    """Add the header, number and per-status row styles to ``workbook``.

    Cells then name a style instead of carrying a fill: openpyxl hashes a
    fill for every cell it is set on, which makes big files markedly slower.
    """
    workbook.add_named_style(NamedStyle(HEADER_STYLE, font=Font(bold=True)))
    workbook.add_named_style(NamedStyle(NUMBER_STYLE, number_format=WHOLE_NUMBER))
    for status, rgb in STATUS_COLOURS.items():
        fill = PatternFill("solid", fgColor=rgb)
        workbook.add_named_style(NamedStyle(_row_style(status, numeric=False), fill=fill))
        workbook.add_named_style(
            NamedStyle(_row_style(status, numeric=True), fill=fill, number_format=WHOLE_NUMBER)
        )


def _row_style(status: str, *, numeric: bool) -> str:
    """Return the name of the style for a cell in a row of this status."""
    return f"Row {status} number" if numeric else f"Row {status}"


def _size_columns(sheet: WriteOnlyWorksheet, columns: Sequence[str], sample: Sequence[Row]) -> None:
    """Set each column's width from its header and the first rows (widths must precede rows)."""
    for index, name in enumerate(columns):
        longest = max(
            (_display_length(row[index]) for row in sample if index < len(row)), default=0
        )
        width = min(max(len(name) + 4, longest + 2, MIN_WIDTH), MAX_WIDTH)
        _set_width(sheet, index + 1, width)


def _set_width(sheet: WriteOnlyWorksheet, column: int, width: int) -> None:
    """Set the width of a column (1-based) of a streamed sheet; call it before any row."""
    # The class borrows column_dimensions from Worksheet; the stubs leave it out.
    dimensions = sheet.column_dimensions  # type: ignore[attr-defined]
    dimensions[get_column_letter(column)].width = width


def _display_length(value: object) -> int:
    """Return how many characters ``value`` shows as in a cell."""
    return 0 if value is None else len(str(value))


def _padded(row: Row, width: int) -> Iterator[object]:
    """Yield the row's values, then ``None`` up to ``width`` so the colour spans the row."""
    yield from row
    yield from itertools.repeat(None, width - len(row))


def _status_of(row: Row, status_index: int | None) -> str | None:
    """Return the row's status when it is one that colours the row, else ``None``."""
    if status_index is None or status_index >= len(row) or row[status_index] is None:
        return None
    status = str(row[status_index]).strip().lower()
    return status if status in STATUS_COLOURS else None


def _cell(sheet: WriteOnlyWorksheet, value: object, status: str | None) -> Cell:
    """Return one cell of a row: numbers stay numbers, everything else is safe text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        cell = WriteOnlyCell(sheet, value)
        if isinstance(value, int):
            # Phone numbers and contact ids would otherwise show as 6.39172E+11.
            cell.style = NUMBER_STYLE if status is None else _row_style(status, numeric=True)
        elif status is not None:
            cell.style = _row_style(status, numeric=False)
        return cell
    if value is None:
        cell = WriteOnlyCell(sheet, None)
        if status is not None:
            cell.style = _row_style(status, numeric=False)
        return cell
    return _text_cell(sheet, value, None if status is None else _row_style(status, numeric=False))


def _text_cell(sheet: WriteOnlyWorksheet, value: object, style: str | None) -> Cell:
    """Return a cell that Excel stores and shows as text, never as a formula or error code."""
    text = str(formula_safe(str(value)))
    text = ILLEGAL_CHARACTERS_RE.sub("", text)[:EXCEL_MAX_CELL_CHARS]
    cell = WriteOnlyCell(sheet, text)
    # openpyxl marks text starting with "=" as a formula and "#N/A" as an error.
    cell.data_type = "s"
    if style is not None:
        cell.style = style
    return cell


def _write_summary(sheet: WriteOnlyWorksheet, summary: SummaryPairs) -> None:
    """Write the summary as label/value pairs, labels in bold."""
    longest_label = max((len(label) for label, _ in summary), default=0)
    longest_value = max((_display_length(value) for _, value in summary), default=0)
    _set_width(sheet, 1, min(max(longest_label + 4, MIN_WIDTH), MAX_WIDTH))
    _set_width(sheet, 2, min(max(longest_value + 4, MIN_WIDTH), MAX_WIDTH))
    for label, value in summary:
        sheet.append([_text_cell(sheet, label, HEADER_STYLE), _cell(sheet, value, None)])
