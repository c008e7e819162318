"""Planning: in-import duplicates and batches for the API."""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from bulkimport.contacts import Contact, SourceRow

T = TypeVar("T")


class Deduper:
    """Remembers the first row of each person (contact id or number) in one import.

    Every person must be remembered to the end of the import, so memory per
    person matters: recent people sit in a small dict, and every
    ``MERGE_AT`` of them move into two sorted int64 arrays (a number's digits
    or a negated contact id; the source index and row packed in one int),
    16 bytes a person instead of a dict entry's ~110.
    """

    MERGE_AT = 1 << 15

    def __init__(self) -> None:
        self._recent: dict[int, int] = {}
        self._keys = np.empty(0, dtype=np.int64)
        self._firsts = np.empty(0, dtype=np.int64)
        self._sources: list[str] = []

    def duplicate_of(self, contact: Contact, row: SourceRow) -> str | None:
        """Return why ``row`` repeats an earlier row, or None the first time a person is seen."""
        key = -contact.contact_id - 1 if contact.contact_id is not None else int(contact.phone or 0)
        first = self._recent.get(key)
        if first is None and self._keys.size:
            at = int(np.searchsorted(self._keys, key))
            if at < self._keys.size and self._keys[at] == key:
                first = int(self._firsts[at])
        if first is None:
            if not self._sources or self._sources[-1] != row.source:
                self._sources.append(row.source)
            self._recent[key] = (len(self._sources) - 1) << 32 | row.row
            if len(self._recent) >= self.MERGE_AT:
                self._merge()
            return None
        source, number = self._sources[first >> 32], first & 0xFFFFFFFF
        what = "contact id" if contact.contact_id is not None else "number"
        where = f"row {number}" if source == row.source else f"row {number} of {source}"
        return f"same {what} as {where}"

    def _merge(self) -> None:
        # Insert the sorted newcomers into the sorted arrays: the only copy made at a
        # time is one array, so the peak stays near 24 bytes a person.
        count = len(self._recent)
        keys = np.fromiter(self._recent, np.int64, count)
        firsts = np.fromiter(self._recent.values(), np.int64, count)
        order = np.argsort(keys)
        keys, firsts = keys[order], firsts[order]
        at = np.searchsorted(self._keys, keys)
        self._keys = np.insert(self._keys, at, keys)
        self._firsts = np.insert(self._firsts, at, firsts)
        self._recent.clear()
