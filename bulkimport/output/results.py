"""Give the user their rows back from the ledger: a results file and run listings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bulkimport.ledger.states import REPORT_ORDER
from bulkimport.ledger.store import Ledger, ResultRow
from bulkimport.output.tables import HeaderUnion, write_table

RESULT_COLUMNS = ("source", "sheet", "row", "status", "contact_id", "phone", "reason")
STATUS_ORDER = REPORT_ORDER  # the order of the Summary sheet


def write_results(ledger: Ledger, path: Path, *, source_ids: Sequence[int] | None = None) -> int:
    """Write every recorded row (of some sources, or all) with its outcome; return the count."""
    originals = HeaderUnion(ledger.headers(source_ids=source_ids))
    counts = ledger.counts(source_ids=source_ids) if source_ids is not None else ledger.counts()
    summary = [("rows", sum(counts.values()))] + [
        (status.value, counts[status]) for status in STATUS_ORDER if counts[status]
    ]
    return write_table(
        path,
        lambda: [*RESULT_COLUMNS, *originals.all_names()],
        (_line(row, originals) for row in ledger.result_rows(source_ids=source_ids)),
        summary=summary,
    )


def result_table(
    ledger: Ledger, *, source_ids: Sequence[int] | None = None
) -> tuple[list[str], list[list[object]]]:
    """Return the columns and rows `write_results` writes, in memory (for a DataFrame)."""
    originals = HeaderUnion(ledger.headers(source_ids=source_ids))
    rows = [_line(row, originals) for row in ledger.result_rows(source_ids=source_ids)]
    return [*RESULT_COLUMNS, *originals.all_names()], rows


def _line(row: ResultRow, originals: HeaderUnion) -> list[object]:
    return [
        row.source,
        row.sheet,
        row.row_number,
        row.status,
        row.contact_id,
        row.phone or "",
        row.reason,
        *originals.cells(row.header, row.cells),
    ]
