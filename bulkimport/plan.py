"""Planning: in-import duplicates and batches for the API."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

from bulkimport.contacts import Contact, SourceRow

T = TypeVar("T")


class Deduper:
    """Remembers the first row of each person (contact id or number) in one import."""

    def __init__(self) -> None:
        self._first: dict[str, tuple[str, int]] = {}

    def duplicate_of(self, contact: Contact, row: SourceRow) -> str | None:
        """Return why ``row`` repeats an earlier row, or None the first time a person is seen."""
        key = contact.identity
        first = self._first.get(key)
        if first is None:
            self._first[key] = (row.source, row.row)
            return None
        source, number = first
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
