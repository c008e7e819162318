"""Guards run before a workbook parser sees a file: zip bombs, crashing OLE2 files, huge sheets.

calamine holds a sheet as a dense grid from A1 to its last cell: one stray value in
XFD1048576 asks for 17 billion cells and aborts the process, and an ODS row repeated a
million times is a few bytes on disk. So the extent is measured before calamine sees it,
and an old-style (OLE2) workbook is parsed once in a child process first.
"""

from __future__ import annotations

import logging
import lzma
import posixpath
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO
from xml.parsers import expat

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from bulkimport.errors import InputError

logger = logging.getLogger(__name__)

ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")

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

# An XLSX cell that holds something: <c r="B7" ...> followed by its value, string or formula.
# Self-closing <c .../> cells only carry a style and calamine skips them.
_XLSX_VALUE_CELL = re.compile(
    rb'<(?:\w+:)?c\s[^>]{0,200}?\br="([A-Z]{1,10})([0-9]{1,20})"[^>/]{0,200}>'
    rb"\s*<(?:\w+:)?(?:v|is|f)[\s>/]"
)

# Any cell reference at all (styled empty cells too): a cheap upper bound of the extent.
# It starts with a literal, which the regex engine finds with a fast search (a leading
# \b would make it step through every byte); matching a few more attributes than cell
# references only raises the bound, and a bound over the limit is checked precisely.
_XLSX_ANY_CELL = re.compile(rb'r="([A-Z]{1,10})([0-9]{1,20})"')
_XLSX_CARRY_BYTES = 1024  # longer than any match of _XLSX_VALUE_CELL
# XLSB (binary workbook) records that matter for the extent: MS-XLSB 2.3.
_XLSB_WORKBOOK = "xl/workbook.bin"
_XLSB_BUNDLE_SHEET = 0x009C  # BrtBundleSh: one sheet of the workbook, with its relationship id
_XLSB_ROW_HEADER = 0x0000  # BrtRowHdr: the cells after it are on this row
_XLSB_VALUE_CELLS = frozenset(range(0x0002, 0x000C))  # numbers, errors, booleans, strings, formulas
# Password protection: an ODS manifest names how each encrypted part was encrypted;
# an encrypted XLSX is an OLE2 file with this stream; an encrypted XLS has a FILEPASS
# record (0x002F) straight after the BIFF8 workbook globals BOF record.
_ODS_MANIFEST = "META-INF/manifest.xml"
MAX_MANIFEST_BYTES = 1024 * 1024
_OLE2_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_XLS_FILEPASS = re.compile(rb"\x09\x08\x10\x00\x00\x06\x05\x00.{12}\x2f\x00", re.DOTALL)
_OLE2_CARRY_BYTES = 64
# Formula error cells, which calamine reads as empty.
_XLSX_ERROR_TYPE = b't="e"'
_XLSX_ERROR_CELL = re.compile(
    rb'<(?:\w+:)?c\s(?=[^>]{0,400}?\bt="e")[^>]{0,400}?\br="([A-Z]{1,10})([0-9]{1,20})"[^>]{0,400}>'
    rb"(?:(?!</(?:\w+:)?c>).){0,2000}?<(?:\w+:)?v>([^<]{1,30})</(?:\w+:)?v>",
    re.DOTALL,
)
_XLSX_ERROR_CARRY_BYTES = 4096  # longer than any match of _XLSX_ERROR_CELL
_XLSB_ERROR_CELLS = frozenset({0x0003, 0x000B})  # BrtCellError, BrtFmlaError
# Excel's error codes, the same in XLSB and XLS (BIFF8) records.
_ERROR_CODES = {
    0x00: "#NULL!",
    0x07: "#DIV/0!",
    0x0F: "#VALUE!",
    0x17: "#REF!",
    0x1D: "#NAME?",
    0x24: "#NUM!",
    0x2A: "#N/A",
    0x2B: "#GETTING_DATA",
}
# XLS (BIFF8) records holding formula errors, and the OLE2 container around them.
_BIFF_BOUNDSHEET = 0x0085
_BIFF_EOF = 0x000A
_BIFF_BOOLERR = 0x0205
_BIFF_FORMULA = 0x0006
_OLE2_MAX_SECTOR = 0xFFFFFFFA  # larger numbers mark the end of a chain, free or FAT sectors
_OLE2_MAX_CHAIN = 1 << 20
_ODS_TABLE_NS = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_ODS_OFFICE_NS = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_ODS_TABLE = f"{_ODS_TABLE_NS} table"
_ODS_ROW = f"{_ODS_TABLE_NS} table-row"
_ODS_CELLS = frozenset({f"{_ODS_TABLE_NS} table-cell", f"{_ODS_TABLE_NS} covered-table-cell"})
_ODS_NAME = f"{_ODS_TABLE_NS} name"
_ODS_ROWS_REPEATED = f"{_ODS_TABLE_NS} number-rows-repeated"
_ODS_COLUMNS_REPEATED = f"{_ODS_TABLE_NS} number-columns-repeated"
_ODS_VALUE_TYPE = f"{_ODS_OFFICE_NS} value-type"
# LibreOffice marks a cell whose formula failed with calcext:value-type="error".
_ODS_CALC_VALUE_TYPE = (
    "urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0 value-type"
)
_ODS_ERROR_REPEATS = 100  # repeats of an error cell noted, in each direction
_ODS_ERROR_CHARS = 30

