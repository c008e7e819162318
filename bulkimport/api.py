"""The engageSPARK client: one HTTP attempt at a time, each classified exactly once.

The client does not retry: :mod:`bulkimport.retry` and :mod:`bulkimport.send`
decide what to do with an :class:`AttemptResult`. What an attempt means for the
rows is decided here, in :func:`classify_status` and :func:`classify_transport`.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from bulkimport.errors import ApiRefused, ApiUnavailable, InputError

DEFAULT_API_URL = "https://start.engagespark.com/api/v1"
MESSAGE_LIMIT = 200

log = logging.getLogger(__name__)


def _user_agent() -> str:
    """Return ``bulkimport/<version>`` for the User-Agent header."""
    try:
        version = metadata.version("bulkimport")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"bulkimport/{version}"


USER_AGENT = _user_agent()


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a connection and then for each read of the answer."""

    connect: float = 5.0
    read: float = 30.0


class AttemptKind(StrEnum):
    """What one attempt means for the contacts it carried."""

    CREATED = "created"  # the server answered with the contacts it subscribed
    NOT_PROCESSED = "not_processed"  # surely nothing happened: safe to send again
    MAYBE_PROCESSED = "maybe_processed"  # the request left; contacts may exist now
    REJECTED = "rejected"  # the server refused this batch's content
    REFUSED = "refused"  # the server refused the whole run (key, funds, engagement)


@dataclass(frozen=True)
class AttemptResult:
    """The classified outcome of one POST (or GET) to the API."""

    kind: AttemptKind
    status_code: int | None
    data: list[dict[str, Any]]
    message: str
    bad_index: int | None
    retry_after: float | None
    duration: float
    started_at: float

    @property
    def is_transient(self) -> bool:
        """Return whether sending the same batch again may succeed."""
        return self.kind in (AttemptKind.NOT_PROCESSED, AttemptKind.MAYBE_PROCESSED)

    def describe(self) -> str:
        """Return ``<kind> <status>`` for logs and row reasons (no phone, no key)."""
        status = str(self.status_code) if self.status_code is not None else "no response"
        return f"{self.kind} {status}"


@dataclass(frozen=True)
class CustomField:
    """A custom contact field of the organization."""

    id: int
    name: str


def is_existing_contact(payload: Mapping[str, Any]) -> bool:
    """Return whether a payload names an existing contact (it carries only ``id``)."""
    return set(payload) == {"id"}


def subscription_body(contacts: Sequence[Mapping[str, Any]]) -> Any:
    """Return the JSON body for a subscription: ``{"contacts": [...]}`` or a list.

    Existing contacts go in ``{"contacts": [{"id": N}, ...]}``; new contacts as a
    list of objects, even for one. Mixing the two kinds is a ValueError.
    """
    if not contacts:
        raise ValueError("a subscription needs at least one contact")
    existing = [is_existing_contact(contact) for contact in contacts]
    if all(existing):
        return {"contacts": [{"id": contact["id"]} for contact in contacts]}
    if any(existing):
        raise ValueError("existing and new contacts cannot be sent in one subscription")
    return [dict(contact) for contact in contacts]


def classify_status(status: int) -> AttemptKind:
    """Return the kind of an attempt the server answered with ``status``.

    A 2xx is only CREATED once its body is known to carry ``data``; the caller
    downgrades it to MAYBE_PROCESSED otherwise.
    """
    if 200 <= status < 300:
        return AttemptKind.CREATED
    if status in (429, 503):
        return AttemptKind.NOT_PROCESSED
    if status >= 500:
        return AttemptKind.MAYBE_PROCESSED
    if status in (401, 402, 403, 404) or 300 <= status < 400:
        return AttemptKind.REFUSED
    return AttemptKind.REJECTED


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """Yield ``exc`` and every exception it wraps, as requests and urllib3 nest them.

    Only explicit wrapping counts (``args``, ``reason``, ``__cause__``): an implicit
    ``__context__`` may be an unrelated earlier failure.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)
        wrapped = [current.__cause__, reason, *current.args]
        pending.extend(item for item in wrapped if isinstance(item, BaseException))


# Failures that happen before a byte of the request leaves: nothing was processed.
_NOTHING_SENT = (
    urllib3.exceptions.NewConnectionError,  # includes NameResolutionError
    urllib3.exceptions.ConnectTimeoutError,
    ConnectionRefusedError,
    ssl.SSLCertVerificationError,
)


def classify_transport(exc: requests.RequestException) -> AttemptKind:
    """Return NOT_PROCESSED when the request surely never left, else MAYBE_PROCESSED.

    Anything unrecognised counts as maybe processed: re-sending it with reuse on
    is safe, while calling it not processed could message a person twice.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return AttemptKind.NOT_PROCESSED
    if isinstance(exc, requests.Timeout | requests.exceptions.ChunkedEncodingError):
        return AttemptKind.MAYBE_PROCESSED
    if isinstance(exc, requests.ConnectionError) and any(
        isinstance(cause, _NOTHING_SENT) for cause in _causes(exc)
    ):
        return AttemptKind.NOT_PROCESSED
    return AttemptKind.MAYBE_PROCESSED


