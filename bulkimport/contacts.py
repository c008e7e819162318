"""The domain's nouns: source rows, contact fields, problems and row states.

Every other module imports from here; this module imports nothing of ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One data row of a spreadsheet, every cell as text.

    ``row`` is the row number a person sees in the spreadsheet (header row 1,
    first data row 2; a blank row keeps its number).
    """

    source: str
    sheet: str
    row: int
    cells: tuple[str, ...]


class Field(StrEnum):
    """Contact fields a column can be mapped to (API names where one exists)."""

    PHONE = "fullPhoneNumber"
    FIRST_NAME = "firstName"
    LAST_NAME = "lastName"
    FULL_NAME = "fullName"  # one column split into first and last name
    EMAIL = "email"
    LANGUAGE = "language"
    GROUPS = "groups"
    ORGANIZATION = "organizationId"
    CONTACT_ID = "id"


class Problem(StrEnum):
    """Stable codes for what is wrong with a row (shown in reports and the README)."""

    PHONE_MISSING = "phone_missing"
    PHONE_NOT_A_NUMBER = "phone_not_a_number"
    PHONE_SCIENTIFIC = "phone_scientific_notation"
    PHONE_SEVERAL = "phone_several_numbers"
    PHONE_NO_COUNTRY = "phone_no_country"
    PHONE_TOO_SHORT = "phone_too_short"
    PHONE_TOO_LONG = "phone_too_long"
    PHONE_INVALID = "phone_invalid"
    PHONE_NOT_MOBILE = "phone_not_mobile"
    CONTACT_ID_INVALID = "contact_id_invalid"
    GROUP_INVALID = "group_invalid"
    ORGANIZATION_INVALID = "organization_invalid"
    EMAIL_INVALID = "email_invalid"
    CELL_TOO_LONG = "cell_too_long"
    CELL_FORMULA_ERROR = "cell_formula_error"  # #N/A, #DIV/0!...: the formula failed


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a value or row cannot be sent: a stable code and a fix-it message."""

    code: Problem
    message: str


@dataclass(frozen=True, slots=True)
class Contact:
    """A validated row, ready to become one element of a Subscription API payload.

    ``phone`` is international digits without ``+`` (``639171234567``);
    ``contact_id`` is set when the row names an existing engageSPARK contact.
    """

    phone: str | None = None
    contact_id: int | None = None
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    language: str = ""
    groups: tuple[int, ...] = ()
    organization_id: int | None = None
    custom_fields: dict[str, str] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        """What makes two rows the same person: the contact id, else the number."""
        return f"id:{self.contact_id}" if self.contact_id is not None else str(self.phone)

    def payload(self) -> dict[str, Any]:
        """The contact as the API takes it, empty fields left out.

        An existing contact is ``{"id": ...}``; a new one carries its fields.
        """
        if self.contact_id is not None:
            return {"id": self.contact_id}
        body: dict[str, Any] = {"fullPhoneNumber": self.phone}
        if self.first_name:
            body["firstName"] = self.first_name
        if self.last_name:
            body["lastName"] = self.last_name
        if self.email:
            body["email"] = self.email
        if self.language:
            body["language"] = self.language
        if self.groups:
            body["groups"] = list(self.groups)
        if self.organization_id is not None:
            body["organizationId"] = self.organization_id
        if self.custom_fields:
            body["customFields"] = dict(self.custom_fields)
        return body


# What a cell whose formula failed shows, as read from a workbook or an exported CSV.
EXCEL_ERRORS = frozenset(
    {"#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!", "#GETTING_DATA"}
    | {"#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!"}
)


class RowStatus(StrEnum):
    """Where a row stands. Legal transitions live in :mod:`bulkimport.ledger.states`."""

    INVALID = "invalid"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    PENDING = "pending"
    SENDING = "sending"
    SUBSCRIBED = "subscribed"
    FAILED = "failed"
    UNKNOWN = "unknown"
    DISCARDED = "discarded"  # left out on a person's explicit request (`bulkimport discard`)


def mask_phone(phone: str) -> str:
    """Return a phone number fit for logs: ``639171234567`` becomes ``63917*****67``."""
    digits = phone.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:5] + "*" * (len(digits) - 7) + digits[-2:]


def is_existing_contact(payload: Mapping[str, Any]) -> bool:
    """Return whether a payload names an existing contact: it carries only ``id``.

    :meth:`Contact.payload` writes such payloads; the client, the batch planner
    and the answer matching all ask this one question.
    """
    return set(payload) == {"id"}
