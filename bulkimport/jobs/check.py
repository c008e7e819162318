"""`check`: what is wrong with my file? Validate every row, send nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkimport.errors import ExitCode
from bulkimport.output.tables import HeaderUnion, write_table
from bulkimport.rows.prepare import (
    CheckedRow,
    ImportOptions,
    MappedSource,
    Tally,
    Verdict,
    checked_rows,
    open_sources,
)

REPORT_COLUMNS = ("source", "sheet", "row", "status", "phone", "reason")


@dataclass(frozen=True)
class SourceSummary:
    """How one input was read and mapped."""

    source: str
    sheet: str
    encoding: str | None
    delimiter: str | None
    mapped: list[tuple[str, str]]
    ignored: tuple[str, ...]
    header_row: int = 1
    longer_rows: int = 0  # rows with a cell to the right of the header

    @classmethod
    def of(cls, source: MappedSource, widths: Widths) -> SourceSummary:
        table = source.table
        return cls(
            table.source,
            table.sheet,
            table.encoding,
            table.delimiter,
            source.mapping.describe(),
            source.mapping.ignored,
            table.header_row,
            widths.longer[table.source],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sheet": self.sheet,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "header_row": self.header_row,
            "columns": dict(self.mapped),
            "ignored": list(self.ignored),
            "longer_rows": self.longer_rows,
        }


@dataclass
class Widths:
    """How far rows reach to the right of their header, per source.

    A cell beyond the header is kept (the report and the results file put it
    after the last column); empty cells there do not count (a workbook pads
    every row to the widest one).
    """

    headers: dict[str, int] = field(default_factory=dict)  # source -> header width
    longer: Counter[str] = field(default_factory=Counter)  # source -> rows longer than header

    def add(self, source: str, cells: Sequence[str]) -> None:
        width = self.headers[source]
        if len(cells) <= width:
            return
        if any(cells[width:]):
            self.longer[source] += 1

    @classmethod
    def of(cls, sources: Sequence[MappedSource]) -> Widths:
        return cls({s.table.source: len(s.table.header) for s in sources})


@dataclass(frozen=True)
class CheckSummary:
    """The outcome of `check`: per-file mapping, counts, first problems, report path."""

    sources: list[SourceSummary]
    tally: Tally
    report: Path | None

    @property
    def exit_code(self) -> ExitCode:
        clean = self.tally.verdicts[Verdict.VALID] == self.tally.rows
        return ExitCode.OK if clean else ExitCode.ROWS_NEED_ATTENTION

    @property
    def longer_rows(self) -> int:
        return sum(s.longer_rows for s in self.sources)

    def to_json(self) -> dict[str, Any]:
        return {
            "sources": [s.to_json() for s in self.sources],
            "rows": self.tally.rows,
            "longer_rows": self.longer_rows,
            **{v.value: self.tally.verdicts[v] for v in Verdict},
            "problems": dict(self.tally.problems),
            "first_problems": [vars(p) for p in self.tally.first_problems],
            "report": str(self.report) if self.report else None,
            "exit_code": int(self.exit_code),
        }


def check_files(
    paths: Sequence[Path], options: ImportOptions, report: Path | None = None
) -> CheckSummary:
    """Validate every row of ``paths``; write a row-by-row report when asked."""
    tally = Tally()
    with open_sources(paths, options) as sources:
        widths = Widths.of(sources)
        rows = _tallied(checked_rows(sources, options), tally, widths)
        if report is None:
            for _ in rows:
                pass
        else:
            originals = HeaderUnion(s.table.header for s in sources)
            headers = {s.table.source: s.table.header for s in sources}
            write_table(
                report,
                # Named after the last row: cells beyond a header get a column of their own.
                lambda: [*REPORT_COLUMNS, *originals.all_names()],
                (_report_line(checked, originals, headers) for checked in rows),
                # Called after the last row, when the tally is complete.
                summary=lambda: [
                    ("rows", tally.rows),
                    *((v.value, tally.verdicts[v]) for v in Verdict),
                ],
            )
        return CheckSummary([SourceSummary.of(s, widths) for s in sources], tally, report)


def _tallied(rows: Iterator[CheckedRow], tally: Tally, widths: Widths) -> Iterator[CheckedRow]:
    for checked in rows:
        tally.add(checked)
        widths.add(checked.source_row.source, checked.source_row.cells)
        yield checked


def _report_line(
    checked: CheckedRow, originals: HeaderUnion, headers: Mapping[str, Sequence[str]]
) -> list[object]:
    row = checked.source_row
    return [
        row.source,
        row.sheet,
        row.row,
        checked.verdict.value,
        checked.phone,
        checked.reason,
        *originals.cells(headers[row.source], row.cells),
    ]
