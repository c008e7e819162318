"""Spreadsheet readers: one sheet of a CSV/TSV/TXT or XLSX/XLSM/XLS/ODS file as text rows.

:func:`open_source` finds the header (the first non-blank row) and streams the
data rows below it as :class:`~bulkimport.contacts.SourceRow`, every cell as
text, numbered as the spreadsheet numbers its rows. Anything that makes a file
unreadable becomes an :class:`~bulkimport.errors.InputError` that says what to
do about it.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import logging
import lzma
import posixpath
import re
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path
from typing import BinaryIO
from xml.parsers import expat

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree
from python_calamine import (
    CalamineError,
    CalamineSheet,
    CalamineWorkbook,
    PasswordError,
    SheetTypeEnum,
    SheetVisibleEnum,
)

from bulkimport.contacts import SourceRow
from bulkimport.errors import InputError
from bulkimport.settings import check_delimiter, check_encoding

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})
WORKBOOK_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls", ".ods"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | WORKBOOK_SUFFIXES

SAMPLE_BYTES = 64 * 1024  # what encoding, delimiter and binary detection look at
CSV_FIELD_SIZE_LIMIT = 1024 * 1024  # far above Excel's 32,767 characters per cell
DELIMITERS = ",;\t|"
NAMES_LISTED = 10  # column or sheet names a message lists before "… and N more"
# A decoded sample with more control characters than this share (and at least
# MIN_CONTROL_CHARS of them, so one stray Ctrl-Z in a short file passes) is binary data.
MAX_CONTROL_SHARE = 0.01
MIN_CONTROL_CHARS = 8

# Zip bomb limits, checked on the archive's directory before anything is inflated.
MAX_UNCOMPRESSED_BYTES = 1024**3
MAX_COMPRESSION_RATIO = 200
# Small members may compress extremely well (a sheet of empty styles) and are harmless.
RATIO_GRACE_BYTES = 1024 * 1024

# Largest grid (rows x columns, counted from A1) a workbook sheet may span: calamine holds
# it in memory, about 32 to 130 bytes per cell.
MAX_SHEET_CELLS = 10_000_000

# What reading a member of a damaged zip can raise, besides BadZipFile: a corrupt deflate
# or LZMA stream, a cut file, an offset past the end, an unknown or encrypted method.
_ZIP_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
)

# calamine's parser for old-style (OLE2) workbooks panics or aborts the whole process on
# some damaged files, so such a file is read once in a child process with capped memory.
OLE2_PROBE_MEMORY_BYTES = 2 * 1024**3
OLE2_PROBE_SECONDS = 120.0
_OLE2_PROBE = """
import resource, sys
try:
    resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]), int(sys.argv[2])))
except (ValueError, OSError):
    pass  # some systems (macOS) refuse the cap; the crash stays in the child all the same
from python_calamine import CalamineError, CalamineWorkbook
try:
    with open(sys.argv[1], "rb") as binary:
        workbook = CalamineWorkbook.from_filelike(binary)
        for index in range(len(workbook.sheet_names)):
            workbook.get_sheet_by_index(index)  # parsing is where it crashes
except CalamineError:
    pass  # an ordinary error: the reader reports it with its own message
