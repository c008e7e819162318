"""Ledgers for the ledger-cost measurement: the real one, and one whose row writes are skipped."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path

from bulkimport.contacts import RowStatus
from bulkimport.ledger.states import SENDABLE
from bulkimport.ledger.store import (
    AttemptRecord,
    Handled,
    KeptRow,
    Ledger,
    NewRow,
    QueuedRow,
    Settlement,
)


class RowsInMemoryLedger(Ledger):
    """The ledger with every per-row write skipped: rows live in a list, nothing touches SQLite.

    Runs and sources (a handful of statements per run) still go to an
    in-memory SQLite database, so the pipeline runs unchanged. What remains
    is the least any ledger must do: hand the recorded rows back to be sent.
    """

    def __init__(self) -> None:
        super().__init__(sqlite3.connect(":memory:", isolation_level=None), None)
        self._migrate()
        self._payloads: list[dict[str, object] | None] = []
        self._row_status: list[RowStatus] = []  # index = row id - 1
        self._where: list[tuple[int, int]] = []  # (source id, row number) per row

    def record_rows(
        self, source_id: int, run_id: int, engagement_id: int, rows: Sequence[NewRow | KeptRow]
    ) -> None:
        for row in rows:
            assert isinstance(row, NewRow)  # a fresh ledger has no earlier version to keep
            self._payloads.append(None if row.payload is None else dict(row.payload))
            self._row_status.append(row.status)
            self._where.append((source_id, row.row_number))

    def already_handled(
        self,
        engagement_id: int,
        identities: Iterable[str],
        *,
        exclude_source: int,
        exclude_rows: Collection[int] = (),
    ) -> dict[str, Handled]:
        return {}

    def queued_rows(
        self,
        *,
        engagement_id: int,
        statuses: Sequence[RowStatus] = SENDABLE,
        source_ids: Sequence[int] | None = None,
    ) -> Iterator[QueuedRow]:
        wanted = frozenset(statuses)
        for index in range(len(self._row_status)):
            status, payload = self._row_status[index], self._payloads[index]
            in_sources = source_ids is None or self._where[index][0] in source_ids
            if status in wanted and payload is not None and in_sources:
                yield QueuedRow(index + 1, payload, status, False)

    def count_queued(
        self,
        engagement_id: int,
        source_ids: Sequence[int],
        statuses: Sequence[RowStatus] = SENDABLE,
    ) -> int:
        return sum(
            status in statuses and self._where[index][0] in source_ids
            for index, status in enumerate(self._row_status)
        )

    def mark_sending(self, row_ids: Sequence[int], run_id: int | None = None) -> None:
        for row_id in row_ids:
            self._row_status[row_id - 1] = RowStatus.SENDING

    def settle(
        self, settlements: Sequence[Settlement], attempts: Sequence[AttemptRecord], run_id: int
    ) -> None:
        for settlement in settlements:
            self._row_status[settlement.row_id - 1] = settlement.status

    def counts(
        self,
        *,
        run_id: int | None = None,
        source_ids: Sequence[int] | None = None,
        row_ids: Sequence[int] | None = None,
        touched_by: int | None = None,
    ) -> Counter[str]:
        if row_ids is not None:
            return Counter(self._row_status[row_id - 1].value for row_id in row_ids)
        return Counter(status.value for status in self._row_status)


def open_ledger(kind: str, folder: Path) -> Ledger:
    """Return a fresh ledger: ``file`` (the real one), ``memory`` (SQLite :memory:) or ``rows``."""
    if kind == "file":
        path = folder / "ledger.sqlite"
        for leftover in folder.glob("ledger.sqlite*"):
            leftover.unlink()
        return Ledger.open(path)
    if kind == "memory":
        return Ledger.in_memory_copy(folder / "no-such-ledger.sqlite")
    if kind == "rows":
        return RowsInMemoryLedger()
    raise ValueError(f"unknown ledger kind {kind!r}")
