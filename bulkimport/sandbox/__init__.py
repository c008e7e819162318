"""A local engageSPARK stand-in: the Subscription API on loopback, with faults on demand.

``make demo``, rehearsals ("try your import against the sandbox first"), tests
and benchmarks talk to it over a real socket. It answers like the documented
API (``/api/v1/engagements/{id}/contacts/`` and ``/api/v1/customfields``) and,
when asked, like a bad day: 429 and 503 before processing, 500, connection
resets and slow answers after processing, and results in shuffled order.
``GET /_sandbox/state`` shows what it holds; any other path gets a web
server's HTML 404, as a wrong API URL would.

Faults (``--faults "NAME=VALUE,..."``; rates from 0 to 1, per subscription request):

- ``429``, ``503``: refuse before processing (429 always with ``Retry-After``,
  503 sometimes); ``retry_after`` is the seconds they ask for (default 1).
- ``500``: a plain-text 500 after processing.
- ``reset``: drop the connection with a TCP reset after processing.
- ``slow``: wait ``slow_seconds`` (default 2) after processing, then answer.
- ``nodata``: after processing, answer a 2xx without the documented
  ``{"data": [...]}``: a bare list of the contacts (201), an HTML page (200)
  or no body at all (204), as a gateway in between might.
- ``trickle``: after processing, write the answer one byte every
  ``trickle_ms`` milliseconds (default 1000), headers and body alike.
- ``shuffle``: return the contacts of a 201 in another order (combines with
  any fault that answers them).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import random
import re
import secrets
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from enum import Enum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any, TypeGuard
from urllib.parse import parse_qs, urlsplit

import phonenumbers

from bulkimport.contacts import mask_phone
from bulkimport.errors import InputError

logger = logging.getLogger(__name__)

FIRST_CONTACT_ID = 17620219
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105 - a public stand-in key, not a secret
DEFAULT_CUSTOM_FIELDS: Mapping[int, str] = MappingProxyType({1: "Position", 2: "Branch"})

_CARRIER_ID = 952
_MANILA = timezone(timedelta(hours=8))  # engageSPARK's home; matches the documented createdDate
_MAX_BODY_BYTES = 16 * 1024 * 1024
_VALID_PHONE = re.compile(r"[1-9][0-9]{7,14}")
_REJECTED_PREFIX = "999"  # lets tests build a row that passes local checks but not the server's
_TEXT_FIELDS = ("firstName", "lastName", "email", "language")

_SUBSCRIPTION_PATH = re.compile(r"/api/v1/engagements/([0-9]+)/contacts/?")
_CUSTOM_FIELDS_PATH = re.compile(r"/api/v1/customfields/?")
_STATE_PATH = re.compile(r"/_sandbox/state/?")


# --- faults -----------------------------------------------------------------------------

_FAULT_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "429": "rate_429",
        "503": "rate_503",
        "500": "rate_500",
        "reset": "rate_reset",
        "slow": "rate_slow",
        "shuffle": "rate_shuffle",
        "slow_seconds": "slow_seconds",
        "retry_after": "retry_after",
        "nodata": "rate_nodata",
        "trickle": "rate_trickle",
        "trickle_ms": "trickle_ms",
    }
)
# A request suffers at most one of these; shuffling combines with any answer of contacts.
_EXCLUSIVE_RATES = (
    "rate_429",
    "rate_503",
    "rate_500",
    "rate_reset",
    "rate_slow",
    "rate_nodata",
    "rate_trickle",
)


@dataclass(frozen=True)
class Faults:
    """How often the sandbox misbehaves, per subscription request (rates from 0 to 1)."""

    rate_429: float = 0.0
    rate_503: float = 0.0
    rate_500: float = 0.0
    rate_reset: float = 0.0
    rate_slow: float = 0.0
    slow_seconds: float = 2.0
    rate_shuffle: float = 0.0
    retry_after: float = 1.0
    rate_nodata: float = 0.0
    rate_trickle: float = 0.0
    trickle_ms: float = 1000.0

    def __post_init__(self) -> None:
        for name in (f.name for f in fields(self)):
            value = getattr(self, name)
            _check_fault_value(name, value, f"{name}={value}")
        total = sum(getattr(self, name) for name in _EXCLUSIVE_RATES)
        if total > 1 + 1e-9:
            raise InputError(
                "The fault rates for 429, 503, 500, reset, slow, nodata and trickle add up "
                f"to {total:g}; lower them so that together they are at most 1."
            )

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """Return the faults a spec like ``"429=0.1,reset=0.05,retry_after=0"`` asks for."""
        values: dict[str, float] = {}
        for part in (piece.strip() for piece in spec.split(",")):
            if not part:
                continue
            name, value = _parse_fault(part)
            if name in values:
                raise InputError(f'Fault "{part}" is given twice; keep only one of them.')
            values[name] = value
        return cls(**values)

    def spec(self) -> str:
        """Return these faults as a spec :meth:`parse` reads back ("" for none)."""
        default = Faults()
        parts = [
            f"{short}={getattr(self, name):g}"
            for short, name in _FAULT_NAMES.items()
            if getattr(self, name) != getattr(default, name)
        ]
        return ",".join(parts)


def _parse_fault(part: str) -> tuple[str, float]:
    """Return the field name and value of one ``NAME=VALUE`` part of a fault spec."""
    short, sep, raw = part.partition("=")
    name = _FAULT_NAMES.get(short.strip(), short.strip())
    if not sep or name not in _FAULT_NAMES.values():
        raise InputError(
            f'Fault "{part}" is not understood; write NAME=VALUE with NAME one of '
            f"{', '.join(_FAULT_NAMES)}."
        )
    try:
        value = float(raw)
    except ValueError as err:
        raise InputError(f'Fault "{part}" needs a number after "="; write e.g. "429=0.1".') from err
    _check_fault_value(name, value, part)
    return name, value


def _check_fault_value(name: str, value: float, part: str) -> None:
    """Refuse a rate outside 0..1 or a negative or infinite duration."""
    if name.startswith("rate_"):
        if not 0 <= value <= 1:
            raise InputError(f'Fault "{part}" is a rate; give a number from 0 to 1.')
    elif not (math.isfinite(value) and value >= 0):
        unit = "milliseconds" if name.endswith("_ms") else "seconds"
        raise InputError(f'Fault "{part}" is in {unit}; give a number of 0 or more.')


NO_FAULTS = Faults()


class _Fault(Enum):
    """What goes wrong with one subscription request."""

    NONE = "none"
    TOO_MANY_REQUESTS = "429"
    UNAVAILABLE = "503"
    SERVER_ERROR = "500"
    RESET = "reset"
    SLOW = "slow"
    NO_DATA = "nodata"
    TRICKLE = "trickle"


class _NoDataShape(Enum):
    """How a ``nodata`` answer leaves out ``{"data": [...]}``."""

    BARE_LIST = "201 with a bare list"
    HTML = "200 with an HTML page"
    EMPTY = "204 without a body"


@dataclass(frozen=True)
class _FaultDraw:
    """The dice thrown for one request, with the settings in force when thrown."""

    fault: _Fault
    retry_after: float
    retry_after_as_date: bool
    send_retry_after: bool
    slow_seconds: float
    shuffle_seed: int | None
    no_data_shape: _NoDataShape
    trickle_seconds: float


class _FaultDice:
    """Draws faults from one seeded generator, so a run is repeatable for a given seed."""

    def __init__(self, faults: Faults, seed: int) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._faults = faults

    @property
    def faults(self) -> Faults:
        """Return the faults in force."""
        return self._faults

    def set(self, faults: Faults) -> None:
        """Use other faults from the next request on."""
        self._faults = faults

    def draw(self) -> _FaultDraw:
        """Return what goes wrong with the next request."""
        with self._lock:
            faults = self._faults
            # Always four numbers per request, so the sequence does not depend on the rates.
            pick, form, shuffle, shuffle_seed = (
                self._rng.random(),
                self._rng.random(),
                self._rng.random(),
                self._rng.getrandbits(32),
            )
        return _FaultDraw(
            fault=_pick_fault(faults, pick),
            retry_after=faults.retry_after,
            retry_after_as_date=form < 0.5,
            send_retry_after=form < 0.5 or form >= 0.75,
            slow_seconds=faults.slow_seconds,
            shuffle_seed=shuffle_seed if shuffle < faults.rate_shuffle else None,
            # The same number as the Retry-After form: no fault uses both.
            no_data_shape=_NO_DATA_SHAPES[min(int(form * 3), 2)],
            trickle_seconds=faults.trickle_ms / 1000,
        )


_NO_DATA_SHAPES = (_NoDataShape.BARE_LIST, _NoDataShape.HTML, _NoDataShape.EMPTY)


def _pick_fault(faults: Faults, pick: float) -> _Fault:
    """Return the fault whose slice of 0..1 holds ``pick``."""
    threshold = 0.0
    for fault, rate in (
        (_Fault.TOO_MANY_REQUESTS, faults.rate_429),
        (_Fault.UNAVAILABLE, faults.rate_503),
        (_Fault.SERVER_ERROR, faults.rate_500),
        (_Fault.RESET, faults.rate_reset),
        (_Fault.SLOW, faults.rate_slow),
        (_Fault.NO_DATA, faults.rate_nodata),
        (_Fault.TRICKLE, faults.rate_trickle),
    ):
        threshold += rate
        if pick < threshold:
            return fault
    return _Fault.NONE


# --- answers and contacts ---------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    """An HTTP answer, or a connection reset when ``reset`` is set.

    With ``trickle_seconds`` the answer is written one byte at a time, that many
    seconds apart.
    """

    status: HTTPStatus
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    reset: bool = False
    trickle_seconds: float = 0.0


def _json_answer(
    status: HTTPStatus, payload: object, headers: tuple[tuple[str, str], ...] = ()
) -> _Answer:
    """Return an answer with ``payload`` as its JSON body."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return _Answer(status, body, "application/json", headers)


