"""DataFrames in and out: a file's table as a frame, a frame as a table the stages read.

Cells going out are text exactly as `check` reads them. Cells coming in are
read as a workbook's cells are (:func:`bulkimport.read.workbooks.cell_text`):
text as it is, a whole number as its digits (``9171234567.0`` gives
``9171234567``), a date in ISO form, NaN, None and NaT as an empty cell.
Anything else (a list, bytes, an object) is refused, naming its column.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from bulkimport.contacts import SourceRow
from bulkimport.errors import InputError
from bulkimport.output.tables import HeaderUnion, column_labels
from bulkimport.read.memory import MemoryTable, table_digest
from bulkimport.read.workbooks import cell_text

ROW_INDEX = "row"  # the index of a frame read from a file: its spreadsheet row numbers
HEADER_ATTR = "bulkimport.header"  # frame.attrs: the file's header, before names were made distinct
FIRST_DATA_ROW = 2  # a frame's header is row 1, as in a spreadsheet

# The types a cell may hold besides text; each is read as a workbook cell of that type is.
_READABLE = (bool, int, float, Decimal, date, time, timedelta)


def rows_frame(header: Sequence[str], rows: Iterable[SourceRow]) -> pd.DataFrame:
    """Return a file's rows as a frame of text, indexed by spreadsheet row number.

    Columns are the header's names made distinct as the reports make them
    (``Note (again)``, ``column 3`` for a nameless one); a cell to the right of
    the header gets a ``column N`` of its own. The header as the file has it
    is kept in ``frame.attrs["bulkimport.header"]``.
    """
    union = HeaderUnion([header])
    numbers: list[int] = []
    lines: list[list[str]] = []
    for row in rows:
        numbers.append(row.row)
        lines.append(union.cells(header, row.cells))
    names = union.all_names()
    padded = [line + [""] * (len(names) - len(line)) for line in lines]
    frame = text_frame(padded, names, pd.Index(numbers, name=ROW_INDEX))
    frame.attrs[HEADER_ATTR] = list(header)
    return frame


def text_frame(
    lines: Sequence[Sequence[str]], columns: Sequence[str], index: pd.Index
) -> pd.DataFrame:
    """Return a frame of text cells (never NaN: an empty cell is "")."""
    return pd.DataFrame(
        [list(line) for line in lines], columns=pd.Index(list(columns)), index=index, dtype=str
    )


def frame_table(frame: pd.DataFrame, name: str | None = None) -> MemoryTable:
    """Return a frame as a table the stages read like a file, every cell as text.

    Rows are numbered as a spreadsheet of the frame would number them (the
    header is row 1), unless the index is named ``row`` (as :func:`read_table`
    gives it): then its numbers are kept, so a frame read from a file and
    filtered keeps the file's row numbers. ``name`` is the source's name in
    the ledger; by default ``DataFrame`` and the first 12 digits of its digest.
    """
    header = _header(frame)
    numbers = _row_numbers(frame)
    labels = frame.index.tolist()
    columns = [
        [_cell(value, header, position, labels[at]) for at, value in enumerate(values)]
        for position, values in enumerate(_column_values(frame))
    ]
    rows = tuple(
        (number, tuple(column[at] for column in columns)) for at, number in enumerate(numbers)
    )
    digest = table_digest(header, rows)
    return MemoryTable(name or f"DataFrame {digest[:12]}", header, rows, sha256=digest)


def _column_values(frame: pd.DataFrame) -> list[list[Any]]:
    # tolist() gives Python scalars (int, float, Timestamp) rather than numpy ones.
    return [frame.iloc[:, position].tolist() for position in range(frame.shape[1])]


def _header(frame: pd.DataFrame) -> tuple[str, ...]:
    """Return the frame's column names as a file header: the file's own when it came from one."""
    names = tuple(_label(label) for label in frame.columns)
    original = frame.attrs.get(HEADER_ATTR)
    if isinstance(original, list) and all(isinstance(name, str) for name in original):
        labels = column_labels(original)
        if tuple(labels) == names[: len(labels)]:
            return (*original, *names[len(labels) :])
    return names


def _label(label: Hashable) -> str:
    if isinstance(label, tuple):  # a MultiIndex: its levels' names, as one
        return " ".join(part for part in (_label(level) for level in label) if part)
    if _missing(label):
        return ""
    return label if isinstance(label, str) else cell_text(label)


def _row_numbers(frame: pd.DataFrame) -> list[int]:
    count = len(frame.index)
    if frame.index.name != ROW_INDEX:
        return list(range(FIRST_DATA_ROW, FIRST_DATA_ROW + count))
    numbers = frame.index.tolist()
    if not all(type(n) is int and n >= FIRST_DATA_ROW for n in numbers):
        raise InputError(
            f"The DataFrame's index is named {ROW_INDEX!r} but does not hold spreadsheet row "
            f"numbers (whole numbers from {FIRST_DATA_ROW}): rename it, or reset_index(), "
            "to have rows numbered from 2."
        )
    if len(set(numbers)) != count:
        raise InputError(
            f"The DataFrame's index {ROW_INDEX!r} repeats a row number: "
            "give every row its own number, or reset_index()."
        )
    return numbers


def _missing(value: object) -> bool:
    # NaT passes for a datetime: test it before any type.
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _cell(value: object, header: Sequence[str], position: int, label: Hashable) -> str:
    if isinstance(value, str):
        return value
    if _missing(value):
        return ""
    if isinstance(value, _READABLE):
        return cell_text(value)
    column = header[position] or f"column {position + 1}"
    raise InputError(
        f"Column {column!r} of the DataFrame holds a {type(value).__name__} at index {label!r} "
        f"({str(value)[:40]!r}): give text, numbers, dates or empty cells."
    )
