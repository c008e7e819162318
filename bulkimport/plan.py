"""Planning: in-import duplicates and batches for the API."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

from bulkimport.contacts import Contact, SourceRow

T = TypeVar("T")


class Deduper:
    """Remembers the first row of each person (contact id or number) in one import.

    Keys and values are plain integers (a number's digits; a contact id
    negated; the source's index and row packed in one int), so a million rows
    cost tens of megabytes rather than hundreds.
    """

    def __init__(self) -> None:
        self._first: dict[int, int] = {}
        self._sources: list[str] = []

    def duplicate_of(self, contact: Contact, row: SourceRow) -> str | None:
        """Return why ``row`` repeats an earlier row, or None the first time a person is seen."""
        key = -contact.contact_id - 1 if contact.contact_id is not None else int(contact.phone or 0)
        first = self._first.get(key)
        if first is None:
            if not self._sources or self._sources[-1] != row.source:
                self._sources.append(row.source)
            self._first[key] = (len(self._sources) - 1) << 32 | row.row
            return None
        source, number = self._sources[first >> 32], first & 0xFFFFFFFF
        what = "contact id" if contact.contact_id is not None else "number"
        where = f"row {number}" if source == row.source else f"row {number} of {source}"
        return f"same {what} as {where}"


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of at most ``size`` items, in order."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
