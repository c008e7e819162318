"""The answers the sandbox gives: HTTP status, body and headers, ready to write.

The API decides *what* to answer (:mod:`bulkimport.sandbox.api`); the server
writes it (:mod:`bulkimport.sandbox.server`). In between sits :class:`Answer`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from bulkimport.sandbox.faults import Fault, FaultDraw, NoDataShape


@dataclass(frozen=True)
class Answer:
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


def json_answer(
    status: HTTPStatus, payload: object, headers: tuple[tuple[str, str], ...] = ()
) -> Answer:
    """Return an answer with ``payload`` as its JSON body."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Answer(status, body, "application/json", headers)


class Refusal(Exception):
    """The request cannot be processed; ``answer`` says why."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


def body_error(message: str, code: str) -> Answer:
    """Return a 400 about the body as a whole."""
    return json_answer(HTTPStatus.BAD_REQUEST, {"error": message, "errorCode": code})


def refuse_for_now(draw: FaultDraw) -> Answer:
    """Return a 429 (always with Retry-After) or 503 (sometimes with it)."""
    if draw.fault is Fault.TOO_MANY_REQUESTS:
        status, message = HTTPStatus.TOO_MANY_REQUESTS, "Request was throttled"
    else:
        status, message = HTTPStatus.SERVICE_UNAVAILABLE, "Service temporarily unavailable"
    headers: tuple[tuple[str, str], ...] = ()
    if status is HTTPStatus.TOO_MANY_REQUESTS or draw.send_retry_after:
        headers = (("Retry-After", _retry_after_value(draw)),)
    return json_answer(status, {"error": message}, headers)


def _retry_after_value(draw: FaultDraw) -> str:
    """Return a Retry-After in the seconds form or the HTTP-date form (RFC 9110)."""
    if draw.retry_after_as_date:
        return formatdate(math.ceil(time.time() + draw.retry_after), usegmt=True)
    return str(math.ceil(draw.retry_after))


NOT_FOUND_PAGE = (
    b"<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n"
)
_ACCEPTED_PAGE = b"<html><body><p>Your request has been received.</p></body></html>\n"


def no_data_answer(shape: NoDataShape, contacts: list[dict[str, Any]]) -> Answer:
    """Return a 2xx that lacks ``{"data": [...]}`` in the given shape."""
    if shape is NoDataShape.BARE_LIST:
        return json_answer(HTTPStatus.CREATED, contacts)
    if shape is NoDataShape.HTML:
        return Answer(HTTPStatus.OK, _ACCEPTED_PAGE, "text/html; charset=utf-8")
    return Answer(HTTPStatus.NO_CONTENT, b"", "application/json")


def method_not_allowed(allowed: str) -> Answer:
    """Return a 405 naming the one method the path takes."""
    return json_answer(
        HTTPStatus.METHOD_NOT_ALLOWED, {"error": "Method not allowed"}, (("Allow", allowed),)
    )