"""

ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")

_CONTROL_CHARS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_QUOTED = re.compile('"[^"]*"')
# An XLSX cell that holds something: <c r="B7" ...> followed by its value, string or formula.
# Self-closing <c .../> cells only carry a style and calamine skips them.
_XLSX_VALUE_CELL = re.compile(
    rb'<(?:\w+:)?c\s[^>]{0,200}?\br="([A-Z]{1,10})([0-9]{1,20})"[^>/]{0,200}>'
    rb"\s*<(?:\w+:)?(?:v|is|f)[\s>/]"
)
# Any cell reference at all (styled empty cells too): a cheap upper bound of the extent.
_XLSX_ANY_CELL = re.compile(rb'\br="([A-Z]{1,10})([0-9]{1,20})"')
_XLSX_CARRY_BYTES = 1024  # longer than any match of _XLSX_VALUE_CELL
_ODS_TABLE_NS = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_ODS_OFFICE_NS = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_ODS_TABLE = f"{_ODS_TABLE_NS} table"
_ODS_ROW = f"{_ODS_TABLE_NS} table-row"
_ODS_CELLS = frozenset({f"{_ODS_TABLE_NS} table-cell", f"{_ODS_TABLE_NS} covered-table-cell"})
_ODS_NAME = f"{_ODS_TABLE_NS} name"
_ODS_ROWS_REPEATED = f"{_ODS_TABLE_NS} number-rows-repeated"
_ODS_COLUMNS_REPEATED = f"{_ODS_TABLE_NS} number-columns-repeated"
_ODS_VALUE_TYPE = f"{_ODS_OFFICE_NS} value-type"


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


def listed(names: Sequence[str], limit: int = NAMES_LISTED) -> str:
    """Return names joined by commas: the first ``limit`` of them and how many more there are.

    A sheet may have 20,000 columns; a message that names them all is unreadable.
    """
    shown = ", ".join(names[:limit])
    rest = len(names) - limit
    return f"{shown} … and {rest:,} more" if rest > 0 else shown


def fingerprint(path: Path) -> str:
    """Return the sha256 hex digest of the file's bytes, read in chunks."""
    try:
        with path.open("rb") as binary:
            return hashlib.file_digest(binary, "sha256").hexdigest()
    except OSError as exc:
        raise InputError(
            f"Cannot read {path} ({exc.strerror}): check the path and its permissions."
        ) from exc


@contextmanager
def open_source(path: Path, options: ReadOptions = DEFAULT_OPTIONS) -> Iterator[SourceTable]:
    """Open a spreadsheet file and yield its header and streaming data rows.

    Raises :class:`InputError` for anything that makes the file unusable:
    missing, empty, unsupported, damaged, password-protected, header only.
    """
    suffix = _checked_suffix(path)
    opener = _open_delimited if suffix in TEXT_SUFFIXES else _open_workbook
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


@contextmanager
def _open_binary(path: Path) -> Iterator[BinaryIO]:
    """Yield the file opened for reading bytes, an OS error becoming an InputError."""
    try:
        binary = path.open("rb")
    except OSError as exc:
        raise InputError(f"Cannot read {path} ({exc.strerror}): check its permissions.") from exc
    with binary:
        yield binary


# --- CSV, TSV, TXT ---------------------------------------------------------------------


@contextmanager
def _open_delimited(path: Path, suffix: str, options: ReadOptions) -> Iterator[SourceTable]:
    """Yield a delimited text file as a table, streaming its records."""
    if options.sheet is not None:
        logger.warning("Ignoring the sheet option for %s: a text file has no sheets", path)
    if csv.field_size_limit() < CSV_FIELD_SIZE_LIMIT:  # process-wide; only ever raised
        csv.field_size_limit(CSV_FIELD_SIZE_LIMIT)
    with _open_binary(path) as binary:
        sample = binary.read(SAMPLE_BYTES)
        _refuse_workbook_bytes(path, sample)
        complete = len(sample) < SAMPLE_BYTES
        encoding = check_encoding(options.encoding) or detect_encoding(sample, complete=complete)
        text_sample = _decode_sample(sample, encoding, complete=complete)
        _refuse_binary_text(path, text_sample)
        delimiter = check_delimiter(options.delimiter) or (
            "\t" if suffix == ".tsv" else sniff_delimiter(text_sample, complete=complete)
        )
        logger.info("Reading %s as %s, delimiter %r", path, encoding, delimiter)
        binary.seek(0)
        # surrogateescape keeps undecodable bytes visible, so the row holding them can be named.
        with io.TextIOWrapper(
            binary, encoding=encoding, errors="surrogateescape", newline=""
        ) as text:
            records = _csv_records(csv.reader(text, delimiter=delimiter), str(path), encoding)
            header_row, header, rows = _split_header(str(path), "", records)
            yield SourceTable(str(path), "", header, header_row, rows, encoding, delimiter)