ErrorCells = dict[tuple[int, int], str]  # formula error cells by (row, column), from 0


@dataclass(frozen=True)
class Container:
    """What the guards found out about a workbook file."""

    zipped: bool  # a zip (XLSX, XLSM, XLSB, ODS), else OLE2 (XLS)
    ods_errors: tuple[ErrorCells, ...] = ()  # an ODS's formula error cells, per table


def check_container(path: Path, suffix: str, binary: BinaryIO) -> Container:
    """Run the guards the workbook's container needs; say whether it is a zip (else OLE2).

    Refuses a file that is neither, such as a text or web page file renamed.
    """
    magic = binary.read(len(OLE2_MAGIC))
    binary.seek(0)
    if magic.startswith(ZIP_MAGIC):
        check_zip_limits(path)
        _refuse_encrypted_ods(path)
        # Before opening: calamine reads every ODS table at once.
        return Container(zipped=True, ods_errors=tuple(check_ods_extent(path)))
    if not magic.startswith(OLE2_MAGIC):
        raise InputError(
            f"{path} is not a real {suffix} workbook (perhaps a text or web page file "
            "renamed): open it in Excel or LibreOffice and save it as .xlsx."
        )
    _refuse_encrypted_ole2(path, binary)
    check_ole2_parses(path)
    return Container(zipped=False)


def protected_message(path: Path, application: str = "Excel") -> str:
    """Return the one-sentence fix for a workbook that is protected by a password."""
    return (
        f"{path} is protected by a password: remove the password in {application} and save again."
    )


def _refuse_encrypted_ods(path: Path) -> None:
    """Refuse an ODS whose manifest says its parts are encrypted (saved with a password)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if _ODS_MANIFEST not in archive.namelist():
                return
            with archive.open(_ODS_MANIFEST) as stream:
                manifest = stream.read(MAX_MANIFEST_BYTES)
    except _ZIP_READ_ERRORS as exc:
        raise InputError(
            f"{path} is damaged or incomplete ({exc}): download or export it again."
        ) from exc
    if b"encryption-data" in manifest:
        raise InputError(protected_message(path, "LibreOffice"))


def _refuse_encrypted_ole2(path: Path, binary: BinaryIO) -> None:
    """Refuse an old-style workbook that is encrypted: a password-protected XLSX or XLS.

    Excel stores an encrypted XLSX as an OLE2 file with an ``EncryptedPackage``
    stream, and an encrypted XLS with a FILEPASS record right after the
    workbook's first BOF record.
    """
    carry = b""
    try:
        while chunk := binary.read(1024 * 1024):
            data = carry + chunk
            if _OLE2_ENCRYPTED_PACKAGE in data or _XLS_FILEPASS.search(data):
                raise InputError(protected_message(path))
            carry = data[-_OLE2_CARRY_BYTES:]
    finally:
        binary.seek(0)


def zip_damage(path: Path) -> str | None:
    """Return what is damaged in a zip-based workbook (a member with a bad CRC), if anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except _ZIP_READ_ERRORS as exc:
        return str(exc)
    return f"bad CRC-32 for {bad}" if bad is not None else None


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


