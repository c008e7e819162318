"""A table held in memory (a DataFrame's cells, already text) read like a file.

:class:`MemoryTable` is what the library face makes of a DataFrame: a name,
a header and numbered rows of text. :func:`~bulkimport.read.sources.open_source`
opens it as it opens a file, so every later stage (mapping, normalizing, the
ledger) treats it as one more source; its fingerprint is a digest of its
cells, so the same table imported twice is recognized as the same source.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from bulkimport.read.table import SourceTable, split_header

# Changing how a table is digested would make a table already imported look new.
_DIGEST_VERSION = b"bulkimport memory table 1\n"


@dataclass(frozen=True)
class MemoryTable:
    """Rows of text cells with their header, numbered as a spreadsheet numbers them.

    ``header_row`` is the header's row number; each row is ``(number, cells)``
    with numbers above it, in order. Blank rows may be left in: like a blank
    spreadsheet row they are skipped and keep their number.
    """

    name: str
    header: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]
    header_row: int = 1
    sha256: str = ""  # the digest of header and rows: computed when not given

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", table_digest(self.header, self.rows))


def table_digest(header: Sequence[str], rows: Sequence[tuple[int, Sequence[str]]]) -> str:
    """Return the sha256 hex digest of a table's header and numbered rows (not of its name)."""
    digest = hashlib.sha256(_DIGEST_VERSION)
    digest.update(json.dumps(list(header), ensure_ascii=False).encode("utf-8", "surrogatepass"))
    for number, cells in rows:
        line = json.dumps([number, list(cells)], ensure_ascii=False)
        digest.update(b"\n" + line.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@contextmanager
def open_memory(table: MemoryTable) -> Iterator[SourceTable]:
    """Yield the table as a file's reader would: header found, data rows streamed."""
    records = [(table.header_row, table.header), *table.rows]
    header_row, header, rows = split_header(table.name, "", iter(records))
    yield SourceTable(table.name, "", header, header_row, rows, sha256=table.sha256)