class _Refusal(Exception):
    """The request cannot be processed; ``answer`` says why."""

    def __init__(self, answer: _Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


@dataclass(frozen=True)
class _Draft:
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


def _split_phone(phone: str) -> tuple[str, str]:
    """Return the dialing code and national part of international digits.

    Country codes are prefix-free, so the first of 1 to 3 leading digits that
    phonenumbers knows as a code is the code. For valid numbers this equals a
    full parse, which costs 50 times more and would slow benchmarks.
    """
    for length in (1, 2, 3):
        if int(phone[:length]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return phone[:length], phone[length:]
    return "", phone


class _Directory:
    """The sandbox's contacts and subscriptions, behind one lock."""

    def __init__(self, engagements: Iterable[int]) -> None:
        self._lock = threading.Lock()
        self._contacts: dict[int, dict[str, Any]] = {}
        self._ids_by_phone: dict[str, list[int]] = {}
        self._subscriptions: dict[int, list[int]] = {engagement: [] for engagement in engagements}
        self._requests = 0
        self._next_id = FIRST_CONTACT_ID

    def count_request(self) -> None:
        """Count one subscription POST."""
        with self._lock:
            self._requests += 1

    def subscribe_new(
        self, engagement: int, drafts: Sequence[_Draft], organization_id: int, reuse: bool
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
        self._next_id += 1

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


# --- the API ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    """What a sandbox is configured with and never changes while it runs."""

    token: str
    engagements: frozenset[int]
    organization_id: int
    custom_fields: Mapping[int, str]
    report_bad_index: bool
    latency_seconds: float


@dataclass(frozen=True)
class _ExistingContacts:
    """A ``{"contacts": [{"id": ...}]}`` body."""

    contact_ids: tuple[int, ...]


class _Api:
    """Answers one request as engageSPARK would, faults included."""

    def __init__(
        self,
        settings: _Settings,
        directory: _Directory,
        dice: _FaultDice,
        sleep: Callable[[float], None],
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.dice = dice
        self.funds_ok = True
        self._sleep = sleep

    def answer(self, method: str, target: str, authorization: str, body: bytes) -> _Answer:
        """Return the answer to one request."""
        url = urlsplit(target)
        if _STATE_PATH.fullmatch(url.path):
            return self._state(method)
        if match := _SUBSCRIPTION_PATH.fullmatch(url.path):
            reuse = parse_qs(url.query).get("try_using_existing") == ["newest"]
            return self._subscribe(method, int(match[1]), reuse, authorization, body)
        if _CUSTOM_FIELDS_PATH.fullmatch(url.path):
            return self._custom_fields(method, authorization)
        # What a web server in front of the API answers for a path it does not route.
        return _Answer(HTTPStatus.NOT_FOUND, _NOT_FOUND_PAGE, "text/html; charset=utf-8")

    def state(self) -> dict[str, Any]:
        """Return a JSON-able summary of the sandbox's settings and contents."""
        return {
            "organizationId": self.settings.organization_id,
            "engagements": sorted(self.settings.engagements),
            "funds": self.funds_ok,
            "faults": self.dice.faults.spec(),
            **self.directory.summary(),
        }

    def _state(self, method: str) -> _Answer:
        if method != "GET":
            return _method_not_allowed("GET")
        return _json_answer(HTTPStatus.OK, self.state())

    def _custom_fields(self, method: str, authorization: str) -> _Answer:
        if method != "GET":
            return _method_not_allowed("GET")
        self._wait(self.settings.latency_seconds)
        if not self._authorized(authorization):
            return _json_answer(HTTPStatus.UNAUTHORIZED, {"error": "Invalid Token"})
        org = self.settings.organization_id
        data = [
            {"organizationId": org, "fieldType": "text", "id": field_id, "name": name}
            for field_id, name in sorted(self.settings.custom_fields.items())
        ]
        return _json_answer(HTTPStatus.OK, {"data": data})

    def _subscribe(
        self, method: str, engagement: int, reuse: bool, authorization: str, body: bytes
    ) -> _Answer:
        if method != "POST":
            return _method_not_allowed("POST")
        self.directory.count_request()
        self._wait(self.settings.latency_seconds)
        if not self._authorized(authorization):
            return _json_answer(HTTPStatus.UNAUTHORIZED, {"error": "Invalid Token"})
        if engagement not in self.settings.engagements:
            return _json_answer(HTTPStatus.NOT_FOUND, {"error": "Not found"})
        draw = self.dice.draw()
        if draw.fault in (_Fault.TOO_MANY_REQUESTS, _Fault.UNAVAILABLE):
            logger.debug("engagement %s: answering %s (fault)", engagement, draw.fault.value)
            return _refuse_for_now(draw)
        if not self.funds_ok:
            return _json_answer(HTTPStatus.PAYMENT_REQUIRED, {"error": "insufficient funds"})
        try:
            contacts = self._process(engagement, reuse, body)
        except _Refusal as refusal:
            return refusal.answer
        logger.debug(
            "engagement %s: subscribed %d contacts (reuse %s, fault %s)",
            engagement,
            len(contacts),
            "on" if reuse else "off",
            draw.fault.value,
        )
        return self._after_processing(draw, contacts)

    def _after_processing(self, draw: _FaultDraw, contacts: list[dict[str, Any]]) -> _Answer:
        if draw.fault is _Fault.SERVER_ERROR:
            return _Answer(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                b"Internal Server Error\n",
                "text/plain; charset=utf-8",
            )
        if draw.fault is _Fault.RESET:
            return _Answer(HTTPStatus.INTERNAL_SERVER_ERROR, reset=True)
        if draw.fault is _Fault.SLOW:
            self._wait(draw.slow_seconds)
        if draw.shuffle_seed is not None:
            random.Random(draw.shuffle_seed).shuffle(contacts)
        if draw.fault is _Fault.NO_DATA:
            return _no_data_answer(draw.no_data_shape, contacts)
        answer = _json_answer(HTTPStatus.CREATED, {"data": contacts})
        if draw.fault is _Fault.TRICKLE:
            return dataclasses.replace(answer, trickle_seconds=draw.trickle_seconds)
        return answer

    def _process(self, engagement: int, reuse: bool, body: bytes) -> list[dict[str, Any]]:
        """Subscribe what the body names, or raise :class:`_Refusal` having changed nothing."""
        batch = _read_batch(body)
        if isinstance(batch, _ExistingContacts):
            # Contacts are never deleted, so an id found here still exists a moment later.
            unknown = self.directory.first_unknown(batch.contact_ids)
            if unknown is not None:
                contact_id = batch.contact_ids[unknown]
                raise _Refusal(
                    self._row_error(
                        unknown, "Contact not found", "contact_not_found", id=contact_id
                    )
                )
            return self.directory.subscribe_existing(engagement, batch.contact_ids)
        self._check_organizations(batch)
        drafts = [self._draft(index, item) for index, item in enumerate(batch)]
        return self.directory.subscribe_new(
            engagement, drafts, self.settings.organization_id, reuse
        )

    def _check_organizations(self, items: Sequence[Any]) -> None:
        for item in items:
            org = item.get("organizationId") if isinstance(item, dict) else None
            if org is not None and org != self.settings.organization_id:
                message = f"You do not have permission to act in organization {org}"
                raise _Refusal(_json_answer(HTTPStatus.FORBIDDEN, {"error": message}))

    def _draft(self, index: int, item: Any) -> _Draft:
        """Return the checked new contact at ``index`` of a body, or raise :class:`_Refusal`."""
        if not isinstance(item, dict):
            raise _Refusal(self._row_error(index, "A contact must be an object", "invalid_body"))
        phone = item.get("fullPhoneNumber")
        if not _acceptable_phone(phone):
            logger.debug("row %d refused: invalid phone number %s", index, mask_phone(str(phone)))
            raise _Refusal(
                self._row_error(
                    index, "Invalid phone number", "invalid_phone_number", fullPhoneNumber=phone
                )
            )
        bad_field = _first_bad_field(item)
        if bad_field is not None:
            raise _Refusal(
                self._row_error(index, f"Invalid {bad_field}", "invalid_field", field=bad_field)
            )
        known = {str(field_id) for field_id in self.settings.custom_fields}
        dialing_code, national_number = _split_phone(phone)
        return _Draft(
            phone=phone,
            dialing_code=dialing_code,
            national_number=national_number,
            first_name=item.get("firstName") or "",
            last_name=item.get("lastName") or "",
            email=item.get("email") or "",
            language=item.get("language") or "",
            groups=tuple(item.get("groups") or ()),
            custom_fields={
                key: value
                for key, value in (item.get("customFields") or {}).items()
                if key in known
            },
        )

    def _row_error(self, index: int, message: str, code: str, **context: Any) -> _Answer:
        """Return a 400 naming one offending contact (its index only if so configured)."""
        where = {"index": index} if self.settings.report_bad_index else {}
        payload = {"error": message, "errorCode": code, "context": where | context}
        return _json_answer(HTTPStatus.BAD_REQUEST, payload)

    def _authorized(self, authorization: str) -> bool:
        scheme, _, key = authorization.partition(" ")
        return scheme == "Token" and secrets.compare_digest(
            key.strip().encode(), self.settings.token.encode()
        )

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)


def _read_batch(body: bytes) -> list[Any] | _ExistingContacts:
    """Return the contacts a body names, or raise :class:`_Refusal` for a body of no known shape."""
    try:
        data = json.loads(body)
    except ValueError as err:
        raise _Refusal(_body_error("The request body is not valid JSON", "invalid_json")) from err
    if isinstance(data, dict) and "contacts" in data:
        return _existing_contacts(data["contacts"])
    if isinstance(data, dict) and "fullPhoneNumber" in data:
        return [data]
    if isinstance(data, list) and data:
        return data
    raise _Refusal(
        _body_error(
            'Send one contact, a list of contacts or {"contacts": [{"id": ...}]}',
            "invalid_body",
        )
    )


def _existing_contacts(items: Any) -> _ExistingContacts:
    """Return the ids of a ``contacts`` list, or raise :class:`_Refusal`."""
    if not isinstance(items, list) or not items:
        raise _Refusal(_body_error("contacts must be a non-empty list", "invalid_body"))
    ids: list[int] = []
    for item in items:
        contact_id = item.get("id") if isinstance(item, dict) else None
        if not _is_int(contact_id):
            raise _Refusal(_body_error("Each contact needs an integer id", "invalid_contact_id"))
        ids.append(contact_id)
    return _ExistingContacts(tuple(ids))


def _body_error(message: str, code: str) -> _Answer:
    return _json_answer(HTTPStatus.BAD_REQUEST, {"error": message, "errorCode": code})


def _first_bad_field(item: dict[str, Any]) -> str | None:
    """Return the first field of a new contact that has the wrong type, or None."""
    for name in _TEXT_FIELDS:
        if not isinstance(item.get(name) or "", str):
            return name
    groups = item.get("groups") or []
    if not (isinstance(groups, list) and all(_is_int(group) for group in groups)):
        return "groups"
    if not isinstance(item.get("customFields") or {}, dict):
        return "customFields"
    return None


def _acceptable_phone(phone: object) -> TypeGuard[str]:
    """Return whether the server takes this fullPhoneNumber."""
    return (
        isinstance(phone, str)
        and _VALID_PHONE.fullmatch(phone) is not None
        and not phone.startswith(_REJECTED_PREFIX)
    )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _refuse_for_now(draw: _FaultDraw) -> _Answer:
    """Return a 429 (always with Retry-After) or 503 (sometimes with it)."""
    if draw.fault is _Fault.TOO_MANY_REQUESTS:
        status, message = HTTPStatus.TOO_MANY_REQUESTS, "Request was throttled"
    else:
        status, message = HTTPStatus.SERVICE_UNAVAILABLE, "Service temporarily unavailable"
    headers: tuple[tuple[str, str], ...] = ()
    if status is HTTPStatus.TOO_MANY_REQUESTS or draw.send_retry_after:
        headers = (("Retry-After", _retry_after_value(draw)),)
    return _json_answer(status, {"error": message}, headers)


def _retry_after_value(draw: _FaultDraw) -> str:
    """Return a Retry-After in the seconds form or the HTTP-date form (RFC 9110)."""
    if draw.retry_after_as_date:
        return formatdate(math.ceil(time.time() + draw.retry_after), usegmt=True)
    return str(math.ceil(draw.retry_after))


_NOT_FOUND_PAGE = (
    b"<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n"
)
_ACCEPTED_PAGE = b"<html><body><p>Your request has been received.</p></body></html>\n"


def _no_data_answer(shape: _NoDataShape, contacts: list[dict[str, Any]]) -> _Answer:
    """Return a 2xx that lacks ``{"data": [...]}`` in the given shape."""
    if shape is _NoDataShape.BARE_LIST:
        return _json_answer(HTTPStatus.CREATED, contacts)
    if shape is _NoDataShape.HTML:
        return _Answer(HTTPStatus.OK, _ACCEPTED_PAGE, "text/html; charset=utf-8")
    return _Answer(HTTPStatus.NO_CONTENT, b"", "application/json")


def _method_not_allowed(allowed: str) -> _Answer:
    return _json_answer(
        HTTPStatus.METHOD_NOT_ALLOWED, {"error": "Method not allowed"}, (("Allow", allowed),)
    )


# --- HTTP -------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    """A threaded HTTP server that hands every request to one :class:`_Api`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: _Api) -> None:
        self.api = api
        self.closing = threading.Event()  # ends trickled answers when the sandbox stops
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Reads one HTTP/1.1 request at a time off a keep-alive connection."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes
    timeout = 120  # an idle keep-alive connection does not hold a thread forever
    server: _Server

    def do_GET(self) -> None:
        self._read_and_respond()

    def do_POST(self) -> None:
        self._read_and_respond()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def _read_and_respond(self) -> None:
        body = self._read_body()
        if body is not None:
            self._respond(body)

    def _read_body(self) -> bytes | None:
        """Return the request body, or answer and return None when it cannot be read."""
        if self.headers.get("Transfer-Encoding"):
            problem = HTTPStatus.LENGTH_REQUIRED, "Send the body with a Content-Length"
        else:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if 0 <= length <= _MAX_BODY_BYTES:
                return self.rfile.read(length)
            problem = HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Invalid or too large Content-Length"
        # The unread body would be taken for the next request, so this connection ends here.
        self.close_connection = True
        self._send(_json_answer(problem[0], {"error": problem[1]}))
        return None

    def _respond(self, body: bytes) -> None:
        try:
            answer = self.server.api.answer(
                self.command, self.path, self.headers.get("Authorization", ""), body
            )
        except Exception:
            logger.exception("the sandbox failed on %s %s", self.command, urlsplit(self.path).path)
            answer = _json_answer(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "Sandbox error"})
        if answer.reset:
            self._reset_connection()
        elif answer.trickle_seconds > 0:
            self._trickle(answer)
        else:
            self._send(answer)

    def _send(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        if answer.status is not HTTPStatus.NO_CONTENT:  # RFC 9110: a 204 has no length
            self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer.body)

    def _trickle(self, answer: _Answer) -> None:
        """Write the whole answer, status line first, one byte at a time."""
        self.log_request(answer.status.value)
        head = [f"HTTP/1.1 {answer.status.value} {answer.status.phrase}"]
        head += [f"Content-Type: {answer.content_type}", f"Content-Length: {len(answer.body)}"]
        head += [f"{name}: {value}" for name, value in answer.headers]
        raw = "\r\n".join([*head, "", ""]).encode("latin-1") + answer.body
        # One byte then a pause: the client's read timeout never fires, only its deadline.
        self.close_connection = True
        closing = self.server.closing
        try:
            for offset in range(len(raw)):
                self.connection.sendall(raw[offset : offset + 1])
                if closing.wait(answer.trickle_seconds):
                    return
        except OSError:
            return  # the client gave up on the answer

    def _reset_connection(self) -> None:
        """Drop the connection with a TCP reset and no answer, as a crashed proxy would."""
        linger_zero = struct.pack("ii", 1, 0)  # close() then sends RST instead of FIN
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
        self.close_connection = True
        self.rfile.close()  # the socket closes only when its last file object does
        self.connection.close()


# --- the public face --------------------------------------------------------------------


class Sandbox:
    """A local engageSPARK Subscription API that misbehaves on demand.

    ``with Sandbox(faults=Faults.parse("429=0.1")) as sandbox:`` serves on a free
    port in a daemon thread; ``sandbox.url`` is the API base to import against.
    ``sleep`` is what latency and slow answers wait with.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = SANDBOX_TOKEN,
        engagements: Iterable[int] = (1234,),
        organization_id: int = 853,
        latency_ms: float = 0,
        faults: Faults = NO_FAULTS,
        seed: int = 0,
        custom_fields: Mapping[int, str] = DEFAULT_CUSTOM_FIELDS,
        report_bad_index: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        engagement_ids = frozenset(int(engagement) for engagement in engagements)
        settings = _Settings(
            token=token,
            engagements=engagement_ids,
            organization_id=organization_id,
            custom_fields=dict(custom_fields),
            report_bad_index=report_bad_index,
            latency_seconds=max(latency_ms, 0) / 1000,
        )
        self._address = (host, port)
        self._api = _Api(settings, _Directory(engagement_ids), _FaultDice(faults, seed), sleep)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Return the API base, ``http://127.0.0.1:PORT/api/v1`` (once started)."""
        if self._server is None:
            raise RuntimeError("The sandbox has no address until it is started.")
        return f"http://{self._address[0]}:{self._server.server_port}/api/v1"

    def start(self) -> Sandbox:
        """Serve in a daemon thread and return self."""
        if self._server is not None:
            raise RuntimeError("The sandbox is already running.")
        server = self._listen()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        logger.debug("sandbox serving %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (does nothing if not running)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.closing.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server, self._thread = None, None

    def serve_forever(self) -> None:
        """Serve in the calling thread until Ctrl-C, logging the address once listening."""
        server = self._listen()
        logger.info(
            "engageSPARK sandbox listening at %s (engagements %s, organization %s, faults %s); "
            "press Ctrl-C to stop it",
            self.url,
            ", ".join(str(e) for e in sorted(self._api.settings.engagements)),
            self._api.settings.organization_id,
            self._api.dice.faults.spec() or "none",
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            logger.info("engageSPARK sandbox stopped")
        finally:
            server.server_close()
            self._server = None

    def _listen(self) -> _Server:
        try:
            self._server = _Server(self._address, self._api)
        except OSError as err:
            host, port = self._address
            raise InputError(
                f"The sandbox cannot listen on {host}:{port} ({err.strerror}); "
                "choose another port or stop what is using it."
            ) from err
        return self._server

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def set_faults(self, faults: Faults) -> None:
        """Misbehave as ``faults`` says from the next request on."""
        self._api.dice.set(faults)

    def set_funds(self, ok: bool) -> None:
        """With ``ok`` False, answer every subscription with 402 insufficient funds."""
        self._api.funds_ok = ok

    def contacts_for(self, phone: str) -> list[dict[str, Any]]:
        """Return copies of the contacts with this fullPhoneNumber, oldest first."""
        return self._api.directory.contacts_for(phone)

    def contact_count(self) -> int:
        """Return how many contacts the sandbox holds."""
        return self._api.directory.contact_count()

    def subscriptions(self, engagement_id: int) -> list[int]:
        """Return one contact id per subscription to the engagement (a repeat = sent twice)."""
        return self._api.directory.subscriptions(engagement_id)

    def request_count(self) -> int:
        """Return how many subscription POSTs the sandbox received."""
        return self._api.directory.request_count()

    def state(self) -> dict[str, Any]:
        """Return the JSON-able summary also served at ``GET /_sandbox/state``."""
        return self._api.state()


def serve(
    *,
    host: str,
    port: int,
    token: str,
    engagements: Sequence[int],
    latency_ms: float,
    faults: Faults,
    seed: int,
) -> None:
    """Serve a sandbox in this thread until Ctrl-C; logs one line with its URL."""
    Sandbox(
        host=host,
        port=port,
        token=token,
        engagements=engagements,
        latency_ms=latency_ms,
        faults=faults,
        seed=seed,
    ).serve_forever()
