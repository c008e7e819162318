"""Spreadsheet readers: one sheet of a CSV/TSV/TXT or XLSX/XLSM/XLSB/XLS/ODS file as text rows.

:func:`open_source` finds the header (the first non-blank row) and streams the
data rows below it as :class:`~bulkimport.contacts.SourceRow`, every cell as
text, numbered as the spreadsheet numbers its rows. Anything that makes a file
unreadable becomes an :class:`~bulkimport.errors.InputError` that says what to
do about it.

The work is done in :mod:`~bulkimport.read.text` (CSV and its kin),
:mod:`~bulkimport.read.workbooks` (calamine), :mod:`~bulkimport.read.html`
(a web report: an HTML table saved as .xls), :mod:`~bulkimport.read.memory`
(a table the library face was handed), :mod:`~bulkimport.read.guards`
(checks before a parser sees a file) and :mod:`~bulkimport.read.table` (what
they yield); this module picks the reader by suffix (and, for .xls, by the
first bytes) and names what callers use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bulkimport.contacts import EXCEL_ERRORS
from bulkimport.errors import InputError
from bulkimport.read.guards import (
    MAX_COMPRESSION_RATIO,
    MAX_SHEET_CELLS,
    MAX_UNCOMPRESSED_BYTES,
    check_ods_extent,
    check_ole2_parses,
    check_xlsx_extent,
    check_zip_limits,
)
from bulkimport.read.html import is_web_page, open_html
from bulkimport.read.memory import MemoryTable, open_memory
from bulkimport.read.table import DEFAULT_OPTIONS, ReadOptions, SourceTable, listed
from bulkimport.read.text import (
    CSV_FIELD_SIZE_LIMIT,
    SAMPLE_BYTES,
    detect_encoding,
    open_delimited,
    sniff_delimiter,
)
from bulkimport.read.workbooks import cell_text, open_workbook

__all__ = [
    "CSV_FIELD_SIZE_LIMIT",
    "DEFAULT_OPTIONS",
    "EXCEL_ERRORS",
    "MAX_COMPRESSION_RATIO",
    "MAX_SHEET_CELLS",
    "MAX_UNCOMPRESSED_BYTES",
    "SAMPLE_BYTES",
    "SUPPORTED_SUFFIXES",
    "TEXT_SUFFIXES",
    "WORKBOOK_SUFFIXES",
    "MemoryTable",
    "ReadOptions",
    "SourceInput",
    "SourceTable",
    "cell_text",
    "check_ods_extent",
    "check_ole2_parses",
    "check_xlsx_extent",
    "check_zip_limits",
    "detect_encoding",
    "fingerprint",
    "fingerprint_of",
    "listed",
    "open_source",
    "sniff_delimiter",
]

TEXT_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})
WORKBOOK_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | WORKBOOK_SUFFIXES

SourceInput = Path | MemoryTable  # a spreadsheet file, or a table the library was handed


def fingerprint(path: Path) -> str:
    """Return the sha256 hex digest of the file's bytes, read in chunks."""
    try:
        with path.open("rb") as binary:
            return hashlib.file_digest(binary, "sha256").hexdigest()
    except OSError as exc:
        raise InputError(
            f"Cannot read {path} ({exc.strerror}): check the path and its permissions."
        ) from exc


def fingerprint_of(table: SourceTable) -> str:
    """Return the sha256 of what a table was read from: its file's bytes, or its own digest."""
    return table.sha256 if table.sha256 is not None else fingerprint(Path(table.source))


@contextmanager
def open_source(path: SourceInput, options: ReadOptions = DEFAULT_OPTIONS) -> Iterator[SourceTable]:
    """Open a spreadsheet file (or a table in memory) and yield its header and data rows.

    Raises :class:`InputError` for anything that makes the file unusable:
    missing, empty, unsupported, damaged, password-protected, header only.
    """
    if isinstance(path, MemoryTable):
        with open_memory(path) as memory:
            yield memory
        return
    suffix = _checked_suffix(path)
    opener = open_delimited if suffix in TEXT_SUFFIXES else open_workbook
    if suffix == ".xls" and is_web_page(path):
        opener = open_html
    with opener(path, suffix, options) as table:
        yield table


def _checked_suffix(path: Path) -> str:
    """Return the file's lower-case suffix once the path is a non-empty, supported file."""
    if not path.exists():
        raise InputError(f"{path} does not exist: check the path and the current folder.")
    if path.is_dir():
        raise InputError(f"{path} is a folder: give the path of a spreadsheet file.")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise InputError(
            f"{path} is not a supported spreadsheet: save it as one of {supported} and run again."
        )
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes): export the spreadsheet again with its data.")
    return suffix
