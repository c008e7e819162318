"""Reading a subscription request's body: which shape it has and what is wrong with it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from bulkimport.sandbox.answers import Refusal, body_error

_VALID_PHONE = re.compile(r"[1-9][0-9]{7,14}")
_REJECTED_PREFIX = "999"  # lets tests build a row that passes local checks but not the server's
_TEXT_FIELDS = ("firstName", "lastName", "email", "language")


@dataclass(frozen=True)
class ExistingContacts:
    """A ``{"contacts": [{"id": ...}]}`` body."""

    contact_ids: tuple[int, ...]


def read_batch(body: bytes) -> list[Any] | ExistingContacts:
    """Return the contacts a body names, or raise :class:`Refusal` for a body of no known shape."""
    try:
        data = json.loads(body)
    except ValueError as err:
        raise Refusal(body_error("The request body is not valid JSON", "invalid_json")) from err
    if isinstance(data, dict) and "contacts" in data:
        return _existing_contacts(data["contacts"])
    if isinstance(data, dict) and "fullPhoneNumber" in data:
        return [data]
    if isinstance(data, list) and data:
        return data
    raise Refusal(
        body_error(
            'Send one contact, a list of contacts or {"contacts": [{"id": ...}]}',
            "invalid_body",
        )
    )


def _existing_contacts(items: Any) -> ExistingContacts:
    """Return the ids of a ``contacts`` list, or raise :class:`Refusal`."""
    if not isinstance(items, list) or not items:
        raise Refusal(body_error("contacts must be a non-empty list", "invalid_body"))
    ids: list[int] = []
    for item in items:
        contact_id = item.get("id") if isinstance(item, dict) else None
        if not is_int(contact_id):
            raise Refusal(body_error("Each contact needs an integer id", "invalid_contact_id"))
        ids.append(contact_id)
    return ExistingContacts(tuple(ids))


def first_bad_field(item: dict[str, Any]) -> str | None:
    """Return the first field of a new contact that has the wrong type, or None."""
    for name in _TEXT_FIELDS:
        if not isinstance(item.get(name) or "", str):
            return name
    groups = item.get("groups") or []
    if not (isinstance(groups, list) and all(is_int(group) for group in groups)):
        return "groups"
    if not isinstance(item.get("customFields") or {}, dict):
        return "customFields"
    return None


def acceptable_phone(phone: object) -> TypeGuard[str]:
    """Return whether the server takes this fullPhoneNumber."""
    return (
        isinstance(phone, str)
        and _VALID_PHONE.fullmatch(phone) is not None
        and not phone.startswith(_REJECTED_PREFIX)
    )


def is_int(value: object) -> TypeGuard[int]:
    """Return whether a JSON value is an integer (true and false are not)."""
    return isinstance(value, int) and not isinstance(value, bool)
