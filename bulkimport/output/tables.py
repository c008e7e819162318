"""Results files: the check report and the import results as CSV or XLSX.

Rows are streamed (a million rows keep memory flat), every text cell is made
formula-safe, and the file appears atomically with mode 0600 because it holds
personal data.

openpyxl parses XML through defusedxml whenever defusedxml is installed
(``openpyxl.DEFUSEDXML`` is then true); it is a dependency of this package, so
workbooks opened anywhere in bulkimport are read with the hardened parser.
This module itself only writes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import logging
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

from bulkimport.errors import InputError

logger = logging.getLogger(__name__)

# OWASP "CSV injection": a spreadsheet treats a cell starting with one of
# these as a formula (or, for TAB and CR, strips them and then does).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


Row = Sequence[object]
Columns = Sequence[str] | Callable[[], Sequence[str]]
SummaryPairs = Sequence[tuple[str, object]]
# A callable summary is called after the last row, when totals counted while streaming are final.
Summary = SummaryPairs | Callable[[], SummaryPairs]
# Says what a person should do about a row, or None when the row needs nobody.
Attention = Callable[[Row], str | None]
TableWriter = Callable[[IO[bytes], Sequence[str], Iterable[Row], "Extras"], int]


class Extras:
    """What a workbook holds beside its rows: colours, the summary, the rows that need a person."""

    def __init__(self, status_column: str, summary: Summary, attention: Attention | None) -> None:
        self.status_column = status_column
        self.summary = summary
        self.attention = attention


FORMULA_FIRST = frozenset(prefix[0] for prefix in FORMULA_PREFIXES)


def formula_safe(value: object) -> object:
    """Return ``value`` with a ``'`` in front when a spreadsheet would run it as a formula.

    Only text can be a formula; numbers and ``None`` come back unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class HeaderUnion:
    """The inputs' headers merged into one, so every row's own cells fit one table.

    Names come in order of first appearance and a name shared by several
    inputs is one column. Within one header a repeated name gets its own
    column, ``Note (again)``, and a nameless one is ``column N`` (N counted
    from 1), so no cell of a row ever overwrites another. The check report and
    the results file both build their header here.
    """

    def __init__(self, headers: Iterable[Sequence[str]]) -> None:
        self.names: list[str] = []
        self._index: dict[str, int] = {}
        self._positions: dict[tuple[str, ...], list[int]] = {}
        self._beyond: dict[int, int] = {}  # header width -> most cells seen beyond it
        for header in headers:
            self._add(tuple(header))

    def _add(self, header: tuple[str, ...]) -> None:
        if header in self._positions:
            return
        positions = []
        for label in column_labels(header):
            if label not in self._index:
                self._index[label] = len(self.names)
                self.names.append(label)
            positions.append(self._index[label])
        self._positions[header] = positions

    def cells(self, header: Sequence[str], cells: Sequence[str]) -> list[str]:
        """Return a row's cells placed under the union, "" where its file has no such column.

        ``header`` is the row's own file header, one of those given. Cells
        beyond it have no name: they follow the union's columns, so none is lost.
        """
        positions = self._positions[tuple(header)]
        out = [""] * len(self.names)
        for position, value in zip(positions, cells, strict=False):
            out[position] = value
        extra = list(cells[len(positions) :])
        while extra and not extra[-1]:
            extra.pop()
        if not extra:
            return out
        width = len(positions)
        if len(extra) > self._beyond.get(width, 0):
            self._beyond[width] = len(extra)
        return out + extra

    def all_names(self) -> list[str]:
        """Return the columns, with a name for each cell seen beyond its header so far.

        A cell beyond a header of width W is ``column W+1``, as a nameless
        column is called; when files of different widths had such cells, the
        shared columns after the union are ``extra cell N``.
        """
        widest = max(self._beyond.values(), default=0)
        if len(self._beyond) == 1:
            (width,) = self._beyond
            extra = [f"column {width + n}" for n in range(1, widest + 1)]
        else:
            extra = [f"extra cell {n}" for n in range(1, widest + 1)]
        taken = set(self.names)
        labels = []
        for label in extra:
            while label in taken:
                label += " (again)"
            taken.add(label)
            labels.append(label)
        return self.names + labels


def column_labels(header: Sequence[str]) -> list[str]:
    """Return one file's column names as a results file shows them, each one distinct."""
    labels: list[str] = []
    seen: set[str] = set()
    for number, name in enumerate(header, start=1):
        label = name or f"column {number}"
        while label in seen:
            label += " (again)"
        seen.add(label)
        labels.append(label)
    return labels


def write_table(
    path: Path,
    columns: Columns,
    rows: Iterable[Row],
    *,
    status_column: str = "status",
    summary: Summary = (),
    attention: Attention | None = None,
) -> int:
    """Write ``columns`` and ``rows`` to ``path`` (.csv or .xlsx) and return how many rows.

    ``rows`` is consumed once, lazily. The XLSX file colours each row by the
    value of ``status_column`` and has a second sheet with the ``summary``
    (label, value) pairs; pass a callable to have them read after the last
    row, so counts taken while the rows stream are complete. A CSV holds one
    table, so it carries the rows only. With ``attention``, a workbook has a
    "Needs attention" sheet: the rows it gives advice for, and the advice.
    ``columns`` may be a callable too,
    called after the last row (when how wide the rows reach is known): the
    rows then wait in a private temporary file until the header is written.
    """
    writer = _writer_for(path)
    source = _RowSource(rows)
    extras = Extras(status_column, summary, attention)
    if callable(columns):
        named_later = columns
        count = _write_atomically(
            path,
            source,
            lambda stream: _write_header_last(stream, writer, named_later, source, extras),
        )
    else:
        count = _write_atomically(
            path, source, lambda stream: writer(stream, columns, source, extras)
        )
    logger.info("wrote %d rows to %s", count, path)
    return count