def detect_encoding(sample: bytes, *, complete: bool) -> str:
    """Return the codec name that fits the file's first bytes.

    In order: a BOM; UTF-16 without BOM (NUL bytes on one side of each pair);
    UTF-8 if the sample decodes strictly; cp1252; latin-1. ``complete`` says
    the sample is the whole file, so a character cut at its end is an error.
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return utf16
    for encoding in ("utf-8", "cp1252"):
        if _decodes(sample, encoding, complete=complete):
            return encoding
    return "latin-1"


def _utf16_without_bom(sample: bytes) -> str | None:
    """Return the UTF-16 codec whose pattern of NUL bytes the sample shows, if any."""
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    even_nuls = sample[0 : pairs * 2 : 2].count(0)
    odd_nuls = sample[1 : pairs * 2 : 2].count(0)
    # Latin text in UTF-16 has a NUL in (nearly) every other byte, and only there.
    if odd_nuls > pairs * 0.3 and even_nuls < pairs * 0.05:
        return "utf-16-le"
    if even_nuls > pairs * 0.3 and odd_nuls < pairs * 0.05:
        return "utf-16-be"
    return None


def _decodes(sample: bytes, encoding: str, *, complete: bool) -> bool:
    """Return whether the sample decodes strictly, allowing a character cut at its end."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        decoder.decode(sample, final=complete)
    except UnicodeDecodeError:
        return False
    return True


def _decode_sample(sample: bytes, encoding: str, *, complete: bool) -> str:
    """Return the sample as text, undecodable bytes as U+FFFD (reading names their row)."""
    return codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=complete)


def _refuse_workbook_bytes(path: Path, sample: bytes) -> None:
    """Refuse a workbook saved under a text file's name."""
    if sample.startswith(ZIP_MAGIC):
        raise InputError(
            f"{path} is a workbook (zip) file, not text: rename it to .xlsx or .ods and run again."
        )
    if sample.startswith(OLE2_MAGIC):
        raise InputError(
            f"{path} is an old-style Excel file, not text: rename it to .xls and run again."
        )


def _refuse_binary_text(path: Path, text: str) -> None:
    """Refuse a file whose decoded sample is full of control characters."""
    controls = sum(1 for _ in _CONTROL_CHARS.finditer(text))
    if controls >= MIN_CONTROL_CHARS and controls > len(text) * MAX_CONTROL_SHARE:
        raise InputError(
            f"{path} does not look like a text file (it holds binary data): "
            "export the spreadsheet again as CSV."
        )


