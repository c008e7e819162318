"""What every reader yields: read options, one sheet's header and its data rows.

:func:`split_header` finds the header (the first non-blank row) and streams
the rows below it, numbered as the spreadsheet numbers them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bulkimport.contacts import SourceRow
from bulkimport.errors import InputError

NAMES_LISTED = 10  # column or sheet names a message lists before "… and N more"


@dataclass(frozen=True)
class ReadOptions:
    """How to read a source file; ``None`` everywhere means detect it."""

    sheet: str | None = None  # sheet name, or 1-based number as text; default the first sheet
    encoding: str | None = None  # CSV only: any Python codec name
    delimiter: str | None = None  # CSV only: one character, or "\\t" / "tab" for a tab


DEFAULT_OPTIONS = ReadOptions()


@dataclass
class SourceTable:
    """One sheet of a source file: its header and a stream of its data rows.

    ``rows`` yields only non-blank rows; a blank row is skipped but keeps its
    number, so numbers match what Excel shows. A row's ``cells`` are exactly as
    read and are not padded: a row may be shorter (or longer) than ``header``,
    and a missing cell means "". ``rows`` can be read only inside
    :func:`open_source`'s ``with`` block.
    """

    source: str
    sheet: str
    header: tuple[str, ...]
    header_row: int
    rows: Iterator[SourceRow]
    encoding: str | None = None
    delimiter: str | None = None
    sheets: tuple[str, ...] = ()  # every sheet of the workbook, for hints; () for CSV
    sha256: str | None = None  # a table held in memory has its own digest; None: the file's


def listed(names: Sequence[str], limit: int = NAMES_LISTED) -> str:
    """Return names joined by commas: the first ``limit`` of them and how many more there are.

    A sheet may have 20,000 columns; a message that names them all is unreadable.
    """
    shown = ", ".join(names[:limit])
    rest = len(names) - limit
    return f"{shown} … and {rest:,} more" if rest > 0 else shown


@contextmanager
def open_binary(path: Path) -> Iterator[BinaryIO]:
    """Yield the file opened for reading bytes, an OS error becoming an InputError."""
    try:
        binary = path.open("rb")
    except OSError as exc:
        raise InputError(f"Cannot read {path} ({exc.strerror}): check its permissions.") from exc
    with binary:
        yield binary


def split_header(
    source: str, sheet: str, records: Iterator[tuple[int, Sequence[str]]]
) -> tuple[int, tuple[str, ...], Iterator[SourceRow]]:
    """Return the header's row number, its cells and the data rows after it.

    Reads ahead to the first data row, so a file with a header and nothing
    else fails here rather than halfway through a run.
    """
    where = f"{source} sheet {sheet!r}" if sheet else source
    filled = ((number, cells) for number, cells in records if "".join(cells).strip())
    first = next(filled, None)
    if first is None:
        raise InputError(
            f"{where} is empty (no row has any data): "
            "export the spreadsheet again with a header row and data rows."
        )
    header_row, header_cells = first
    first_data = next(filled, None)
    if first_data is None:
        raise InputError(
            f"{where} has a header row but no data rows: add the people below the header."
        )
    rows = (
        SourceRow(source, sheet, number, tuple(cells))
        for number, cells in itertools.chain([first_data], filled)
    )
    return header_row, header_names(header_cells), rows


def header_names(cells: Sequence[str]) -> tuple[str, ...]:
    """Return a header row's cells as column names: trimmed, without a byte-order mark."""
    return tuple(cell.strip().removeprefix("\ufeff").strip() for cell in cells)