def parse_retry_after(value: str | None) -> float | None:
    """Return the seconds a ``Retry-After`` value asks for (delay-seconds or HTTP-date).

    None when the header is absent or cannot be read; a date in the past is 0.
    """
    if value is None:
        return None
    try:
        return float(Retry().parse_retry_after(value))
    except (urllib3.exceptions.InvalidHeader, ValueError, OverflowError):
        return None


def _parse_body(response: requests.Response) -> tuple[Any, str]:
    """Return the body as JSON (None when it is not JSON) and its text for messages.

    The content type is ignored on purpose: ``application/jsonl`` has been seen.
    """
    text = response.content.decode("utf-8", errors="replace")
    try:
        return json.loads(text), text
    except ValueError:
        return None, text


def _error_text(body: Any, text: str) -> str:
    """Return the server's error text: ``error`` (with ``errorCode``), else the raw body."""
    if isinstance(body, dict):
        error = body.get("error") or body.get("detail") or body.get("message")
        if isinstance(error, str) and error:
            code = body.get("errorCode")
            return f"{error} ({code})" if isinstance(code, str) and code else error
    return " ".join(text.split())[:MESSAGE_LIMIT]


def _bad_index(body: Any) -> int | None:
    """Return ``context.index`` of an error body when it is a plain integer."""
    if not isinstance(body, dict):
        return None
    context = body.get("context")
    index = context.get("index") if isinstance(context, dict) else None
    return index if isinstance(index, int) and not isinstance(index, bool) else None


def _data_list(body: Any) -> list[dict[str, Any]] | None:
    """Return the contacts of a success body, or None when it has no ``data`` list."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return None
    return [item for item in body["data"] if isinstance(item, dict)]


def refusal_message(status: int, server_text: str, engagement_id: int | None) -> str:
    """Return one sentence that tells the user how to fix a refused run."""
    said = f" (the server said: {server_text})" if server_text else ""
    if status == 401:
        return f"The API key was refused{said}: check ENGAGESPARK_API_KEY or the key file."
    if status == 402:
        return (
            f"engageSPARK refused for lack of funds{said}: top up your engageSPARK balance, "
            "then run `bulkimport retry`."
        )
    if status == 403:
        return (
            f"engageSPARK refused access{said}: use an API key of the organization that owns "
            "the engagement, with permission to subscribe contacts."
        )
    if status == 404 and engagement_id is not None:
        return (
            f"Engagement {engagement_id} was not found{said}: "
            "check the id and that the engagement is RUNNING."
        )
    return f"The API answered {status}{said}: check the API URL (the default is {DEFAULT_API_URL})."


def _transport_message(exc: requests.RequestException) -> str:
    """Return the exception's type and its innermost cause, e.g. ``ConnectionError: ...``."""
    root: BaseException = exc
    for _ in range(10):  # exception chains can loop; ten links is deeper than requests nests
        inner = root.__cause__ or root.__context__
        if inner is None:
            break
        root = inner
    detail = str(root) or type(root).__name__
    return f"{type(exc).__name__}: {detail}"


class _ThreadSessions(threading.local):
    session: requests.Session | None = None


@dataclass
class _SessionRegistry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: list[requests.Session] = field(default_factory=list)