def sniff_delimiter(text: str, *, complete: bool = True) -> str:
    """Return the delimiter among , ; TAB | that the sample's lines agree on (default ",").

    ``csv.Sniffer`` decides; when it cannot, or picks a character the header
    line lacks, the candidate most frequent in the header line outside quotes wins.
    """
    if not complete and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # a cut last line would mislead the sniffer
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    fallback = _most_frequent_delimiter(first_line)
    try:
        sniffed = csv.Sniffer().sniff(text, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return fallback
    outside_quotes = _QUOTED.sub("", first_line)
    if sniffed not in outside_quotes and fallback in outside_quotes:
        return fallback
    return sniffed


def _most_frequent_delimiter(line: str) -> str:
    """Return the candidate delimiter seen most often outside quotes in a line, else ","."""
    outside_quotes = _QUOTED.sub("", line)
    counts = {candidate: outside_quotes.count(candidate) for candidate in DELIMITERS}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


def _csv_records(
    reader: Iterable[list[str]], source: str, encoding: str
) -> Iterator[tuple[int, list[str]]]:
    """Yield (row number, cells) per CSV record, read errors becoming InputErrors."""
    row = 0
    try:
        for row, cells in enumerate(reader, start=1):
            if _UNDECODABLE.search("".join(cells)):
                raise InputError(_invalid_bytes_message(source, row, encoding))
            yield row, cells
    except UnicodeDecodeError as exc:
        raise InputError(_invalid_bytes_message(source, row + 1, encoding)) from exc
    except csv.Error as exc:
        raise InputError(
            f"{source} row {row + 1} cannot be read ({exc}): "
            'check that row for an unclosed quote (").'
        ) from exc


def _invalid_bytes_message(source: str, row: int, encoding: str) -> str:
    """Return the one-sentence fix for bytes the chosen encoding cannot decode."""
    alternative = "latin-1" if codecs.lookup(encoding).name == "cp1252" else "cp1252"
    return (
        f"{source} row {row} has bytes that are not valid {encoding}: "
        f"run again with --encoding {alternative} (or the encoding the file was saved in)."
    )


# --- XLSX, XLSM, XLS, ODS --------------------------------------------------------------


@contextmanager
def _open_workbook(path: Path, suffix: str, options: ReadOptions) -> Iterator[SourceTable]:
    """Yield one sheet of a workbook as a table, streaming its rows."""
    if options.encoding is not None or options.delimiter is not None:
        logger.warning("Ignoring the encoding and delimiter options for workbook %s", path)
    with _open_binary(path) as binary:
        magic = binary.read(len(OLE2_MAGIC))
        binary.seek(0)
        zipped = magic.startswith(ZIP_MAGIC)
        if zipped:
            check_zip_limits(path)
            check_ods_extent(path)  # before opening: calamine reads every ODS table at once
        elif not magic.startswith(OLE2_MAGIC):
            raise InputError(
                f"{path} is not a real {suffix} workbook (perhaps a text or web page file "
                "renamed): open it in Excel or LibreOffice and save it as .xlsx."
            )
        else:
            check_ole2_parses(path)
        workbook = _load_workbook(path, suffix, binary, ole2=not zipped)
        with workbook:
            index = _sheet_index(workbook, options.sheet, path)
            if zipped:  # an ODS has no XLSX worksheets, so this measures nothing there
                check_xlsx_extent(path, index, workbook.sheet_names[index])
            sheet = _load_sheet(workbook, index, path)
            logger.info("Reading sheet %r of %s", sheet.name, path)
            records = (
                (number, [value if type(value) is str else cell_text(value) for value in cells])
                for number, cells in enumerate(sheet.iter_rows(), start=1)
            )
            header_row, header, rows = _split_header(str(path), sheet.name, records)
            yield SourceTable(
                str(path), sheet.name, header, header_row, rows, sheets=tuple(workbook.sheet_names)
            )


def check_zip_limits(
    path: Path,
    max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BYTES,
    max_ratio: float = MAX_COMPRESSION_RATIO,
) -> None:
    """Refuse a zip-based workbook that is damaged or would inflate beyond the limits."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InputError(
            f"{path} is damaged or incomplete ({exc}): download or export it again."
        ) from exc
    total = sum(member.file_size for member in members)
    if total > max_uncompressed_bytes:
        raise InputError(
            f"{path} would unpack to {total:,} bytes, more than the {max_uncompressed_bytes:,} "
            "allowed: split the workbook into smaller files."
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_GRACE_BYTES and ratio > max_ratio:
            raise InputError(
                f"{path} looks like a zip bomb ({member.filename} is compressed {ratio:,.0f} "
                "to 1): open it in Excel and save it again, or export the data as CSV."
            )


def check_ole2_parses(
    path: Path,
    max_memory_bytes: int = OLE2_PROBE_MEMORY_BYTES,
    max_seconds: float = OLE2_PROBE_SECONDS,
) -> None:
    """Refuse an old-style workbook on which the parser crashes, hangs or runs out of memory."""
    command = [sys.executable, "-c", _OLE2_PROBE, str(path), str(max_memory_bytes)]
    try:
        # Our own interpreter and code; the path is an argument and no shell is involved.
        probe = subprocess.run(command, capture_output=True, timeout=max_seconds, check=False)  # noqa: S603
    except subprocess.TimeoutExpired as exc:
        raise InputError(
            f"{path} took over {max_seconds:g} s to read and was given up: "
            "open it in Excel or LibreOffice and save it again as .xlsx."
        ) from exc
    if probe.returncode != 0:
        logger.debug("reading %s failed: %s", path, probe.stderr.decode(errors="replace")[-500:])
        raise InputError(
            f"{path} is damaged (reading it crashed the workbook parser): "
            "open it in Excel or LibreOffice and save it again as .xlsx."
        )


def _load_workbook(path: Path, suffix: str, binary: BinaryIO, *, ole2: bool) -> CalamineWorkbook:
    """Return the workbook, calamine detecting the format from the bytes, not the name.

    An XLSX inside an OLE2 container is how Excel stores a password-protected
    workbook; an OLE2 file that calamine can read is an old .xls with a new name.
    """
    protected = "is protected by a password: remove the password in Excel and save again."
    ooxml = suffix in {".xlsx", ".xlsm"}
    try:
        return CalamineWorkbook.from_filelike(binary)
    except PasswordError as exc:
        raise InputError(f"{path} {protected}") from exc
    except CalamineError as exc:
        if ole2 and ooxml:
            raise InputError(f"{path} {protected}") from exc
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


def _load_sheet(workbook: CalamineWorkbook, index: int, path: Path) -> CalamineSheet:
    """Return the sheet at an index, a parse error becoming an InputError."""
    try:
        return workbook.get_sheet_by_index(index)
    except CalamineError as exc:
        raise InputError(
            f"{path} sheet {workbook.sheet_names[index]!r} cannot be read ({exc}): "
            "open the workbook in Excel or LibreOffice and save it again as .xlsx."
        ) from exc


def _first_visible_sheet(workbook: CalamineWorkbook) -> int:
    """Return the index of the first visible worksheet (Excel opens on it), else 0."""
    for index, meta in enumerate(workbook.sheets_metadata):
        if meta.visible == SheetVisibleEnum.Visible and meta.typ == SheetTypeEnum.WorkSheet:
            return index
    return 0


# --- sheet size guards ------------------------------------------------------------------
# calamine holds a sheet as a dense grid from A1 to its last cell: one stray value in
# XFD1048576 asks for 17 billion cells and aborts the process, and an ODS row repeated a
# million times is a few bytes on disk. So the extent is measured before calamine sees it.


def check_xlsx_extent(path: Path, index: int, name: str, max_cells: int = MAX_SHEET_CELLS) -> None:
    """Refuse an XLSX sheet whose last value lies so far out that it spans over ``max_cells``."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = _xlsx_sheet_members(archive, index)
            rows, columns = 0, 0
            for member in members:
                # Most sheets are far below the limit: prove that with the cheap pattern,
                # and look for cells that really hold a value only when it is not enough.
                bound_rows, bound_columns = _xlsx_last_cell(archive, member, _XLSX_ANY_CELL)
                if bound_rows * bound_columns > max_cells:
                    bound_rows, bound_columns = _xlsx_last_cell(archive, member, _XLSX_VALUE_CELL)
                rows, columns = max(rows, bound_rows), max(columns, bound_columns)
    except _ZIP_READ_ERRORS as exc:
        raise InputError(
            f"{path} is damaged or incomplete ({exc}): download or export it again."
        ) from exc
    _refuse_large_sheet(path, name, rows, columns, max_cells)


def _xlsx_sheet_members(archive: zipfile.ZipFile, index: int) -> list[str]:
    """Return the zip member of the sheet at an index, or every worksheet if it is unclear."""
    everything = [
        name for name in archive.namelist() if name.startswith("xl/worksheets/") and "." in name
    ]
    try:
        book = SafeElementTree.fromstring(archive.read("xl/workbook.xml"))
        rels = SafeElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, SafeElementTree.ParseError, DefusedXmlException):
        return everything
    sheets = [element for element in book.iter() if _local_name(element.tag) == "sheet"]
    if index >= len(sheets):
        return everything
    rel_id = next(
        (value for key, value in sheets[index].attrib.items() if _local_name(key) == "id"), None
    )
    for rel in rels.iter():
        if _local_name(rel.tag) == "Relationship" and rel.get("Id") == rel_id:
            target = str(rel.get("Target", ""))
            member = target[1:] if target.startswith("/") else posixpath.normpath("xl/" + target)
            return [member] if member in archive.namelist() else everything
    return everything


