"""An account's existing contacts, read from an engageSPARK contacts export.

``bulkimport sandbox --contacts FILE`` starts the sandbox with the contacts
of a real account, so that an export of that account can be rehearsed: its
rows subscribe by id, and ``try_using_existing=newest`` reuses them by number.
The export is a CSV or XLSX download with columns such as ``ID``, ``First
Name``, ``Last Name``, ``Full Phone Number``, ``Phone Number``, ``Dialing
Code``, ``Email``, ``Language``, ``Created Date`` and ``Groups``; headers are
matched as :mod:`bulkimport.rows.columns` matches them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkimport.contacts import Field, SourceRow, mask_phone
from bulkimport.errors import InputError
from bulkimport.read.sources import open_source
from bulkimport.rows.columns import SYNONYMS, header_key

_ID_KEYS = frozenset({"id", *SYNONYMS[Field.CONTACT_ID][0]})
_DIALING_CODE_KEYS = frozenset({"dialingcode", "countrycode", "callingcode"})
_CREATED_KEYS = frozenset({"createddate", "created", "datecreated", "createdat"})
_WHOLE_NUMBER = re.compile(r"[0-9]+")
_INTERNATIONAL = re.compile(r"[1-9][0-9]{7,14}")
_GROUP_SEPARATORS = re.compile(r"[,;\s]+")


@dataclass(frozen=True)
class _ExportColumns:
    """Where each contact field sits in an export's header (None: not there)."""

    contact_id: int
    phone: int
    phone_is_national: bool
    dialing_code: int | None
    first_name: int | None
    last_name: int | None
    email: int | None
    language: int | None
    groups: int | None
    created: int | None


def load_contacts(path: Path) -> list[dict[str, Any]]:
    """Return the contacts of an engageSPARK contacts export, one per data row.

    Each is a contact as the API shows it, less ``organizationId`` (the
    sandbox's own is used). Raises :class:`InputError` for a file that is not
    such an export, a row without a whole-number ID or an international
    phone number, and an ID given twice.
    """
    with open_source(path) as table:
        columns = _export_columns(table.header, table.source)
        contacts = [_contact(row, columns) for row in table.rows]
    _refuse_repeated_ids(contacts, table.source)
    return contacts


def _export_columns(header: Sequence[str], source: str) -> _ExportColumns:
    """Return the columns of an export's header, or raise :class:`InputError`."""
    keys = [header_key(name) for name in header]
    contact_id = _column(keys, [_ID_KEYS])
    full_phone = _column(keys, SYNONYMS[Field.PHONE][:1])
    phone = full_phone if full_phone is not None else _column(keys, SYNONYMS[Field.PHONE])
    if contact_id is None or phone is None:
        missing = "ID column" if contact_id is None else "phone number column"
        shown = ", ".join(repr(name) for name in header if name) or "(none)"
        raise InputError(
            f"{source} has no {missing}, so it is not an engageSPARK contacts export "
            f"(headers: {shown}); download the contacts of the account, with the columns "
            '"ID" and "Full Phone Number".'
        )
    return _ExportColumns(
        contact_id=contact_id,
        phone=phone,
        phone_is_national=full_phone is None,
        dialing_code=_column(keys, [_DIALING_CODE_KEYS]),
        first_name=_column(keys, SYNONYMS[Field.FIRST_NAME]),
        last_name=_column(keys, SYNONYMS[Field.LAST_NAME]),
        email=_column(keys, SYNONYMS[Field.EMAIL]),
        language=_column(keys, SYNONYMS[Field.LANGUAGE]),
        groups=_column(keys, SYNONYMS[Field.GROUPS]),
        created=_column(keys, [_CREATED_KEYS]),
    )


def _column(keys: Sequence[str], tiers: Iterable[frozenset[str]]) -> int | None:
    """Return the first column whose header key is in the earliest tier that has one."""
    for tier in tiers:
        for index, key in enumerate(keys):
            if key in tier:
                return index
    return None


def _contact(row: SourceRow, columns: _ExportColumns) -> dict[str, Any]:
    """Return the contact one export row describes, or raise :class:`InputError`."""

    def cell(index: int | None) -> str:
        return row.cells[index].strip() if index is not None and index < len(row.cells) else ""

    where = f"{row.source} row {row.row}"
    raw_id = cell(columns.contact_id)
    if not _WHOLE_NUMBER.fullmatch(raw_id):
        raise InputError(
            f"{where}: the ID {raw_id!r} is not a contact id (a whole number); "
            "fix the cell or remove the row."
        )
    phone = _international(cell(columns.phone), cell(columns.dialing_code), columns)
    if not _INTERNATIONAL.fullmatch(phone):
        raise InputError(
            f"{where}: the phone number {mask_phone(cell(columns.phone))!r} is not an "
            "international number (8 to 15 digits with the dialing code); fix the cell "
            "or remove the row."
        )
    contact: dict[str, Any] = {
        "id": int(raw_id),
        "fullPhoneNumber": phone,
        "firstName": cell(columns.first_name),
        "lastName": cell(columns.last_name),
        "email": cell(columns.email),
        "language": cell(columns.language),
        "groups": _groups(cell(columns.groups)),
    }
    if created := cell(columns.created):
        contact["createdDate"] = created
    return contact


def _international(text: str, dialing_code: str, columns: _ExportColumns) -> str:
    """Return the digits of a phone cell, with the dialing code put in front if need be."""
    digits = "".join(ch for ch in text if ch.isdigit() and ch.isascii())
    code = "".join(ch for ch in dialing_code if ch.isdigit() and ch.isascii())
    if columns.phone_is_national and code and not digits.startswith(code):
        return code + digits.lstrip("0")
    return digits


def _groups(text: str) -> list[int]:
    """Return the group ids of a Groups cell (``4417, 4418``); names are left out."""
    return [int(part) for part in _GROUP_SEPARATORS.split(text) if _WHOLE_NUMBER.fullmatch(part)]


def _refuse_repeated_ids(contacts: Sequence[dict[str, Any]], source: str) -> None:
    """Raise :class:`InputError` for the first contact id that appears twice."""
    seen: set[int] = set()
    for contact in contacts:
        if contact["id"] in seen:
            raise InputError(
                f"{source} holds the contact id {contact['id']} twice; an export names each "
                "contact once, so remove the repeated row."
            )
        seen.add(contact["id"])