class EngageSparkClient:
    """A thread-safe client for the Subscription API: one keep-alive session per thread."""

    def __init__(
        self, api_key: str, base_url: str = DEFAULT_API_URL, timeouts: Timeouts = Timeouts()
    ) -> None:
        try:
            parts = urlsplit(base_url)
            usable = parts.scheme in ("http", "https") and bool(parts.netloc)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            usable = False
        if not usable:
            raise InputError(
                f"The API URL {base_url!r} is not an http(s) address: "
                f"give one like {DEFAULT_API_URL}."
            )
        if not api_key.strip():
            raise InputError("The API key is empty: set ENGAGESPARK_API_KEY or give a key file.")
        self._api_key = api_key.strip()
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts
        self._local = _ThreadSessions()
        self._registry = _SessionRegistry()
        self._fields_lock = threading.Lock()
        self._fields: list[CustomField] | None = None

    def __repr__(self) -> str:
        return f"EngageSparkClient(base_url={self.base_url!r}, timeouts={self.timeouts!r})"

    def _session(self) -> requests.Session:
        """Return this thread's session, creating it on first use."""
        local = self._local
        session = local.session
        if session is None:
            session = requests.Session()
            # requests already defaults to no retries; say so, retrying is retry.py's job.
            adapter = HTTPAdapter(max_retries=Retry(total=0, read=False, redirect=False))
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update(
                {
                    "Authorization": f"Token {self._api_key}",
                    "User-Agent": USER_AGENT,
                    "Accept": "application/json",
                }
            )
            with self._registry.lock:
                self._registry.sessions.append(session)
            local.session = session
        return session

    def close(self) -> None:
        """Close every session this client opened, in any thread."""
        with self._registry.lock:
            sessions, self._registry.sessions = self._registry.sessions, []
            # A fresh thread-local forgets the closed sessions in every thread at once.
            self._local = _ThreadSessions()
        for session in sessions:
            session.close()

    def __enter__(self) -> EngageSparkClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _redact(self, text: str) -> str:
        """Return ``text`` without the API key, wherever it came from."""
        return text.replace(self._api_key, "***")

    def _attempt(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        engagement_id: int | None = None,
    ) -> AttemptResult:
        """Send one request and return it classified; never raises for HTTP or transport."""
        started_at = time.time()
        clock = time.monotonic()
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {} if body is None else {"Content-Type": "application/json"}
        try:
            response = self._session().request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                timeout=(self.timeouts.connect, self.timeouts.read),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            message = _transport_message(exc)
            return AttemptResult(
                kind=classify_transport(exc),
                status_code=None,
                data=[],
                message=self._redact(message)[:MESSAGE_LIMIT],
                bad_index=None,
                retry_after=None,
                duration=time.monotonic() - clock,
                started_at=started_at,
            )
        return self._classify_response(response, started_at, clock, engagement_id)

    def _classify_response(
        self,
        response: requests.Response,
        started_at: float,
        clock: float,
        engagement_id: int | None,
    ) -> AttemptResult:
        """Return the classified result of an HTTP answer."""
        body, text = _parse_body(response)
        status = response.status_code
        kind = classify_status(status)
        contacts = _data_list(body) if kind is AttemptKind.CREATED else []
        server_text = "" if kind is AttemptKind.CREATED else _error_text(body, text)
        if contacts is None:
            kind, contacts = AttemptKind.MAYBE_PROCESSED, []
            server_text = f"the answer carried no contact list: {_error_text(body, text)}"
        if kind is AttemptKind.REFUSED:
            server_text = refusal_message(status, server_text, engagement_id)
        return AttemptResult(
            kind=kind,
            status_code=status,
            data=contacts,
            message=self._redact(server_text),
            bad_index=_bad_index(body) if kind is AttemptKind.REJECTED else None,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            duration=time.monotonic() - clock,
            started_at=started_at,
        )

    def post_subscription(
        self, engagement_id: int, contacts: Sequence[Mapping[str, Any]], *, reuse: bool
    ) -> AttemptResult:
        """Subscribe ``contacts`` to an engagement in one POST and return what happened.

        With ``reuse`` the server reuses the newest contact with the same number
        (``try_using_existing=newest``) instead of creating another one.
        """
        body = subscription_body(contacts)
        url = f"{self.base_url}/engagements/{engagement_id}/contacts/"
        params = {"try_using_existing": "newest"} if reuse else None
        result = self._attempt("POST", url, params=params, body=body, engagement_id=engagement_id)
        log.debug(
            "engagement %d: %d contacts, reuse=%s: %s in %.2fs",
            engagement_id,
            len(contacts),
            reuse,
            result.describe(),
            result.duration,
        )
        return result

    def custom_fields(self) -> list[CustomField]:
        """Return the organization's custom fields (``GET {base}/customfields``)."""
        result = self._attempt("GET", f"{self.base_url}/customfields")
        if result.kind is AttemptKind.REFUSED:
            raise ApiRefused(result.message, result.status_code)
        if result.kind is not AttemptKind.CREATED:
            raise ApiUnavailable(
                f"engageSPARK did not list the custom fields ({result.describe()}: "
                f"{result.message}): try again later."
            )
        fields = []
        for item in result.data:
            field_id, name = item.get("id"), item.get("name")
            if isinstance(field_id, int) and isinstance(name, str):
                fields.append(CustomField(id=field_id, name=name))
        return fields

    def resolve_custom_field(self, name: str) -> int:
        """Return the id of the custom field called ``name`` (case does not matter)."""
        with self._fields_lock:
            if self._fields is None:
                self._fields = self.custom_fields()
            fields = self._fields
        wanted = name.strip()
        exact = [item for item in fields if item.name.strip() == wanted]
        folded = [item for item in fields if item.name.strip().casefold() == wanted.casefold()]
        matches = exact or folded
        if len(matches) == 1:
            return matches[0].id
        known = ", ".join(sorted(item.name for item in fields)) or "none"
        if matches:
            raise InputError(
                f"Several custom fields are called {name!r} apart from case: "
                f"use the exact name (known fields: {known})."
            )
        raise InputError(
            f"The custom field {name!r} does not exist in engageSPARK: use one of {known}, "
            "or create it there first."
        )
