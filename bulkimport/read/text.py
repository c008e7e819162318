"""CSV, TSV and TXT files: encoding, delimiter and records, read as a stream."""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bulkimport.errors import InputError
from bulkimport.read.guards import OLE2_MAGIC, ZIP_MAGIC
from bulkimport.read.table import ReadOptions, SourceTable, open_binary, split_header
from bulkimport.settings import check_delimiter, check_encoding

logger = logging.getLogger(__name__)

SAMPLE_BYTES = 64 * 1024  # what encoding, delimiter and binary detection look at
CSV_FIELD_SIZE_LIMIT = 1024 * 1024  # far above Excel's 32,767 characters per cell
DELIMITERS = ",;\t|"

# A decoded sample with more control characters than this share (and at least
# MIN_CONTROL_CHARS of them, so one stray Ctrl-Z in a short file passes) is binary data.
MAX_CONTROL_SHARE = 0.01
MIN_CONTROL_CHARS = 8
_CONTROL_CHARS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_UNDECODABLE = re.compile("[\udc80-\udcff]")


@contextmanager
def open_delimited(path: Path, suffix: str, options: ReadOptions) -> Iterator[SourceTable]:
    """Yield a delimited text file as a table, streaming its records."""
    if options.sheet is not None:
        logger.warning("Ignoring the sheet option for %s: a text file has no sheets", path)
    if csv.field_size_limit() < CSV_FIELD_SIZE_LIMIT:  # process-wide; only ever raised
        csv.field_size_limit(CSV_FIELD_SIZE_LIMIT)
    with open_binary(path) as binary:
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
            header_row, header, rows = split_header(str(path), "", records)
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

    ``csv.Sniffer`` decides; when it cannot, or picks a character the first
    record lacks, the candidate that splits the first record into the most
    cells wins. Records are parsed, so a quoted cell holding a tab or a line
    break counts as one cell.
    """
    if not complete and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # a cut last line would mislead the sniffer
    widths = {candidate: _first_record_width(text, candidate) for candidate in DELIMITERS}
    fallback = max(widths, key=lambda candidate: widths[candidate])
    if widths[fallback] < 2:
        fallback = ","
    try:
        sniffed = csv.Sniffer().sniff(text, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return fallback
    if widths.get(sniffed, 0) < 2 and widths[fallback] >= 2:
        return fallback
    return sniffed


def _first_record_width(text: str, delimiter: str) -> int:
    """Return how many cells the first non-blank record has when split at ``delimiter``."""
    try:
        for cells in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if "".join(cells).strip():
                return len(cells)
    except csv.Error:
        return 0
    return 0


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
