"""The engageSPARK client: one HTTP attempt at a time, each classified exactly once.

The client does not retry: :mod:`bulkimport.send.retry` and :mod:`bulkimport.send.batch`
decide what to do with an :class:`AttemptResult`. What an attempt means for the
rows is decided here, in :func:`classify_status` and :func:`classify_transport`.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import math
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import Retry
from urllib3.util.ssl_match_hostname import CertificateError

from bulkimport.contacts import is_existing_contact
from bulkimport.credentials import check_api_key
from bulkimport.errors import ApiRefused, ApiUnavailable, InputError, RefusalCause
from bulkimport.redaction import redact
from bulkimport.settings import API_KEY_ENV, check_api_url
from bulkimport.settings import DEFAULT_API_URL as DEFAULT_API_URL  # still importable from here

# How messages name the key when the caller did not say where it came from.
UNNAMED_KEY_SOURCE = f"{API_KEY_ENV} or the key file"
MESSAGE_LIMIT = 200

log = logging.getLogger(__name__)


def _user_agent() -> str:
    """Return ``bulkimport/<version>`` for the User-Agent header."""
    from bulkimport import __version__

    return f"bulkimport/{__version__}"


USER_AGENT = _user_agent()


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a connection, for each read, and for the whole answer.

    ``read`` bounds each wait for bytes; ``total`` (the read timeout when None)
    bounds the whole answer, so a server that trickles a byte at a time cannot
    hold an attempt longer than ``connect + total`` seconds.
    """

    connect: float = 5.0
    read: float = 30.0
    total: float | None = None

    def __post_init__(self) -> None:
        for value in (self.connect, self.read, self.answer):
            if not (math.isfinite(value) and value > 0):
                raise ValueError("timeouts must be positive numbers of seconds")

    @property
    def answer(self) -> float:
        """Return the seconds the whole answer may take once connected (``total`` or ``read``)."""
        return self.read if self.total is None else self.total

    @property
    def deadline(self) -> float:
        """Return the seconds after which an attempt is cut off: connect plus answer."""
        return self.connect + self.answer


class AttemptKind(StrEnum):
    """What one attempt means for the contacts it carried."""

    CREATED = "created"  # the server answered with the contacts it subscribed
    ACCEPTED = "accepted"  # a 2xx that lists no contacts: processed, never sent again on its own
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
    cause: RefusalCause | None = None  # set on every REFUSED result

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

    A 2xx is CREATED: the server took the batch. It becomes ACCEPTED when its
    body lists no contacts (see :meth:`EngageSparkClient._classify_response`).
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


def refusal_cause(status: int, body: Any, engagement_id: int | None) -> RefusalCause:
    """Return why a refused answer stops the run.

    Only a 404 in the API's own JSON (``{"error": ...}``) on a subscription
    means the engagement does not exist; any other 404 or a 3xx comes from
    something that is not the API (a proxy, a wrong path): the URL is wrong.
    """
    if status == 401:
        return RefusalCause.KEY
    if status == 402:
        return RefusalCause.FUNDS
    if status == 403:
        return RefusalCause.ACCESS
    if status == 404 and engagement_id is not None and _is_api_error(body):
        return RefusalCause.ENGAGEMENT
    return RefusalCause.SETTING


def _is_api_error(body: Any) -> bool:
    """Return whether a body is the API's JSON error, ``{"error": "..."}``."""
    return isinstance(body, dict) and isinstance(body.get("error"), str)


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


class TlsHandshakeFailed(urllib3.exceptions.SSLError):
    """The TLS handshake failed: the connection never carried a byte of the request.

    Raised from the connection pool while connecting, so that it can be told
    apart from a TLS error while reading an answer (which may follow a request
    the server processed). It subclasses urllib3's SSLError so that urllib3 and
    requests wrap it as they wrap any TLS error.
    """


# Failures that happen before a byte of the request leaves: nothing was processed.
_NOTHING_SENT = (
    urllib3.exceptions.NewConnectionError,  # includes NameResolutionError
    urllib3.exceptions.ConnectTimeoutError,
    ConnectionRefusedError,
)

