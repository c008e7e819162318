"""Answers the sandbox does not give, over a real socket: proxies, gateways, wrong URLs, TLS.

Each test serves a small misbehaving ``http.server`` on loopback (or the
sandbox with a fault) and checks what the client and :func:`subscribe_batch`
make of it: how many requests left, and what every row became.
"""

from __future__ import annotations

import http.server
import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bulkimport.contacts import RowStatus
from bulkimport.errors import RefusalCause
from bulkimport.sandbox import SANDBOX_TOKEN, Faults, Sandbox
from bulkimport.send.batch import EVERY_PART_REJECTED, BatchOutcome, Subscriber, subscribe_batch
from bulkimport.send.client import DEFAULT_API_URL, AttemptKind, EngageSparkClient, Timeouts
from bulkimport.send.retry import RetryPolicy

NO_WAIT = RetryPolicy(max_attempts=6, backoff_base=0, sleep=lambda seconds: None)
KEY = "sk-strange-7d1e"


def people(count: int) -> list[Subscriber]:
    return [
        Subscriber(key=n, payload={"fullPhoneNumber": f"63917{n:07d}", "firstName": f"P{n}"})
        for n in range(count)
    ]


def send(url: str, subscribers: list[Subscriber]) -> BatchOutcome:
    with EngageSparkClient(KEY, url, Timeouts(connect=1, read=2)) as client:
        return subscribe_batch(
            client, 1234, subscribers, reuse=False, policy=NO_WAIT, label="strange"
        )


Answer = Callable[["Handler", list[Any]], None]


class Handler(http.server.BaseHTTPRequestHandler):
    """Reads a subscription POST, counts it, and lets the test's ``answer`` reply."""

    protocol_version = "HTTP/1.1"
    server: StrangeServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"null")
        with self.server.lock:
            self.server.requests.append(self.path)
        contacts = body if isinstance(body, list) else []
        try:
            self.server.answer(self, contacts)
        except OSError:
            self.close_connection = True  # the client gave up: nothing to answer

    def reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class StrangeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self.closing = threading.Event()
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/api/v1"


@contextmanager
def strange_server(answer: Answer) -> Iterator[StrangeServer]:
    server = StrangeServer(answer)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.closing.set()
        server.shutdown()
        server.server_close()
        thread.join()


def contacts_of(sent: list[Any], first_id: int = 500) -> list[dict[str, Any]]:
    return [
        {"id": first_id + n, "fullPhoneNumber": item["fullPhoneNumber"]}
        for n, item in enumerate(sent)
    ]


# --- D3: a 2xx without a data list --------------------------------------------------


def bare_list(handler: Handler, sent: list[Any]) -> None:
    handler.reply(201, json.dumps(contacts_of(sent)).encode())


def bare_list_short_of_one(handler: Handler, sent: list[Any]) -> None:
    handler.reply(201, json.dumps(contacts_of(sent)[1:]).encode())


def html_page(handler: Handler, sent: list[Any]) -> None:
    handler.reply(200, b"<html><body>Thank you!</body></html>", "text/html")


def no_content(handler: Handler, sent: list[Any]) -> None:
    handler.send_response(204)
    handler.end_headers()


def test_a_bare_list_of_contacts_subscribes_every_row_in_one_request() -> None:
    with strange_server(bare_list) as server:
        outcome = send(server.url, people(3))
        assert len(server.requests) == 1
    assert [row.status for row in outcome.rows] == [RowStatus.SUBSCRIBED] * 3
    assert [row.contact_id for row in outcome.rows] == [500, 501, 502]


def test_a_bare_list_short_of_a_contact_leaves_that_row_unknown() -> None:
    with strange_server(bare_list_short_of_one) as server:
        outcome = send(server.url, people(3))
        assert len(server.requests) == 1
    assert [row.status for row in outcome.rows] == [
        RowStatus.UNKNOWN,
        RowStatus.SUBSCRIBED,
        RowStatus.SUBSCRIBED,
    ]
    assert "too few contacts (2 for 3)" in outcome.rows[0].reason


