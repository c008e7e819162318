"""Give the user their rows back from the ledger: a results file and run listings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bulkimport.ledger.store import Ledger, ResultRow
from bulkimport.output.tables import write_table

RESULT_COLUMNS = ("source", "sheet", "row", "status", "contact_id", "phone", "reason")
STATUS_ORDER = (
    "subscribed", "skipped", "invalid", "duplicate", "failed", "unknown", "pending", "sending",
)  # fmt: skip


def write_results(ledger: Ledger, path: Path, *, source_ids: Sequence[int] | None = None) -> int:
    """Write every recorded row (of some sources, or all) with its outcome; return the count."""
    originals = _union_header(ledger.headers(source_ids=source_ids))
    counts = ledger.counts(source_ids=source_ids) if source_ids is not None else ledger.counts()
    summary = [("rows", sum(counts.values()))] + [
        (status, counts[status]) for status in STATUS_ORDER if counts[status]
    ]
    return write_table(
        path,
        [*RESULT_COLUMNS, *originals],
        (_line(row, originals) for row in ledger.result_rows(source_ids=source_ids)),
        summary=summary,
    )


def _union_header(headers: Sequence[Sequence[str]]) -> list[str]:
    """Return the inputs' headers merged in order of first appearance."""
    names: dict[str, None] = {}
    for header in headers:
        for i, name in enumerate(header):
            names.setdefault(name or f"column {i + 1}")
    return list(names)


def _line(row: ResultRow, originals: list[str]) -> list[object]:
    cells = dict.fromkeys(originals, "")
    for i, value in enumerate(row.cells):
        name = row.header[i] if i < len(row.header) and row.header[i] else f"column {i + 1}"
        cells[name] = value
    return [
        row.source,
        row.sheet,
        row.row_number,
        row.status,
        row.contact_id,
        row.phone or "",
        row.reason,
        *cells.values(),
    ]