def check_xlsx_extent(
    path: Path, index: int, name: str, max_cells: int = MAX_SHEET_CELLS
) -> ErrorCells:
    """Refuse an XLSX or XLSB sheet whose last value lies so far out it spans over ``max_cells``.

    Return the sheet's formula error cells (``#N/A``...) by (row, column), from
    0, found in the same pass: calamine hands an error cell over as an empty one.
    An ODS has no XLSX worksheets: nothing is measured or found there.
    """
    errors: ErrorCells = {}
    try:
        with zipfile.ZipFile(path) as archive:
            if _XLSB_WORKBOOK in archive.namelist():
                rows, columns = _xlsb_scan(archive, index, errors)
                _refuse_large_sheet(path, name, rows, columns, max_cells)
                return errors
            rows, columns = 0, 0
            for member in _xlsx_sheet_members(archive, index):
                # Most sheets are far below the limit: prove that with the cheap pattern,
                # and look for cells that really hold a value only when it is not enough.
                bound_rows, bound_columns = _xlsx_last_cell(archive, member, _XLSX_ANY_CELL, errors)
                if bound_rows * bound_columns > max_cells:
                    bound_rows, bound_columns = _xlsx_last_cell(archive, member, _XLSX_VALUE_CELL)
                rows, columns = max(rows, bound_rows), max(columns, bound_columns)
    except _ZIP_READ_ERRORS as exc:
        raise InputError(
            f"{path} is damaged or incomplete ({exc}): download or export it again."
        ) from exc
    _refuse_large_sheet(path, name, rows, columns, max_cells)
    return errors


def _xlsb_scan(archive: zipfile.ZipFile, index: int, errors: ErrorCells) -> tuple[int, int]:
    """Return the rows and columns an XLSB sheet spans up to its last value cell.

    An XLSB part is a stream of records (type, size, payload); a row header
    gives the row, and a cell record starts with its column. Error cells
    (BrtCellError, BrtFmlaError) go into ``errors`` on the way.
    """
    members = _xlsb_sheet_members(archive, index)
    rows, columns = 0, 0
    for member in members:
        row = 0
        with archive.open(member) as stream:
            for kind, payload in _xlsb_records(stream):
                if kind == _XLSB_ROW_HEADER and len(payload) >= 4:
                    row = int.from_bytes(payload[:4], "little")
                elif kind in _XLSB_VALUE_CELLS and len(payload) >= 4:
                    column = int.from_bytes(payload[:4], "little")
                    rows, columns = max(rows, row + 1), max(columns, column + 1)
                    if kind in _XLSB_ERROR_CELLS and len(payload) >= 9:
                        errors[(row, column)] = _ERROR_CODES.get(payload[8], "#VALUE!")
    return rows, columns


def xls_error_cells(path: Path, index: int) -> ErrorCells:
    """Return the formula error cells of an XLS sheet: BOOLERR and FORMULA records.

    Reads the OLE2 file's ``Workbook`` stream; anything unexpected (a damaged
    or unusual file) gives no error cells rather than a failure, since calamine
    has already read the same file.
    """
    try:
        stream = _ole2_stream(path.read_bytes(), ("Workbook", "Book"))
    except (OSError, ValueError, IndexError, struct.error):
        return {}
    if stream is None:
        return {}
    offsets = [
        int.from_bytes(payload[:4], "little")
        for kind, payload in _biff_records(stream, 0)
        if kind == _BIFF_BOUNDSHEET and len(payload) >= 6
    ]
    if index >= len(offsets):
        return {}
    found: ErrorCells = {}
    for kind, payload in _biff_records(stream, offsets[index]):
        if kind == _BIFF_EOF:
            break
        if (len(payload) < 14 and kind == _BIFF_FORMULA) or len(payload) < 8:
            continue
        row, column = struct.unpack_from("<HH", payload)
        if kind == _BIFF_BOOLERR and payload[7] == 1:
            found[(row, column)] = _ERROR_CODES.get(payload[6], "#VALUE!")
        elif kind == _BIFF_FORMULA and payload[6] == 2 and payload[12:14] == b"\xff\xff":
            found[(row, column)] = _ERROR_CODES.get(payload[8], "#VALUE!")
    return found


def _biff_records(stream: bytes, at: int) -> Iterator[tuple[int, bytes]]:
    """Yield (record type, payload) per BIFF record from an offset, until the stream ends."""
    while at + 4 <= len(stream):
        kind, size = struct.unpack_from("<HH", stream, at)
        yield kind, stream[at + 4 : at + 4 + size]
        at += 4 + size