@pytest.mark.parametrize("answer", [html_page, no_content], ids=["html-200", "204"])
def test_a_2xx_naming_no_contacts_is_posted_once_and_its_rows_are_unknown(
    answer: Answer,
) -> None:
    with strange_server(answer) as server:
        outcome = send(server.url, people(4))
        # Posting it again would message all four people a second time.
        assert len(server.requests) == 1
    assert [row.status for row in outcome.rows] == [RowStatus.UNKNOWN] * 4
    assert all("named no contacts" in row.reason for row in outcome.rows)
    assert [a.result.kind for a in outcome.attempts] == [AttemptKind.ACCEPTED]
    assert not outcome.unavailable
    assert outcome.refused is None


def test_under_the_nodata_fault_nobody_is_messaged_twice() -> None:
    with Sandbox(faults=Faults(rate_nodata=1.0), seed=2) as sandbox:
        client = EngageSparkClient(SANDBOX_TOKEN, sandbox.url)
        with client:
            outcomes = [
                subscribe_batch(
                    client, 1234, people(12)[n : n + 3], reuse=False, policy=NO_WAIT, label=str(n)
                )
                for n in range(0, 12, 3)
            ]
        assert sandbox.request_count() == 4
        assert sandbox.state()["subscriptions"]["1234"]["numbersMessagedMoreThanOnce"] == 0
    statuses = {row.status for outcome in outcomes for row in outcome.rows}
    # Seed 2 draws a bare list (matched) and at least one answer without contacts.
    assert statuses == {RowStatus.SUBSCRIBED, RowStatus.UNKNOWN}


# --- D6: an answer that trickles in -------------------------------------------------


def deadline_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "bulkimport-deadline"]


def trickle_body(handler: Handler, sent: list[Any]) -> None:
    body = json.dumps({"data": contacts_of(sent)}).encode()
    handler.send_response(201)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.flush()
    for offset in range(len(body)):
        handler.wfile.write(body[offset : offset + 1])
        handler.wfile.flush()
        if handler.server.closing.wait(0.05):
            return


def timed_attempt(url: str, timeouts: Timeouts) -> tuple[float, Any]:
    with EngageSparkClient(SANDBOX_TOKEN, url, timeouts) as client:
        started = time.monotonic()
        result = client.post_subscription(1234, [people(1)[0].payload], reuse=False)
        return time.monotonic() - started, result


def test_a_body_that_trickles_in_ends_at_the_deadline() -> None:
    timeouts = Timeouts(connect=0.3, read=0.5)  # each byte comes well within the read timeout
    with strange_server(trickle_body) as server:
        took, result = timed_attempt(server.url, timeouts)
    assert result.kind is AttemptKind.MAYBE_PROCESSED
    assert result.message == "no complete answer within 0.5 s (plus 0.3 s to connect)"
    assert 0.7 <= took < 2.0
    assert deadline_threads() == []


def test_headers_that_trickle_in_end_at_the_deadline() -> None:
    timeouts = Timeouts(connect=0.3, read=0.5, total=0.6)
    with Sandbox(faults=Faults(rate_trickle=1.0, trickle_ms=50)) as sandbox:
        took, result = timed_attempt(sandbox.url, timeouts)
        assert sandbox.contact_count() == 1
    assert result.kind is AttemptKind.MAYBE_PROCESSED
    assert result.status_code is None
    assert "no complete answer within 0.6 s" in result.message
    assert 0.8 <= took < 2.2
    assert deadline_threads() == []