# requests raises these while preparing a request, before any byte leaves; sending
# the same request again fails the same way, so they stop the run as a setting error.
_NOT_BUILT = (
    requests.exceptions.InvalidHeader,
    requests.exceptions.InvalidURL,  # includes InvalidProxyURL
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.URLRequired,
)


def classify_transport(exc: requests.RequestException) -> AttemptKind:
    """Return what a transport failure means for the contacts of the attempt.

    REFUSED when the request could not be built or TLS failed before it left
    (a setting is wrong, sending again cannot help); NOT_PROCESSED when it surely
    never left; MAYBE_PROCESSED otherwise. Anything unrecognised counts as maybe
    processed: re-sending it with reuse on is safe, while calling it not
    processed could message a person twice.
    """
    if isinstance(exc, _NOT_BUILT):
        return AttemptKind.REFUSED
    if any(isinstance(cause, TlsHandshakeFailed) for cause in _causes(exc)):
        return AttemptKind.REFUSED
    if isinstance(exc, requests.ConnectTimeout):
        return AttemptKind.NOT_PROCESSED
    if isinstance(exc, requests.Timeout | requests.exceptions.ChunkedEncodingError):
        return AttemptKind.MAYBE_PROCESSED
    if isinstance(exc, requests.ConnectionError) and any(
        isinstance(cause, _NOTHING_SENT) for cause in _causes(exc)
    ):
        return AttemptKind.NOT_PROCESSED
    return AttemptKind.MAYBE_PROCESSED


_DELAY_SECONDS = re.compile(r"\s*[0-9]+\s*")


def parse_retry_after(value: str | None) -> float | None:
    """Return the seconds a ``Retry-After`` value asks for (delay-seconds or HTTP-date).

    None when the header is absent or cannot be read; a date in the past is 0.
    Nothing is capped here (urllib3's parser caps at six hours): the policy
    decides what a long wait means.
    """
    if value is None:
        return None
    if _DELAY_SECONDS.fullmatch(value):
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 5322 "-0000": UTC, with no claim about the sender's zone
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


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


def _contact_list(body: Any) -> list[dict[str, Any]] | None:
    """Return the contacts of a success body, or None when it lists none.

    The documented body is ``{"data": [...]}``; a gateway that unwraps ``data``
    answers the bare list, whose objects are contacts all the same.
    """
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        items = body["data"]
    elif isinstance(body, list):
        items = body
    else:
        return None
    return [item for item in items if isinstance(item, dict)]


def _shown_url(url: str | None) -> str:
    """Return ``url`` fit for a message: no user, password, query or fragment."""
    if not url:
        return "the API URL"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "the API URL"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))[:MESSAGE_LIMIT]


def refusal_message(
    status: int,
    server_text: str,
    engagement_id: int | None,
    *,
    cause: RefusalCause | None = None,
    url: str | None = None,
    location: str | None = None,
    key_source: str = UNNAMED_KEY_SOURCE,
) -> str:
    """Return one sentence that tells the user how to fix a refused run.

    ``cause`` defaults to what ``status`` alone says (a 404 then counts as the
    engagement's); ``url`` is the address that answered and ``location`` the
    target of a redirect, both named in a message about a wrong URL.
    ``key_source`` says where the key came from, as a refused key's message
    names it (``"the key file /etc/bulkimport/api-key"``).
    """
    if cause is None:
        guess = {"error": server_text} if status == 404 else None
        cause = refusal_cause(status, guess, engagement_id)
    said = f" (the server said: {server_text})" if server_text else ""
    if cause is RefusalCause.KEY:
        return f"The API key was refused{said}: check {key_source}."
    if cause is RefusalCause.FUNDS:
        return (
            f"engageSPARK refused for lack of funds{said}: top up your engageSPARK balance, "
            "then run `bulkimport retry`."
        )
    if cause is RefusalCause.ACCESS:
        return (
            f"engageSPARK refused access{said}: use an API key of the organization that owns "
            "the engagement, with permission to subscribe contacts."
        )
    if cause is RefusalCause.ENGAGEMENT:
        return (
            f"Engagement {engagement_id} was not found{said}: "
            "check the id and that the engagement is RUNNING."
        )
    moved = f", redirecting to {_shown_url(location)}" if location else ""
    return (
        f"{_shown_url(url)} answered {status}{moved}{said}, which is not the engageSPARK "
        f"API: check the API URL (the default is {DEFAULT_API_URL})."
    )