def _ole2_stream(data: bytes, names: tuple[str, ...]) -> bytes | None:
    """Return the first stream of an OLE2 (compound) file named one of ``names``, if any."""
    sector_size = 1 << struct.unpack_from("<H", data, 30)[0]
    mini_size = 1 << struct.unpack_from("<H", data, 32)[0]
    (directory_start,) = struct.unpack_from("<I", data, 48)
    cutoff, mini_fat_start, _, difat_start, difat_count = struct.unpack_from("<IIIII", data, 56)
    if not 128 <= sector_size <= 65536 or not 16 <= mini_size <= sector_size:
        return None

    def sector(number: int) -> bytes:
        start = (number + 1) * sector_size
        if start >= len(data):
            raise ValueError("sector past the end")
        return data[start : start + sector_size]

    fat_sectors = [n for n in struct.unpack_from("<109I", data, 76) if n < _OLE2_MAX_SECTOR]
    for _ in range(min(difat_count, _OLE2_MAX_CHAIN)):
        if difat_start >= _OLE2_MAX_SECTOR:
            break
        difat = struct.unpack(f"<{sector_size // 4}I", sector(difat_start))
        fat_sectors += [n for n in difat[:-1] if n < _OLE2_MAX_SECTOR]
        difat_start = difat[-1]
    fat = [
        n for number in fat_sectors for n in struct.unpack(f"<{sector_size // 4}I", sector(number))
    ]

    def chain(start: int) -> bytes:
        parts: list[bytes] = []
        while start < _OLE2_MAX_SECTOR and len(parts) <= len(fat):
            parts.append(sector(start))
            start = fat[start]
        return b"".join(parts)

    directory = chain(directory_start)
    entries = [directory[at : at + 128] for at in range(0, len(directory) - 127, 128)]
    if not entries:
        return None
    (root_start,) = struct.unpack_from("<I", entries[0], 116)
    for entry in entries:
        length, kind = struct.unpack_from("<HB", entry, 64)
        name = entry[: max(length - 2, 0)].decode("utf-16-le", errors="replace")
        if kind != 2 or name not in names:
            continue
        start, size = struct.unpack_from("<IQ", entry, 116)
        if size >= cutoff:
            return chain(start)[:size]
        mini_stream = chain(root_start)
        mini_fat_bytes = chain(mini_fat_start)
        mini_fat = struct.unpack(f"<{len(mini_fat_bytes) // 4}I", mini_fat_bytes)
        parts: list[bytes] = []
        while start < _OLE2_MAX_SECTOR and len(parts) <= len(mini_fat):
            parts.append(mini_stream[start * mini_size : (start + 1) * mini_size])
            start = mini_fat[start]
        return b"".join(parts)[:size]
    return None


def _xlsb_sheet_members(archive: zipfile.ZipFile, index: int) -> list[str]:
    """Return the zip member of the XLSB sheet at an index, or every worksheet if it is unclear."""
    everything = [name for name in archive.namelist() if name.startswith("xl/worksheets/")]
    try:
        rels = SafeElementTree.fromstring(archive.read("xl/_rels/workbook.bin.rels"))
        with archive.open(_XLSB_WORKBOOK) as stream:
            sheets = [
                payload for kind, payload in _xlsb_records(stream) if kind == _XLSB_BUNDLE_SHEET
            ]
    except (KeyError, SafeElementTree.ParseError, DefusedXmlException):
        return everything
    if index >= len(sheets) or len(sheets[index]) < 12:
        return everything
    length = int.from_bytes(sheets[index][8:12], "little")
    rel_id = sheets[index][12 : 12 + 2 * length].decode("utf-16-le", errors="replace")
    for rel in rels.iter():
        if _local_name(rel.tag) == "Relationship" and rel.get("Id") == rel_id:
            target = str(rel.get("Target", ""))
            member = target[1:] if target.startswith("/") else posixpath.normpath("xl/" + target)
            return [member] if member in archive.namelist() else everything
    return everything


def _xlsb_records(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Yield (record type, payload) per record of an XLSB part, until it ends or breaks off.

    A record starts with its type (1 or 2 bytes) and its size (1 to 4 bytes), 7 bits
    a byte, low bits first, the high bit saying another byte follows.
    """
    data, at = b"", 0
    while True:
        if len(data) - at < 6 + 1024:  # room for a record's head and a typical payload
            data, at = data[at:] + stream.read(1024 * 1024), 0
        head = _xlsb_head(data, at)
        if head is None:
            return
        kind, size, at = head
        while len(data) - at < size:
            more = stream.read(max(size - (len(data) - at), 1024 * 1024))
            if not more:
                return
            data, at = data[at:] + more, 0
        yield kind, data[at : at + size]
        at += size


def _xlsb_head(data: bytes, at: int) -> tuple[int, int, int] | None:
    """Return a record's type, its size and where its payload starts; None at the end."""
    numbers: list[int] = []
    for most in (2, 4):
        value = 0
        for position in range(most):
            if at >= len(data):
                return None
            byte = data[at]
            at += 1
            value |= (byte & 0x7F) << (7 * position)
            if not byte & 0x80:
                break
        numbers.append(value)
    return numbers[0], numbers[1], at


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
    archive: zipfile.ZipFile,
    member: str,
    pattern: re.Pattern[bytes],
    errors: ErrorCells | None = None,
) -> tuple[int, int]:
    """Return the largest row and column number of the cells ``pattern`` finds in a sheet.

    With ``errors``, the error cells (``<c r="B2" t="e"><v>#N/A</v></c>``) of the
    same bytes go there too, so the sheet is inflated once for both.
    """
    rows, columns = 0, 0
    carry = b""
    # A cell cut by the chunk edge is matched next time (a dict keeps one of each).
    keep = _XLSX_ERROR_CARRY_BYTES if errors is not None else _XLSX_CARRY_BYTES
    with archive.open(member) as stream:
        while chunk := stream.read(1024 * 1024):
            data = carry + chunk
            matches = pattern.findall(data)
            if matches:
                letters, digits = zip(*matches, strict=True)
                rows = max(rows, *map(int, set(digits)))
                columns = max(columns, *map(_column_number, set(letters)))
            if errors is not None and _XLSX_ERROR_TYPE in data:
                for match in _XLSX_ERROR_CELL.finditer(data):
                    letters_, digits_, value = match.groups()
                    where = (int(digits_) - 1, _column_number(letters_) - 1)
                    errors[where] = value.decode("ascii", errors="replace")
            carry = data[-keep:]
    return rows, columns


