"""The Subscription API itself: what the sandbox answers to one request.

:class:`Api` routes a request, checks the key, the engagement and the funds,
throws the fault dice, and subscribes what the body names in the
:class:`~bulkimport.sandbox.state.Directory`. It never touches a socket.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bulkimport.contacts import mask_phone
from bulkimport.sandbox.answers import (
    NOT_FOUND_PAGE,
    Answer,
    Refusal,
    json_answer,
    method_not_allowed,
    no_data_answer,
    refuse_for_now,
)
from bulkimport.sandbox.bodies import (
    ExistingContacts,
    acceptable_phone,
    first_bad_field,
    read_batch,
)
from bulkimport.sandbox.faults import Fault, FaultDice, FaultDraw
from bulkimport.sandbox.state import Directory, Draft, split_phone

logger = logging.getLogger(__name__)

_SUBSCRIPTION_PATH = re.compile(r"/api/v1/engagements/([0-9]+)/contacts/?")
_CUSTOM_FIELDS_PATH = re.compile(r"/api/v1/customfields/?")
_STATE_PATH = re.compile(r"/_sandbox/state/?")


@dataclass(frozen=True)
class Settings:
    """What a sandbox is configured with and never changes while it runs."""

    token: str
    engagements: frozenset[int]
    organization_id: int
    custom_fields: Mapping[int, str]
    report_bad_index: bool
    latency_seconds: float


class Api:
    """Answers one request as engageSPARK would, faults included."""

    def __init__(
        self,
        settings: Settings,
        directory: Directory,
        dice: FaultDice,
        sleep: Callable[[float], None],
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.dice = dice
        self.funds_ok = True
        self._sleep = sleep

    def answer(self, method: str, target: str, authorization: str, body: bytes) -> Answer:
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
        return Answer(HTTPStatus.NOT_FOUND, NOT_FOUND_PAGE, "text/html; charset=utf-8")

    def state(self) -> dict[str, Any]:
        """Return a JSON-able summary of the sandbox's settings and contents."""
        return {
            "organizationId": self.settings.organization_id,
            "engagements": sorted(self.settings.engagements),
            "funds": self.funds_ok,
            "faults": self.dice.faults.spec(),
            **self.directory.summary(),
        }

    def _state(self, method: str) -> Answer:
        if method != "GET":
            return method_not_allowed("GET")
        return json_answer(HTTPStatus.OK, self.state())

    def _custom_fields(self, method: str, authorization: str) -> Answer:
        if method != "GET":
            return method_not_allowed("GET")
        self._wait(self.settings.latency_seconds)
        if not self._authorized(authorization):
            return json_answer(HTTPStatus.UNAUTHORIZED, {"error": "Invalid Token"})
        org = self.settings.organization_id
        data = [
            {"organizationId": org, "fieldType": "text", "id": field_id, "name": name}
            for field_id, name in sorted(self.settings.custom_fields.items())
        ]
        return json_answer(HTTPStatus.OK, {"data": data})

    def _subscribe(
        self, method: str, engagement: int, reuse: bool, authorization: str, body: bytes
    ) -> Answer:
        if method != "POST":
            return method_not_allowed("POST")
        self.directory.count_request()
        self._wait(self.settings.latency_seconds)
        if not self._authorized(authorization):
            return json_answer(HTTPStatus.UNAUTHORIZED, {"error": "Invalid Token"})
        if engagement not in self.settings.engagements:
            return json_answer(HTTPStatus.NOT_FOUND, {"error": "Not found"})
        draw = self.dice.draw()
        if draw.fault in (Fault.TOO_MANY_REQUESTS, Fault.UNAVAILABLE):
            logger.debug("engagement %s: answering %s (fault)", engagement, draw.fault.value)
            return refuse_for_now(draw)
        if not self.funds_ok:
            return json_answer(HTTPStatus.PAYMENT_REQUIRED, {"error": "insufficient funds"})
        try:
            contacts = self._process(engagement, reuse, body)
        except Refusal as refusal:
            return refusal.answer
        logger.debug(
            "engagement %s: subscribed %d contacts (reuse %s, fault %s)",
            engagement,
            len(contacts),
            "on" if reuse else "off",
            draw.fault.value,
        )
        return self._after_processing(draw, contacts)

    def _after_processing(self, draw: FaultDraw, contacts: list[dict[str, Any]]) -> Answer:
        if draw.fault is Fault.SERVER_ERROR:
            return Answer(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                b"Internal Server Error\n",
                "text/plain; charset=utf-8",
            )
        if draw.fault is Fault.RESET:
            return Answer(HTTPStatus.INTERNAL_SERVER_ERROR, reset=True)
        if draw.fault is Fault.SLOW:
            self._wait(draw.slow_seconds)
        if draw.shuffle_seed is not None:
            random.Random(draw.shuffle_seed).shuffle(contacts)
        if draw.fault is Fault.NO_DATA:
            return no_data_answer(draw.no_data_shape, contacts)
        answer = json_answer(HTTPStatus.CREATED, {"data": contacts})
        if draw.fault is Fault.TRICKLE:
            return dataclasses.replace(answer, trickle_seconds=draw.trickle_seconds)
        return answer

    def _process(self, engagement: int, reuse: bool, body: bytes) -> list[dict[str, Any]]:
        """Subscribe what the body names, or raise :class:`Refusal` having changed nothing."""
        batch = read_batch(body)
        if isinstance(batch, ExistingContacts):
            # Contacts are never deleted, so an id found here still exists a moment later.
            unknown = self.directory.first_unknown(batch.contact_ids)
            if unknown is not None:
                contact_id = batch.contact_ids[unknown]
                raise Refusal(
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
                raise Refusal(json_answer(HTTPStatus.FORBIDDEN, {"error": message}))

    def _draft(self, index: int, item: Any) -> Draft:
        """Return the checked new contact at ``index`` of a body, or raise :class:`Refusal`."""
        if not isinstance(item, dict):
            raise Refusal(self._row_error(index, "A contact must be an object", "invalid_body"))
        phone = item.get("fullPhoneNumber")
        if not acceptable_phone(phone):
            logger.debug("row %d refused: invalid phone number %s", index, mask_phone(str(phone)))
            raise Refusal(
                self._row_error(
                    index, "Invalid phone number", "invalid_phone_number", fullPhoneNumber=phone
                )
            )
        bad_field = first_bad_field(item)
        if bad_field is not None:
            raise Refusal(
                self._row_error(index, f"Invalid {bad_field}", "invalid_field", field=bad_field)
            )
        known = {str(field_id) for field_id in self.settings.custom_fields}
        dialing_code, national_number = split_phone(phone)
        return Draft(
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

    def _row_error(self, index: int, message: str, code: str, **context: Any) -> Answer:
        """Return a 400 naming one offending contact (its index only if so configured)."""
        where = {"index": index} if self.settings.report_bad_index else {}
        payload = {"error": message, "errorCode": code, "context": where | context}
        return json_answer(HTTPStatus.BAD_REQUEST, payload)

    def _authorized(self, authorization: str) -> bool:
        scheme, _, key = authorization.partition(" ")
        return scheme == "Token" and secrets.compare_digest(
            key.strip().encode(), self.settings.token.encode()
        )

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)
