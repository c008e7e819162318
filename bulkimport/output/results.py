"""Give the user their rows back from the ledger: one line per row of each file.

By default each file (path, sheet, engagement) appears once, as its newest
version, in the file's own row order; every line carries what engageSPARK
knows of the person: the contact id and when they were subscribed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from bulkimport.contacts import RowStatus
from bulkimport.ledger.states import NEEDS_ATTENTION, REPORT_ORDER
from bulkimport.ledger.store import Ledger, ResultRow
from bulkimport.output.tables import HeaderUnion, Row, write_table

S = RowStatus
RESULT_COLUMNS = (
    "source", "sheet", "row", "status", "contact_id", "subscribed_at", "phone", "reason",
)  # fmt: skip
STATUS_ORDER = REPORT_ORDER  # the order of the Summary sheet
STATUS_INDEX = RESULT_COLUMNS.index("status")

# What a person does about a row of each state that needs them ("Needs attention" sheet).
WHAT_TO_DO: dict[str, str] = {
    S.INVALID: "correct the cell the reason names in your file, then run the file again",
    S.DUPLICATE: "nothing, if it is the same person as the earlier row; otherwise give this "
    "row its own number and run the file again",
    S.FAILED: "fix what the reason says, then `bulkimport retry --include-rejected`",
    S.UNKNOWN: "`bulkimport retry` sends it again with contact reuse (no second contact)",
    S.PENDING: "`bulkimport retry` sends it (or `bulkimport discard` leaves it out)",
    S.SENDING: "`bulkimport retry` finishes it (it was being sent when a run stopped)",
}


def chosen_sources(
    ledger: Ledger, *, run_id: int | None = None, history: bool = False
) -> list[int] | None:
    """Return the versions `results` shows: newest of each file, a run's, or all (None)."""
    if run_id is not None:
        ledger.run_settings(run_id)  # refuses an unknown run
        return ledger.sources_of(run_id)
    return None if history else ledger.latest_sources()


def write_results(ledger: Ledger, path: Path, *, source_ids: Sequence[int] | None = None) -> int:
    """Write the rows of some versions (None: every version) with their outcome.

    An XLSX gets a "Needs attention" sheet with the rows a person must act
    on, and what to do. Return the number of rows.
    """
    originals = HeaderUnion(ledger.headers(source_ids=source_ids))
    counts: Counter[str] = Counter()

    def lines() -> Iterator[list[object]]:
        for row in ledger.result_rows(source_ids=source_ids):
            counts[row.status] += 1
            yield _line(row, originals)

    return write_table(
        path,
        # Named after the last row: cells beyond a header get a column of their own.
        lambda: [*RESULT_COLUMNS, *originals.all_names()],
        lines(),
        summary=lambda: _summary(counts),
        attention=_what_to_do,
    )


def result_table(
    ledger: Ledger, *, source_ids: Sequence[int] | None = None
) -> tuple[list[str], list[list[object]]]:
    """Return the columns and rows `write_results` writes, in memory (for a DataFrame)."""
    originals = HeaderUnion(ledger.headers(source_ids=source_ids))
    rows = [_line(row, originals) for row in ledger.result_rows(source_ids=source_ids)]
    return [*RESULT_COLUMNS, *originals.all_names()], rows


def _summary(counts: Counter[str]) -> list[tuple[str, object]]:
    pairs: list[tuple[str, object]] = [("rows", sum(counts.values()))]
    pairs += [(status.value, counts[status]) for status in STATUS_ORDER if counts[status]]
    return pairs


def _what_to_do(line: Row) -> str | None:
    status = line[STATUS_INDEX]
    return WHAT_TO_DO.get(str(status)) if status in NEEDS_ATTENTION else None


def _line(row: ResultRow, originals: HeaderUnion) -> list[object]:
    """One result line: the person's subscription fills in the contact id and the when."""
    subscription = row.subscription
    contact_id, subscribed_at, reason = row.contact_id, "", row.reason
    if subscription is not None and row.status in (S.SUBSCRIBED, S.SKIPPED):
        contact_id = subscription.contact_id if contact_id is None else contact_id
        subscribed_at = subscription.subscribed_at
        if row.status == S.SKIPPED:
            reason = subscription.describe()
    return [
        row.source,
        row.sheet,
        row.row_number,
        row.status,
        contact_id,
        subscribed_at,
        row.phone or "",
        reason,
        *originals.cells(row.header, row.cells),
    ]