def test_a_trickled_batch_is_sent_again_with_reuse_and_nobody_gets_two_contacts() -> None:
    with Sandbox(faults=Faults(rate_trickle=1.0, trickle_ms=50)) as sandbox:
        client = EngageSparkClient(SANDBOX_TOKEN, sandbox.url, Timeouts(connect=0.3, read=0.3))
        with client:
            sandbox_policy = RetryPolicy(max_attempts=2, backoff_base=0, sleep=lambda s: None)
            outcome = subscribe_batch(
                client, 1234, people(2), reuse=False, policy=sandbox_policy, label="t"
            )
        assert sandbox.contact_count() == 2
    assert [a.reuse for a in outcome.attempts] == [False, True]
    assert [row.status for row in outcome.rows] == [RowStatus.UNKNOWN] * 2


def test_a_quick_answer_leaves_no_deadline_thread() -> None:
    with Sandbox() as sandbox:
        for _ in range(3):
            took, result = timed_attempt(sandbox.url, Timeouts(connect=1, read=5))
            assert result.kind is AttemptKind.CREATED
            assert took < 1
    assert deadline_threads() == []


# --- D7: a Retry-After of days, over the socket --------------------------------------


def test_a_retry_after_of_eleven_days_stops_the_batch_pending(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    with Sandbox(faults=Faults(rate_429=1.0, retry_after=999999)) as sandbox:
        client = EngageSparkClient(SANDBOX_TOKEN, sandbox.url)
        with client:
            outcome = subscribe_batch(
                client, 1234, people(3), reuse=False, policy=RetryPolicy(), label="9"
            )
        assert sandbox.request_count() == 1
        assert sandbox.contact_count() == 0
    assert [row.status for row in outcome.rows] == [RowStatus.PENDING] * 3
    assert outcome.stop_reason is not None
    assert "11 days" in outcome.stop_reason
    assert "batch 9: the API asks to wait 11 days: stopping; retry later" in caplog.text


# --- D12: a 404 or 3xx that is not the API's ----------------------------------------


def html_not_found(handler: Handler, sent: list[Any]) -> None:
    handler.reply(404, b"<html><body><h1>404 Not Found</h1>nginx</body></html>", "text/html")


def redirect(handler: Handler, sent: list[Any]) -> None:
    handler.send_response(301)
    handler.send_header("Location", "https://start.engagespark.com/api/v1/engagements/1/contacts/")
    handler.send_header("Content-Length", "0")
    handler.end_headers()


@pytest.mark.parametrize("answer", [html_not_found, redirect], ids=["html-404", "301"])
def test_a_404_or_3xx_from_something_else_is_a_wrong_url(answer: Answer) -> None:
    with strange_server(answer) as server:
        outcome = send(server.url, people(2))
        assert len(server.requests) == 1
    assert outcome.refused is not None
    assert outcome.refused.cause is RefusalCause.SETTING
    message = str(outcome.refused)
    assert message.startswith(f"{server.url}/engagements/1234/contacts/ answered ")
    assert f"the default is {DEFAULT_API_URL}" in message
    assert "--engagement" not in message
    assert "Engagement 1234" not in message
    assert [row.status for row in outcome.rows] == [RowStatus.PENDING] * 2


def test_a_wrong_api_version_on_the_sandbox_is_a_wrong_url() -> None:
    with Sandbox() as sandbox:
        outcome = send(sandbox.url.replace("/api/v1", "/api/v2"), people(1))
    assert outcome.refused is not None
    assert outcome.refused.cause is RefusalCause.SETTING
    assert "/api/v2/engagements/1234/contacts/ answered 404" in str(outcome.refused)


def test_the_apis_own_404_still_means_the_engagement() -> None:
    with (
        Sandbox(engagements=(555,)) as sandbox,
        EngageSparkClient(SANDBOX_TOKEN, sandbox.url) as client,
    ):
        outcome = subscribe_batch(client, 1234, people(1), reuse=False, policy=NO_WAIT, label="1")
    assert outcome.refused is not None
    assert outcome.refused.cause is RefusalCause.ENGAGEMENT
    assert "Engagement 1234 was not found" in str(outcome.refused)


# --- splitting: a proxy that rejects everything --------------------------------------


def bad_request(handler: Handler, sent: list[Any]) -> None:
    handler.reply(400, b"<html><body><h1>400 Bad Request</h1></body></html>", "text/html")


def test_a_proxy_rejecting_everything_costs_three_requests_not_one_per_row() -> None:
    with strange_server(bad_request) as server:
        outcome = send(server.url, people(100))
        assert len(server.requests) == 3  # was 2 * 100 - 1
    assert [row.status for row in outcome.rows] == [RowStatus.FAILED] * 100
    assert all(EVERY_PART_REJECTED in row.reason for row in outcome.rows)
    assert all("400 Bad Request" in row.reason for row in outcome.rows)


# --- D13: TLS ------------------------------------------------------------------------


def test_https_to_a_plain_http_server_is_a_setting_error_sent_once() -> None:
    with strange_server(bare_list) as server:
        url = server.url.replace("http://", "https://")
        outcome = send(url, people(3))
        assert server.requests == []  # no request was ever read as one
    assert outcome.refused is not None
    assert outcome.refused.cause is RefusalCause.SETTING
    assert str(outcome.refused).startswith(f"TLS failed talking to {url}/engagements/1234/")
    assert "check the API URL (http or https?)" in str(outcome.refused)
    assert len(outcome.attempts) == 1
    assert outcome.attempts[0].result.kind is AttemptKind.REFUSED
    assert [row.status for row in outcome.rows] == [RowStatus.PENDING] * 3


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a folder with a self-signed cert.pem and key.pem for 127.0.0.1."""
    # openssl is on every machine this runs on (Debian's base system); without it this fails.
    assert shutil.which("openssl") is not None, "openssl is needed to make a test certificate"
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(folder / "key.pem"),
            "-out",
            str(folder / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return folder


@contextmanager
def tls_server(certificate: Path, garble_answer: bool) -> Iterator[tuple[int, list[bytes]]]:
    """Serve one TLS connection; read the request, then answer garbage (or nothing)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    received: list[bytes] = []

    def serve() -> None:
        try:
            raw, _ = listener.accept()
        except OSError:
            return
        raw.settimeout(3)
        try:
            with context.wrap_socket(raw, server_side=True) as conn:
                received.append(conn.recv(65536))
                if garble_answer:
                    # Bytes that are not a TLS record, written past the TLS layer.
                    socket.socket.sendall(conn, b"HTTP/1.1 201 Created\r\n\r\n")
                    time.sleep(0.2)
        except (OSError, ssl.SSLError):
            return  # the client refused the handshake

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield listener.getsockname()[1], received
    finally:
        listener.close()
        thread.join(timeout=5)


def test_a_tls_error_after_the_request_left_is_maybe_processed(
    certificate: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate / "cert.pem"))
    with tls_server(certificate, garble_answer=True) as (port, received):
        url = f"https://127.0.0.1:{port}/api/v1"
        with EngageSparkClient(KEY, url, Timeouts(connect=2, read=2)) as client:
            result = client.post_subscription(1234, [people(1)[0].payload], reuse=False)
    assert len(received) == 1
    assert received[0].startswith(b"POST /api/v1/engagements/1234/contacts/")
    assert result.kind is AttemptKind.MAYBE_PROCESSED
    assert result.message.startswith("SSLError")


def test_a_certificate_that_is_not_trusted_is_a_setting_error(
    certificate: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with tls_server(certificate, garble_answer=False) as (port, received):
        url = f"https://127.0.0.1:{port}/api/v1"
        with EngageSparkClient(KEY, url, Timeouts(connect=2, read=2)) as client:
            result = client.post_subscription(1234, [people(1)[0].payload], reuse=False)
    assert received == []
    assert result.kind is AttemptKind.REFUSED
    assert result.cause is RefusalCause.SETTING
    assert "certificate" in result.message