def _column_number(letters: bytes) -> int:
    """Return the 1-based column number of column letters (``A`` is 1, ``XFD`` is 16384)."""
    number = 0
    for letter in letters:
        number = number * 26 + letter - ord("A") + 1
    return number


def check_ods_extent(path: Path, max_cells: int = MAX_SHEET_CELLS) -> list[ErrorCells]:
    """Refuse an ODS file with damaged XML or a table whose repeats expand past ``max_cells``.

    Also keeps malformed XML away from calamine, which loops forever on a table
    that never ends. Returns each table's formula error cells (which calamine
    reads as empty), in table order.
    """
    with zipfile.ZipFile(path) as archive:
        if "content.xml" not in archive.namelist():
            return []
        extent = _OdsExtent()
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.StartElementHandler = extent.start
        parser.EndElementHandler = extent.end
        parser.CharacterDataHandler = extent.text
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
    return extent.errors


def _refuse_entity(*_: object) -> None:
    """Refuse XML entity declarations, which no spreadsheet needs (entity expansion bombs)."""
    raise ValueError("the XML declares entities")


class _OdsExtent:
    """Measures each ODS table as calamine holds it: up to its last value, repeats expanded."""

    def __init__(self) -> None:
        self.tables: list[tuple[str, int, int]] = []
        self.errors: list[ErrorCells] = []  # per table: formula error cells by (row, column)
        self._error_at: list[tuple[int, int]] = []
        self._error_text: list[str] = []
        self._name = ""
        self._row = self._rows = self._columns = 0
        self._row_repeat = self._column = 0
        self._row_has_value = False

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        """Note where a table, row or cell starts and how often it repeats."""
        if tag == _ODS_TABLE:
            self._name = attributes.get(_ODS_NAME, "")
            self._row = self._rows = self._columns = 0
            self.errors.append({})
        elif tag == _ODS_ROW:
            self._row_repeat = int(attributes.get(_ODS_ROWS_REPEATED, "1"))
            self._column = 0
            self._row_has_value = False
        elif tag in _ODS_CELLS:
            repeat = int(attributes.get(_ODS_COLUMNS_REPEATED, "1"))
            if attributes.get(_ODS_CALC_VALUE_TYPE) == "error":
                self._note_error(repeat)
            self._column += repeat
            if _ODS_VALUE_TYPE in attributes:
                self._columns = max(self._columns, self._column)
                self._row_has_value = True

    def _note_error(self, repeat: int) -> None:
        """Start collecting the text of an error cell (``#N/A``), repeats and all."""
        rows = range(self._row, self._row + min(self._row_repeat, _ODS_ERROR_REPEATS))
        columns = range(self._column, self._column + min(repeat, _ODS_ERROR_REPEATS))
        self._error_at = [(row, column) for row in rows for column in columns]
        self._error_text = []

    def text(self, data: str) -> None:
        """Collect the text of an error cell."""
        if self._error_at:
            self._error_text.append(data)

    def end(self, tag: str) -> None:
        """Close an error cell, a row (its repeats count if it holds a value) or a table."""
        if tag in _ODS_CELLS and self._error_at:
            text = "".join(self._error_text).strip()[:_ODS_ERROR_CHARS]
            if self.errors and text:
                self.errors[-1].update(dict.fromkeys(self._error_at, text))
            self._error_at = []
        elif tag == _ODS_ROW:
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