def _tls_message(exc: requests.RequestException, url: str) -> str:
    """Return the sentence for a TLS handshake that failed, with the TLS library's reason."""
    reason = ""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError) and cause.verify_message:
            reason = cause.verify_message
            break
        if isinstance(cause, ssl.SSLError) and cause.reason:
            reason = str(cause.reason)
            break
        if isinstance(cause, OSError | CertificateError) and not reason:
            reason = type(cause).__name__
    detail = f" ({reason})" if reason else ""
    return (
        f"TLS failed talking to {_shown_url(url)}{detail}: "
        "check the API URL (http or https?) and that its certificate is trusted."
    )


def _not_built_message(exc: requests.RequestException, key_source: str) -> str:
    """Return the sentence for a request requests refused to build, without its text.

    The text of InvalidHeader holds the header, the API key included; the text
    of InvalidURL may hold a password in the URL. Neither is repeated.
    """
    if isinstance(exc, requests.exceptions.InvalidHeader):
        return (
            "The API key cannot be sent in an HTTP header (it holds a character headers "
            f"cannot carry): check {key_source}."
        )
    return (
        f"The API URL cannot be used ({type(exc).__name__}): check it "
        f"(the default is {DEFAULT_API_URL})."
    )


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


class _AttemptWatch:
    """Cuts one attempt's connection when its deadline passes, whatever it is waiting for.

    urllib3's read timeout bounds each recv, so an answer that trickles in a
    byte at a time never times out. A timer shuts the socket down instead; the
    blocked read then ends at once and requests raises.
    """

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._connection: HTTPConnection | None = None
        self._expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.name = "bulkimport-deadline"
        self._timer.daemon = True

    def __enter__(self) -> _AttemptWatch:
        _watches.current = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        _watches.current = None
        self._timer.cancel()
        self._timer.join()  # leaves no thread behind, and makes ``expired`` final
        with self._lock:
            self._connection = None

    @property
    def expired(self) -> bool:
        """Return whether the deadline passed while the attempt ran."""
        with self._lock:
            return self._expired

    def watch(self, connection: HTTPConnection) -> None:
        """Remember the connection this attempt uses (cut at once if already late)."""
        with self._lock:
            self._connection = connection
            if self._expired:
                _shut_down(connection)

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            if self._connection is not None:
                _shut_down(self._connection)


def _shut_down(connection: HTTPConnection) -> None:
    """Shut the connection's socket down both ways, so a read blocked on it returns."""
    sock = connection.sock
    if isinstance(sock, socket.socket):
        # socket.socket's own shutdown: SSLSocket.shutdown would also drop its TLS
        # object under the reading thread's feet. OSError: already closed.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watches(threading.local):
    current: _AttemptWatch | None = None


_watches = _Watches()


class _WatchedHTTPPool(HTTPConnectionPool):
    """A pool that hands each connection it gives out to the running attempt's watch."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        watch = _watches.current
        if watch is not None and isinstance(connection, HTTPConnection):
            watch.watch(connection)
        return connection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    """An HTTPS pool that watches its connections and tells a failed handshake apart."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        watch = _watches.current
        if watch is not None and isinstance(connection, HTTPConnection):
            watch.watch(connection)
        return connection

    def _validate_conn(self, conn: Any) -> None:
        # urllib3 connects (TCP, then TLS) here, before a byte of the request is
        # written. TCP failures already come out as urllib3's own errors.
        try:
            super()._validate_conn(conn)
        except (ssl.SSLError, CertificateError, ConnectionError) as err:
            raise TlsHandshakeFailed(f"TLS handshake failed: {type(err).__name__}") from err
        except TimeoutError as err:
            raise urllib3.exceptions.ConnectTimeoutError(
                conn, "the TLS handshake timed out"
            ) from err


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose pools report their connections to the running attempt's watch."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, urllib3.PoolManager) and not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


_WATCHED_POOLS: dict[str, type[HTTPConnectionPool]] = {
    "http": _WatchedHTTPPool,
    "https": _WatchedHTTPSPool,
}


