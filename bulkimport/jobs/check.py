"""`check`: what is wrong with my file? Validate every row, send nothing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
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

    @classmethod
    def of(cls, source: MappedSource) -> SourceSummary:
        table = source.table
        return cls(
            table.source,
            table.sheet,
            table.encoding,
            table.delimiter,
            source.mapping.describe(),
            source.mapping.ignored,
            table.header_row,
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
        }


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

    def to_json(self) -> dict[str, Any]:
        return {
            "sources": [s.to_json() for s in self.sources],
            "rows": self.tally.rows,
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
        rows = _tallied(checked_rows(sources, options), tally)
        if report is None:
            for _ in rows:
                pass
        else:
            originals = HeaderUnion(s.table.header for s in sources)
            headers = {s.table.source: s.table.header for s in sources}
            write_table(
                report,
                [*REPORT_COLUMNS, *originals.names],
                (_report_line(checked, originals, headers) for checked in rows),
                # Called after the last row, when the tally is complete.
                summary=lambda: [
                    ("rows", tally.rows),
                    *((v.value, tally.verdicts[v]) for v in Verdict),
                ],
            )
        return CheckSummary([SourceSummary.of(s) for s in sources], tally, report)


def _tallied(rows: Iterator[CheckedRow], tally: Tally) -> Iterator[CheckedRow]:
    for checked in rows:
        tally.add(checked)
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
