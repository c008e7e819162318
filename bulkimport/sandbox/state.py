"""What the sandbox holds: its contacts and the subscriptions to each engagement.

A :class:`Directory` keeps both behind one lock. It may start with an
account's existing contacts (:func:`existing_contacts`); new contacts arrive as
:class:`Draft` objects the API has already checked and are numbered from
:data:`FIRST_CONTACT_ID`, far above the ids of real accounts, and above every
existing contact. Stored contacts are never changed afterwards.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import phonenumbers

from bulkimport.errors import InputError

# Real accounts number their contacts in the tens of millions (the sample export starts at
# 17620219): the sandbox's own contacts start far above, so that they never take the id
# of a contact in an export someone rehearses.
FIRST_CONTACT_ID = 90_000_001

_CARRIER_ID = 952
_MANILA = timezone(timedelta(hours=8))  # engageSPARK's home; matches the documented createdDate


@dataclass(frozen=True)
class Draft:
    """A new contact from a request body, checked and ready to be created."""

    phone: str
    dialing_code: str
    national_number: str
    first_name: str
    last_name: str
    email: str
    language: str
    groups: tuple[int, ...]
    custom_fields: Mapping[str, Any]

    def contact(self, contact_id: int, organization_id: int, created: str) -> dict[str, Any]:
        """Return the contact object the API shows for this draft."""
        return {
            "id": contact_id,
            "organizationId": organization_id,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "fullPhoneNumber": self.phone,
            "phoneNumber": self.national_number,
            "dialingCode": self.dialing_code,
            "carrierId": _CARRIER_ID,
            "contactType": "NORMAL",
            "language": self.language,
            "email": self.email,
            "groups": list(self.groups),
            "customFields": dict(self.custom_fields),
            "createdDate": created,
            "deleted": "",
        }


def split_phone(phone: str) -> tuple[str, str]:
    """Return the dialing code and national part of international digits.

    Country codes are prefix-free, so the first of 1 to 3 leading digits that
    phonenumbers knows as a code is the code. For valid numbers this equals a
    full parse, which costs 50 times more and would slow benchmarks.
    """
    for length in (1, 2, 3):
        if int(phone[:length]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return phone[:length], phone[length:]
    return "", phone


def existing_contacts(
    items: Iterable[Mapping[str, Any]], organization_id: int
) -> list[dict[str, Any]]:
    """Return full contact objects for an account's existing contacts, oldest (lowest id) first.

    Each item needs an integer ``id`` and a ``fullPhoneNumber``; the other fields of
    a contact are optional. Raises :class:`InputError` for an item without them
    and for an id given twice.
    """
    created = datetime.now(_MANILA).isoformat(timespec="seconds")
    contacts = sorted(
        (_existing_contact(item, organization_id, created) for item in items),
        key=lambda contact: int(contact["id"]),
    )
    for before, after in itertools.pairwise(contacts):
        if before["id"] == after["id"]:
            raise InputError(f"The existing contacts name the id {after['id']} twice.")
    return contacts


def _existing_contact(
    item: Mapping[str, Any], organization_id: int, created: str
) -> dict[str, Any]:
    """Return the contact object of one existing contact."""
    contact_id, phone = item.get("id"), item.get("fullPhoneNumber")
    if not isinstance(contact_id, int) or isinstance(contact_id, bool):
        raise InputError(f"An existing contact needs an integer id, not {contact_id!r}.")
    if not (isinstance(phone, str) and phone.isdigit() and phone.isascii()):
        raise InputError(f"The existing contact {contact_id} needs a fullPhoneNumber of digits.")
    dialing_code, national_number = split_phone(phone)
    draft = Draft(
        phone=phone,
        dialing_code=dialing_code,
        national_number=national_number,
        first_name=str(item.get("firstName") or ""),
        last_name=str(item.get("lastName") or ""),
        email=str(item.get("email") or ""),
        language=str(item.get("language") or ""),
        groups=tuple(int(group) for group in item.get("groups") or ()),
        custom_fields=dict(item.get("customFields") or {}),
    )
    return draft.contact(contact_id, organization_id, str(item.get("createdDate") or created))


class Directory:
    """The sandbox's contacts and subscriptions, behind one lock.

    ``existing`` are full contact objects, lowest id first (see
    :func:`existing_contacts`); new contacts get ids above all of them.
    """

    def __init__(self, engagements: Iterable[int], existing: Iterable[dict[str, Any]] = ()) -> None:
        self._lock = threading.Lock()
        self._contacts: dict[int, dict[str, Any]] = {}
        self._ids_by_phone: dict[str, list[int]] = {}
        self._subscriptions: dict[int, list[int]] = {engagement: [] for engagement in engagements}
        self._requests = 0
        self._next_id = FIRST_CONTACT_ID
        for contact in existing:
            self._add(contact)
        self._loaded = len(self._contacts)

    def count_request(self) -> None:
        """Count one subscription POST."""
        with self._lock:
            self._requests += 1

    def subscribe_new(
        self, engagement: int, drafts: Sequence[Draft], organization_id: int, reuse: bool
    ) -> list[dict[str, Any]]:
        """Create (or with ``reuse``, find the newest) contact per draft and subscribe each."""
        created = datetime.now(_MANILA).isoformat(timespec="seconds")
        with self._lock:
            contacts = []
            for draft in drafts:
                existing = self._ids_by_phone.get(draft.phone) if reuse else None
                if existing:
                    contact = self._contacts[existing[-1]]
                else:
                    contact = draft.contact(self._next_id, organization_id, created)
                    self._add(contact)
                self._subscriptions[engagement].append(contact["id"])
                contacts.append(contact)
        # Stored contacts are never changed after creation, so callers may read them unlocked.
        return contacts

    def _add(self, contact: dict[str, Any]) -> None:
        self._contacts[contact["id"]] = contact
        self._ids_by_phone.setdefault(contact["fullPhoneNumber"], []).append(contact["id"])
        self._next_id = max(self._next_id, contact["id"] + 1)

    def first_unknown(self, contact_ids: Sequence[int]) -> int | None:
        """Return the index of the first id that names no contact, or None."""
        with self._lock:
            return next((i for i, cid in enumerate(contact_ids) if cid not in self._contacts), None)

    def subscribe_existing(
        self, engagement: int, contact_ids: Sequence[int]
    ) -> list[dict[str, Any]]:
        """Subscribe contacts by id; every id must exist (see :meth:`first_unknown`)."""
        with self._lock:
            self._subscriptions[engagement].extend(contact_ids)
            return [self._contacts[cid] for cid in contact_ids]

    def contacts_for(self, phone: str) -> list[dict[str, Any]]:
        """Return copies of the contacts with this number, oldest first."""
        with self._lock:
            ids = list(self._ids_by_phone.get(phone, ()))
            return [copy.deepcopy(self._contacts[cid]) for cid in ids]

    def contact_count(self) -> int:
        """Return how many contacts exist."""
        with self._lock:
            return len(self._contacts)

    def subscriptions(self, engagement: int) -> list[int]:
        """Return the contact id of each subscription to the engagement, in order."""
        with self._lock:
            return list(self._subscriptions.get(engagement, ()))

    def request_count(self) -> int:
        """Return how many subscription POSTs arrived."""
        with self._lock:
            return self._requests

    def summary(self) -> dict[str, Any]:
        """Return counts of requests, contacts per number and subscriptions per engagement."""
        with self._lock:
            phone_of = {cid: c["fullPhoneNumber"] for cid, c in self._contacts.items()}
            per_number = {phone: len(ids) for phone, ids in self._ids_by_phone.items()}
            subscriptions = {
                str(engagement): _subscription_summary([phone_of[cid] for cid in ids])
                for engagement, ids in self._subscriptions.items()
            }
            return {
                "requests": self._requests,
                "contacts": len(self._contacts),
                "contactsLoaded": self._loaded,
                "contactsPerNumber": per_number,
                "subscriptions": subscriptions,
            }


def _subscription_summary(phones: Sequence[str]) -> dict[str, int]:
    """Return how many subscriptions, numbers and numbers messaged more than once."""
    per_number = Counter(phones)
    return {
        "total": len(phones),
        "numbers": len(per_number),
        "numbersMessagedMoreThanOnce": sum(1 for n in per_number.values() if n > 1),
    }