class _ThreadSessions(threading.local):
    session: requests.Session | None = None


@dataclass
class _SessionRegistry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: list[requests.Session] = field(default_factory=list)


class EngageSparkClient:
    """A thread-safe client for the Subscription API: one keep-alive session per thread."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_API_URL,
        timeouts: Timeouts = Timeouts(),
        *,
        key_source: str | None = None,
    ) -> None:
        """Check the key and the URL; ``key_source`` (else ``api_key.source``) names the key.

        :func:`bulkimport.credentials.load_api_key` returns a key that knows its
        source, so a refused key's message names the variable or file it came from.
        """
        check_api_url(base_url, "the client's base_url")
        named = key_source or getattr(api_key, "source", None)
        self._api_key = str(check_api_key(api_key, named or "the API key given to the client"))
        self.key_source = named or UNNAMED_KEY_SOURCE
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
            adapter = _WatchedAdapter(max_retries=Retry(total=0, read=False, redirect=False))
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
        """Return ``text`` without the API key or any ``Token`` value, wherever it came from."""
        return redact(text, (self._api_key,))

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
        timeouts = self.timeouts
        response: requests.Response | None = None
        failure: requests.RequestException | None = None
        with _AttemptWatch(timeouts.deadline) as watch:
            try:
                response = self._session().request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=(timeouts.connect, timeouts.read),
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                failure = exc
        if response is not None and not watch.expired:
            return self._classify_response(response, started_at, clock, engagement_id)
        kind, cause, message = AttemptKind.MAYBE_PROCESSED, None, ""
        if failure is not None:
            kind, message = self._classify_failure(failure, url)
            cause = RefusalCause.SETTING if kind is AttemptKind.REFUSED else None
        if watch.expired and kind is not AttemptKind.NOT_PROCESSED:
            # Cut off by the deadline: whatever arrived (or seemed to end the answer
            # when the socket closed) is not a whole answer.
            kind, cause = AttemptKind.MAYBE_PROCESSED, None
            message = (
                f"no complete answer within {timeouts.answer:g} s "
                f"(plus {timeouts.connect:g} s to connect)"
            )
        return AttemptResult(
            kind=kind,
            status_code=None,
            data=[],
            message=message[:MESSAGE_LIMIT],
            bad_index=None,
            retry_after=None,
            duration=time.monotonic() - clock,
            started_at=started_at,
            cause=cause,
        )

    def _classify_failure(
        self, failure: requests.RequestException, url: str
    ) -> tuple[AttemptKind, str]:
        """Return the kind of a transport failure and its message, with no header in it."""
        kind = classify_transport(failure)
        if isinstance(failure, _NOT_BUILT):
            return kind, _not_built_message(failure, self.key_source)
        if kind is AttemptKind.REFUSED:
            return kind, _tls_message(failure, url)
        return kind, self._redact(_transport_message(failure))

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
        contacts: list[dict[str, Any]] = []
        cause: RefusalCause | None = None
        server_text = "" if kind is AttemptKind.CREATED else _error_text(body, text)
        if kind is AttemptKind.CREATED:
            listed = _contact_list(body)
            if listed is None:
                # The server took the batch; sending it again could message everyone
                # twice, so the rows it does not name stay unknown instead.
                kind = AttemptKind.ACCEPTED
                shown = _error_text(body, text)
                server_text = "the answer named no contacts" + (f": {shown}" if shown else "")
            else:
                contacts = listed
        elif kind is AttemptKind.REFUSED:
            cause = refusal_cause(status, body, engagement_id)
            server_text = refusal_message(
                status,
                server_text,
                engagement_id,
                cause=cause,
                url=response.url,
                location=response.headers.get("Location"),
                key_source=self.key_source,
            )
        return AttemptResult(
            kind=kind,
            status_code=status,
            data=contacts,
            message=self._redact(server_text),
            bad_index=_bad_index(body) if kind is AttemptKind.REJECTED else None,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            duration=time.monotonic() - clock,
            started_at=started_at,
            cause=cause,
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
            raise ApiRefused(result.message, result.status_code, result.cause)
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
