"""The sandbox on a socket: a threaded HTTP/1.1 server, and :class:`Sandbox` to run it.

The handler reads one request at a time off a keep-alive connection, asks the
:class:`~bulkimport.sandbox.api.Api` for the answer and writes it: whole, one
byte at a time (``trickle``), or not at all behind a TCP reset (``reset``).
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from bulkimport.errors import InputError
from bulkimport.sandbox.answers import Answer, json_answer
from bulkimport.sandbox.api import Api, Settings
from bulkimport.sandbox.existing import load_contacts
from bulkimport.sandbox.faults import NO_FAULTS, FaultDice, Faults
from bulkimport.sandbox.state import Directory, existing_contacts

logger = logging.getLogger(__name__)

SANDBOX_TOKEN = "sandbox-token"  # noqa: S105 - a public stand-in key, not a secret
DEFAULT_CUSTOM_FIELDS: Mapping[int, str] = MappingProxyType({1: "Position", 2: "Branch"})

_MAX_BODY_BYTES = 16 * 1024 * 1024


class _Server(ThreadingHTTPServer):
    """A threaded HTTP server that hands every request to one :class:`Api`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: Api) -> None:
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
        self._send(json_answer(problem[0], {"error": problem[1]}))
        return None

    def _respond(self, body: bytes) -> None:
        try:
            answer = self.server.api.answer(
                self.command, self.path, self.headers.get("Authorization", ""), body
            )
        except Exception:
            logger.exception("the sandbox failed on %s %s", self.command, urlsplit(self.path).path)
            answer = json_answer(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "Sandbox error"})
        if answer.reset:
            self._reset_connection()
        elif answer.trickle_seconds > 0:
            self._trickle(answer)
        else:
            self._send(answer)

    def _send(self, answer: Answer) -> None:
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

    def _trickle(self, answer: Answer) -> None:
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
    ``contacts`` are the account's existing contacts, as the API shows them (at
    least ``id`` and ``fullPhoneNumber``), or the path of an engageSPARK contacts
    export to read them from; new contacts are numbered above all of them.
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
        contacts: Iterable[Mapping[str, Any]] | Path = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        engagement_ids = frozenset(int(engagement) for engagement in engagements)
        settings = Settings(
            token=token,
            engagements=engagement_ids,
            organization_id=organization_id,
            custom_fields=dict(custom_fields),
            report_bad_index=report_bad_index,
            latency_seconds=max(latency_ms, 0) / 1000,
        )
        self._address = (host, port)
        if isinstance(contacts, Path):
            contacts = load_contacts(contacts)
        directory = Directory(engagement_ids, existing_contacts(contacts, organization_id))
        self._api = Api(settings, directory, FaultDice(faults, seed), sleep)
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
    contacts: Iterable[Mapping[str, Any]] = (),
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
        contacts=contacts,
    ).serve_forever()