def _local_name(tag: str) -> str:
    """Return an XML name without its ``{namespace}``."""
    return tag.rpartition("}")[2]


def _xlsx_last_cell(
    archive: zipfile.ZipFile, member: str, pattern: re.Pattern[bytes]
) -> tuple[int, int]:
    """Return the largest row and column number of the cells ``pattern`` finds in a sheet."""
    rows, columns = 0, 0
    carry = b""
    with archive.open(member) as stream:
        while chunk := stream.read(1024 * 1024):
            data = carry + chunk
            matches = pattern.findall(data)
            if matches:
                letters, digits = zip(*matches, strict=True)
                rows = max(rows, *map(int, set(digits)))
                columns = max(columns, *map(_column_number, set(letters)))
            carry = data[-_XLSX_CARRY_BYTES:]  # a cell cut by the chunk edge is matched next time
    return rows, columns


def _column_number(letters: bytes) -> int:
    """Return the 1-based column number of column letters (``A`` is 1, ``XFD`` is 16384)."""
    number = 0
    for letter in letters:
        number = number * 26 + letter - ord("A") + 1
    return number


def check_ods_extent(path: Path, max_cells: int = MAX_SHEET_CELLS) -> None:
    """Refuse an ODS file with damaged XML or a table whose repeats expand past ``max_cells``.

    Also keeps malformed XML away from calamine, which loops forever on a table
    that never ends.
    """
    with zipfile.ZipFile(path) as archive:
        if "content.xml" not in archive.namelist():
            return
        extent = _OdsExtent()
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.StartElementHandler = extent.start
        parser.EndElementHandler = extent.end
        parser.EntityDeclHandler = _refuse_entity
        try:
            with archive.open("content.xml") as stream:
                parser.ParseFile(stream)
        except (expat.ExpatError, ValueError, *_ZIP_READ_ERRORS) as exc:
            raise InputError(
                f"{path} is damaged ({exc}): open it in LibreOffice and save it again."
            ) from exc
    for name, rows, columns in extent.tables:
        _refuse_large_sheet(path, name, rows, columns, max_cells)


