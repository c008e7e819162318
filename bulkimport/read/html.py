"""A "web report": an HTML table saved with an .xls name, as many web-based HR tools export.

Excel opens such a file as a one-sheet workbook; here it is read with
:func:`pandas.read_html` (the lxml parser), every cell as the text the page
shows (leading zeros, ``+`` and thousands separators kept, an empty cell "").
The header is the table's header row (``<th>`` cells or ``<thead>``), else its
first non-blank row; rows are numbered as Excel numbers them, the table's
first row being row 1. A page with no table, or with several, is refused with
what was found: which table holds the people is for a person to say.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bulkimport.errors import InputError
from bulkimport.read.table import ReadOptions, SourceTable, open_binary, split_header
from bulkimport.read.text import detect_encoding
from bulkimport.settings import check_encoding

logger = logging.getLogger(__name__)

HEAD_BYTES = 4096  # what is read of a file to tell a web page from a workbook
# pandas builds the whole page in memory (several times its size): a report
# larger than this is better saved as .xlsx or .csv, which are read as a stream.
MAX_HTML_BYTES = 64 * 1024**2

_PAGE_START = ("<html", "<!doctype html", "<table")
_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9_.:-]{1,40})""", re.I)
# pandas names a header cell that is empty "Unnamed: 3" (or "Unnamed: 3_level_1").
_UNNAMED = re.compile(r"Unnamed: \d+(?:_level_\d+)?")
# pandas makes a repeated header name distinct: Note, Note.1, Note.2.
_MANGLED = re.compile(r"(.*)\.([1-9][0-9]*)")


def is_web_page(path: Path) -> bool:
    """Return whether the file starts as an HTML page or table does (not as a workbook)."""
    try:
        with path.open("rb") as binary:
            head = binary.read(HEAD_BYTES)
    except OSError:
        return False  # the workbook reader says what is wrong with the file
    text = head.decode(detect_encoding(head, complete=False), errors="replace")
    start = text.lstrip("\ufeff \t\r\n").lower()
    if not start.startswith("<"):
        return False
    return start.startswith(_PAGE_START) or any(tag in start for tag in _PAGE_START[:2])


@contextmanager
def open_html(path: Path, suffix: str, options: ReadOptions) -> Iterator[SourceTable]:
    """Yield the one table of a web page as a sheet, every cell as text."""
    if options.sheet is not None or options.delimiter is not None:
        logger.warning("Ignoring the sheet and delimiter options for web report %s", path)
    with open_binary(path) as binary:
        page = binary.read(MAX_HTML_BYTES + 1)
    if len(page) > MAX_HTML_BYTES:
        raise InputError(
            f"{path} is a web page larger than {MAX_HTML_BYTES // 1024**2} MB: open it in Excel "
            "or LibreOffice and save it as .xlsx, or export the report as .csv."
        )
    text = page.decode(_encoding(path, page, options.encoding), errors="replace")
    header_row, header, rows = split_header(str(path), "", _records(path, suffix, text))
    yield SourceTable(str(path), "", header, header_row, rows)


def _encoding(path: Path, page: bytes, wanted: str | None) -> str:
    """Return the page's encoding: the option, its BOM, its ``<meta charset>``, else detected."""
    if wanted is not None:
        return check_encoding(wanted) or wanted
    if page.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return detect_encoding(page[:HEAD_BYTES], complete=False)
    declared = _CHARSET.search(page[:HEAD_BYTES])
    if declared is not None:
        name = declared.group(1).decode("ascii")
        try:
            return codecs.lookup(name).name
        except LookupError:
            logger.warning("%s declares an unknown charset %r: detecting it instead", path, name)
    return detect_encoding(page, complete=True)


def _records(path: Path, suffix: str, text: str) -> Iterator[tuple[int, Sequence[str]]]:
    """Yield (row number, cells) of the page's one table, its header rows first."""
    import pandas as pd  # only a web report needs it: the CLI starts without pandas

    try:
        tables = pd.read_html(
            io.StringIO(text),
            flavor="lxml",
            # Text as the page shows it: no numbers, no NaN, no thousands separators removed.
            converters=defaultdict(lambda: str),
            keep_default_na=False,
            # pandas takes None for "no separator" (its default "," drops it from "12,500");
            # pandas-stubs types the argument as str only.
            thousands=None,  # type: ignore[arg-type]
        )
    except ValueError as exc:  # pandas: "No tables found"
        raise InputError(
            f"{path} is a web page with no table, not a {suffix} workbook: export the report "
            "again as a spreadsheet (.xlsx or .csv)."
        ) from exc
    if len(tables) != 1:
        raise InputError(
            f"{path} is a web page with {len(tables)} tables, not a {suffix} workbook: open it "
            "in Excel or LibreOffice, keep the table of people on one sheet and save it as .xlsx."
        )
    (table,) = tables
    levels = 0
    # Without header rows in the page, pandas numbers the columns 0, 1, 2 (header cells are text).
    labels: list[object] = list(table.columns)
    if not all(type(label) is int for label in labels):
        levels = table.columns.nlevels
        yield levels, _header(labels)
    for number, cells in enumerate(table.itertuples(index=False, name=None), start=levels + 1):
        yield number, ["" if cell is None else str(cell) for cell in cells]


def _header(labels: Sequence[object]) -> list[str]:
    """Return the header cells as the page has them, before pandas named and numbered them.

    A cell pandas named ``Unnamed: N`` was empty; ``Note.1`` after a ``Note`` is
    a second ``Note``. Several header rows become one name per column, their
    texts joined (a cell spanning columns is named once per column).
    """
    names: list[str] = []
    for label in labels:
        parts = label if isinstance(label, tuple) else (label,)
        texts = [str(p) for p in parts if not _UNNAMED.fullmatch(str(p))]
        name = " ".join(dict.fromkeys(texts))
        mangled = _MANGLED.fullmatch(name)
        if mangled is not None and mangled.group(1) in names:
            name = mangled.group(1)
        names.append(name)
    return names
