"""A new version of a file keeps what the ledger already holds for its unchanged rows.

A cumulative export comes back every night with the same people and a few
more. Each row of the new version whose cells are exactly those of a row of
the previous version, and whose verdict would be the same, is recorded as a
reference to that row (it keeps its state: a subscribed person stays
subscribed, with their contact id); only new or changed rows are stored. So
the ledger grows with new people, not with nights.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque

from bulkimport.contacts import RowStatus
from bulkimport.ledger.store import KeptRow, Ledger, MemberRow, NewRow

S = RowStatus
VERDICTS = (S.INVALID, S.DUPLICATE)  # rows decided by their cells alone, never sent


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _outcome(status: RowStatus, identity: str | None, reason: str, payload: str | None) -> bytes:
    """What must match for a row to be kept: the verdict, or the person and their payload."""
    if status in VERDICTS:
        return _digest(json.dumps(["verdict", status.value, reason]))
    return _digest(json.dumps(["person", identity, payload]))


class Carryover:
    """The rows of a file's previous version, by content, that a new version may keep."""

    def __init__(self, ledger: Ledger, base_id: int | None, *, taken: set[int]) -> None:
        """Index the rows of ``base_id``, leaving out ``taken`` (rows the version already holds)."""
        self._rows: dict[bytes, deque[tuple[int, bytes]]] = {}
        if base_id is None:
            return
        for member in ledger.members(base_id):
            if member.row_id not in taken:
                key = _digest(member.cells)
                self._rows.setdefault(key, deque()).append((member.row_id, _kept_outcome(member)))

    def keep(self, row: NewRow) -> KeptRow | None:
        """Return a reference to an earlier row identical to ``row``, or None to record it."""
        if not self._rows:
            return None
        key = _digest(json.dumps(list(row.cells), ensure_ascii=False))
        candidates = self._rows.get(key)
        if not candidates:
            return None
        payload = None if row.payload is None else json.dumps(row.payload)
        wanted = _outcome(row.status, row.identity, row.reason, payload)
        for index, (row_id, outcome) in enumerate(candidates):
            if outcome == wanted:
                del candidates[index]
                return KeptRow(row.row_number, row_id)
        return None


def _kept_outcome(member: MemberRow) -> bytes:
    return _outcome(member.status, member.identity, member.reason, member.payload)