def check_destination(path: Path) -> None:
    """Raise InputError now if ``path`` cannot take a results file later.

    Called before an import sends anything, so a typo in the results path
    never turns up after the contacts were subscribed.
    """
    _writer_for(path)
    if path.is_dir():
        raise _input_error(path, IsADirectoryError())
    folder = path.parent
    if not folder.is_dir():
        raise _input_error(path, FileNotFoundError())
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _input_error(path, PermissionError())


def _writer_for(path: Path) -> TableWriter:
    """Return the writer for the file type the suffix names."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _write_csv
    if suffix == ".xlsx":
        from bulkimport.output.workbook import write_xlsx  # openpyxl only when a workbook is asked

        return write_xlsx
    raise InputError(f"Cannot write results to {path.name}: use a .csv or .xlsx name.")


class _RowSource(Iterator[Row]):
    """The caller's rows, remembering an error they raise so it is not blamed on the file."""

    def __init__(self, rows: Iterable[Row]) -> None:
        self._rows = iter(rows)
        self.error: BaseException | None = None

    def __next__(self) -> Row:
        try:
            return next(self._rows)
        except StopIteration:
            raise
        except BaseException as exc:
            self.error = exc
            raise


def _write_atomically(path: Path, source: _RowSource, write: Callable[[IO[bytes]], int]) -> int:
    """Run ``write`` on a private temporary file beside ``path``, then move it onto ``path``.

    ``tempfile.mkstemp`` creates the file with ``os.open(..., 0o600)``, so
    personal data is never readable by others, and ``os.replace`` makes a
    crash leave either the old file or the complete new one. An ``OSError``
    from ``source`` (a spreadsheet that cannot be read) passes through as it is.
    """
    directory = path.parent
    try:
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _input_error(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as stream:
            count = write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except OSError as exc:
        _remove_quietly(temp_name)
        if exc is source.error:
            raise
        raise _input_error(path, exc) from exc
    except BaseException:
        _remove_quietly(temp_name)
        raise
    return count


def _write_header_last(
    stream: IO[bytes],
    writer: TableWriter,
    columns: Callable[[], Sequence[str]],
    rows: Iterable[Row],
    extras: Extras,
) -> int:
    """Hold ``rows`` in a private temporary file, then write them under ``columns()``.

    A CSV's body is written as it will stay and copied after the header; a
    workbook's rows are pickled in chunks and replayed.
    """
    with tempfile.TemporaryFile() as held:
        if writer is _write_csv:
            count = _write_csv(held, (), rows, extras, header=False)
            with _text(stream) as text:
                csv.writer(text).writerow([formula_safe(name) for name in columns()])
            held.seek(0)
            shutil.copyfileobj(held, stream)
            return count
        row_iter = iter(rows)
        while chunk := list(itertools.islice(row_iter, 1000)):
            pickle.dump(chunk, held, protocol=pickle.HIGHEST_PROTOCOL)
        held.seek(0)
        return writer(stream, columns(), _replayed(held), extras)


def _replayed(held: IO[bytes]) -> Iterator[Row]:
    """Yield the rows ``_write_header_last`` pickled, in order."""
    while True:
        try:
            chunk = pickle.load(held)  # noqa: S301 - this process's own file, just written
        except EOFError:
            return
        yield from chunk


def _remove_quietly(name: str) -> None:
    """Delete a leftover temporary file; a file already gone is fine."""
    with contextlib.suppress(OSError):
        os.unlink(name)


def _input_error(path: Path, exc: OSError) -> InputError:
    """Return the one-sentence error for a results file that cannot be written."""
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return InputError(
            f"The folder {path.parent} does not exist: create it or choose another results path."
        )
    if isinstance(exc, PermissionError):
        return InputError(
            f"Cannot write {path}: permission denied, choose a folder you can write to."
        )
    if isinstance(exc, IsADirectoryError):
        return InputError(f"{path} is a folder: give a file name ending in .csv or .xlsx.")
    reason = exc.strerror or type(exc).__name__
    return InputError(f"Cannot write {path} ({reason}): free some space or choose another path.")


def _write_csv(
    stream: IO[bytes],
    columns: Sequence[str],
    rows: Iterable[Row],
    extras: Extras,
    *,
    header: bool = True,
) -> int:
    """Write a UTF-8 CSV with a BOM (so Excel detects the encoding) and return the row count.

    Without ``header`` only the rows are written, with no BOM: a body that follows a header.
    """
    del extras  # a CSV has no colours and no second sheet
    with _text(stream, bom=header) as text:
        writer = csv.writer(text)
        if header:
            writer.writerow([formula_safe(name) for name in columns])
        count = 0
        for row in rows:
            # formula_safe, inlined: a call per cell is a third of writing a big report.
            writer.writerow(
                [
                    "'" + value if isinstance(value, str) and value[:1] in FORMULA_FIRST else value
                    for value in row
                ]
            )
            count += 1
    return count


@contextlib.contextmanager
def _text(stream: IO[bytes], *, bom: bool = True) -> Iterator[IO[str]]:
    """Yield a UTF-8 (with a BOM) text view of ``stream`` that leaves ``stream`` open."""
    encoding = "utf-8-sig" if bom else "utf-8"
    text = io.TextIOWrapper(stream, encoding=encoding, newline="", write_through=True)
    try:
        yield text
        text.flush()
    finally:
        text.detach()