def _refuse_entity(*_: object) -> None:
    """Refuse XML entity declarations, which no spreadsheet needs (entity expansion bombs)."""
    raise ValueError("the XML declares entities")


class _OdsExtent:
    """Measures each ODS table as calamine holds it: up to its last value, repeats expanded."""

    def __init__(self) -> None:
        self.tables: list[tuple[str, int, int]] = []
        self._name = ""
        self._row = self._rows = self._columns = 0
        self._row_repeat = self._column = 0
        self._row_has_value = False

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        """Note where a table, row or cell starts and how often it repeats."""
        if tag == _ODS_TABLE:
            self._name = attributes.get(_ODS_NAME, "")
            self._row = self._rows = self._columns = 0
        elif tag == _ODS_ROW:
            self._row_repeat = int(attributes.get(_ODS_ROWS_REPEATED, "1"))
            self._column = 0
            self._row_has_value = False
        elif tag in _ODS_CELLS:
            repeat = int(attributes.get(_ODS_COLUMNS_REPEATED, "1"))
            self._column += repeat
            if _ODS_VALUE_TYPE in attributes:
                self._columns = max(self._columns, self._column)
                self._row_has_value = True

    def end(self, tag: str) -> None:
        """Close a row (its repeats count if it holds a value) or a table."""
        if tag == _ODS_ROW:
            self._row += self._row_repeat
            if self._row_has_value:
                self._rows = self._row
        elif tag == _ODS_TABLE:
            self.tables.append((self._name, self._rows, self._columns))


def _refuse_large_sheet(path: Path, name: str, rows: int, columns: int, max_cells: int) -> None:
    """Refuse a sheet whose grid of rows by columns holds more than ``max_cells``."""
    if rows * columns > max_cells:
        raise InputError(
            f"{path} sheet {name!r} reaches row {rows:,} and column {columns:,}, more than "
            f"{max_cells:,} cells: delete the rows and columns after the data (Ctrl+End in "
            "Excel shows the last used cell), or save the sheet as CSV."
        )


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
            return repr(value)
        case date() | time():  # datetime is a date
            return value.isoformat()
        case timedelta():
            return _duration_text(value)
        case _:
            return str(value)


def _duration_text(duration: timedelta) -> str:
    """Return a duration as Excel's ``[h]:mm:ss`` shows it."""
    seconds = round(duration.total_seconds())
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{seconds:02d}"


# --- shared ----------------------------------------------------------------------------


def _split_header(
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
    header = tuple(cell.strip().removeprefix("\ufeff").strip() for cell in header_cells)
    first_data = next(filled, None)
    if first_data is None:
        raise InputError(
            f"{where} has a header row but no data rows: add the people below the header."
        )
    rows = (
        SourceRow(source, sheet, number, tuple(cells))
        for number, cells in itertools.chain([first_data], filled)
    )
    return header_row, header, rows
