"""Turn a mapped source row into a Contact ready to send, or say why it cannot be."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bulkimport.contacts import Contact, Field, Problem, Rejected, SourceRow
from bulkimport.rows.columns import ColumnMapping
from bulkimport.rows.phones import PhoneNormalizer

# Longer than any real name or address; such a cell is a paste gone wrong.
MAX_FIELD_LENGTH = 255

_ID_SEPARATORS = re.compile(r"[,;]")
_WHOLE_NUMBER = re.compile(r"^\d+(?:\.0+)?$")
# Deliberately loose: one @, no spaces, a dot in the domain. The server is the judge.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class ContactDefaults:
    """Values every contact of an import gets (``--group``, ``--organization``)."""

    groups: tuple[int, ...] = ()
    organization_id: int | None = None


class RowNormalizer:
    """Builds a Contact from a source row through a column mapping.

    ``custom_fields`` maps an engageSPARK custom field id (as text) to its
    column; names are resolved to ids before rows are normalized.
    """

    def __init__(
        self,
        mapping: ColumnMapping,
        phones: PhoneNormalizer,
        *,
        custom_fields: Mapping[str, int] | None = None,
        defaults: ContactDefaults = ContactDefaults(),
    ) -> None:
        self._fields = mapping.fields
        self._custom = dict(mapping.custom if custom_fields is None else custom_fields)
        self._phones = phones
        self._defaults = defaults

    def phone_cell(self, row: SourceRow) -> str:
        """Return the row's phone cell exactly as :meth:`normalize` hands it on."""
        index = self._fields.get(Field.PHONE)
        if index is None or index >= len(row.cells):
            return ""
        return row.cells[index].strip()

    @property
    def maps_phone(self) -> bool:
        return Field.PHONE in self._fields

    def normalize(self, row: SourceRow) -> Contact | Rejected:
        """Return the row's Contact, or the first problem that stops it being sent."""
        cells = row.cells
        values: dict[Field, str] = {}
        for target, index in self._fields.items():
            value = cells[index].strip() if index < len(cells) else ""
            if len(value) > MAX_FIELD_LENGTH:
                return Rejected(
                    Problem.CELL_TOO_LONG,
                    f"The {target.value} cell has {len(value):,} characters: "
                    f"shorten it to at most {MAX_FIELD_LENGTH}.",
                )
            values[target] = value

        contact_id: int | None = None
        raw_id = values.get(Field.CONTACT_ID, "")
        if raw_id:
            if not _WHOLE_NUMBER.match(raw_id):
                return Rejected(
                    Problem.CONTACT_ID_INVALID,
                    f"Contact id {_clip(raw_id)!r} is not a whole number: "
                    "use the ID column of an engageSPARK contacts export.",
                )
            contact_id = int(float(raw_id)) if "." in raw_id else int(raw_id)

        phone: str | None = None
        raw_phone = values.get(Field.PHONE, "")
        if contact_id is None or raw_phone:
            result = self._phones.normalize(raw_phone)
            if isinstance(result, Rejected):
                if contact_id is None:
                    return result
            else:
                phone = result

        groups = _integers(values.get(Field.GROUPS, ""))
        if groups is None:
            return Rejected(
                Problem.GROUP_INVALID,
                f"Groups {_clip(values[Field.GROUPS])!r} are not group ids: "
                "write whole numbers separated by commas, like 321, 322.",
            )
        organization_id = self._defaults.organization_id
        raw_org = values.get(Field.ORGANIZATION, "")
        if raw_org:
            if not _WHOLE_NUMBER.match(raw_org):
                return Rejected(
                    Problem.ORGANIZATION_INVALID,
                    f"Organization {_clip(raw_org)!r} is not an organization id: "
                    "write the whole number engageSPARK shows for the organization.",
                )
            organization_id = int(float(raw_org))

        email = values.get(Field.EMAIL, "")
        if email and not _EMAIL.match(email):
            return Rejected(
                Problem.EMAIL_INVALID,
                f"Email {_clip(email)!r} is not an email address: correct it or clear the cell.",
            )

        first, last = values.get(Field.FIRST_NAME, ""), values.get(Field.LAST_NAME, "")
        if not first and not last and values.get(Field.FULL_NAME):
            first, last = split_full_name(values[Field.FULL_NAME])

        custom = {
            field_id: cells[index].strip()
            for field_id, index in self._custom.items()
            if index < len(cells) and cells[index].strip()
        }
        return Contact(
            phone=phone,
            contact_id=contact_id,
            first_name=first,
            last_name=last,
            email=email,
            language=values.get(Field.LANGUAGE, ""),
            groups=tuple(dict.fromkeys(groups + self._defaults.groups)),
            organization_id=organization_id,
            custom_fields=custom,
        )


def split_full_name(full: str) -> tuple[str, str]:
    """Split one name cell: ``Dela Cruz, Juan`` at the comma, else at the last space."""
    full = " ".join(full.split())
    if "," in full:
        last, _, first = full.partition(",")
        return first.strip(), last.strip()
    first, _, last = full.rpartition(" ")
    return (first, last) if first else (last, "")


def _integers(text: str) -> tuple[int, ...] | None:
    if not text:
        return ()
    parts = [p.strip() for p in _ID_SEPARATORS.split(text) if p.strip()]
    if not all(_WHOLE_NUMBER.match(p) for p in parts):
        return None
    return tuple(int(float(p)) for p in parts)


def _clip(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
