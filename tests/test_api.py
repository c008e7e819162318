"""The engageSPARK client: exact requests, one classification per answer, no key leaks."""

from __future__ import annotations

import email.utils
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from requests_mock import Mocker

from bulkimport.credentials import load_api_key
from bulkimport.errors import ApiRefused, ApiUnavailable, InputError, RefusalCause
from bulkimport.send.client import (
    DEFAULT_API_URL,
    AttemptKind,
    EngageSparkClient,
    Timeouts,
    parse_retry_after,
    refusal_message,
)

KEY = "sk-test-5f3a9c7e1d2b"
BASE = "https://api.test/api/v1"
SUBSCRIBE = f"{BASE}/engagements/1234/contacts/"
JUAN = {"firstName": "Juan", "lastName": "Dela Cruz", "fullPhoneNumber": "639438249629"}
JANE = {"firstName": "Jane", "fullPhoneNumber": "639171234567"}


def contact(contact_id: int, phone: str) -> dict[str, Any]:
    return {"id": contact_id, "fullPhoneNumber": phone, "contactType": "NORMAL"}


def last_request(mocker: Mocker) -> Any:
    """Return the last request the mock saw (failing the test if there was none)."""
    assert mocker.last_request is not None
    return mocker.last_request


@pytest.fixture
def client() -> Iterator[EngageSparkClient]:
    with EngageSparkClient(KEY, BASE) as api:
        yield api


# --- the exact request ---------------------------------------------------------------


def test_new_contacts_are_posted_as_a_list_with_token_and_json_headers(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.post(SUBSCRIBE, status_code=201, json={"data": []})
    client.post_subscription(1234, [JUAN, JANE], reuse=False)
    [request] = requests_mock.request_history
    assert request.method == "POST"
    assert request.url == SUBSCRIBE
    assert request.qs == {}
    assert request.headers["Authorization"] == f"Token {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("bulkimport/")
    assert request.json() == [JUAN, JANE]


def test_one_new_contact_is_still_a_list(client: EngageSparkClient, requests_mock: Mocker) -> None:
    requests_mock.post(SUBSCRIBE, status_code=201, json={"data": []})
    client.post_subscription(1234, [{"fullPhoneNumber": "639171234567"}], reuse=False)
    assert last_request(requests_mock).json() == [{"fullPhoneNumber": "639171234567"}]


def test_existing_contacts_are_posted_under_contacts(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.post(SUBSCRIBE, status_code=201, json={"data": []})
    client.post_subscription(1234, [{"id": 17569341}, {"id": 17569342}], reuse=False)
    assert last_request(requests_mock).json() == {"contacts": [{"id": 17569341}, {"id": 17569342}]}


def test_reuse_asks_for_the_newest_existing_contact(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.post(SUBSCRIBE, status_code=201, json={"data": []})
    client.post_subscription(1234, [JUAN], reuse=True)
    request = last_request(requests_mock)
    assert request.url == f"{SUBSCRIBE}?try_using_existing=newest"
    assert request.qs == {"try_using_existing": ["newest"]}


def test_mixing_existing_and_new_contacts_is_refused_before_sending(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.post(SUBSCRIBE, status_code=201, json={"data": []})
    with pytest.raises(ValueError, match="existing and new"):
        client.post_subscription(1234, [{"id": 1}, JUAN], reuse=False)
    assert requests_mock.call_count == 0


def test_base_url_trailing_slash_is_tolerated(requests_mock: Mocker) -> None:
    requests_mock.post(SUBSCRIBE, status_code=201, json={"data": []})
    with EngageSparkClient(KEY, BASE + "/") as api:
        api.post_subscription(1234, [JUAN], reuse=False)
    assert last_request(requests_mock).url == SUBSCRIBE


@pytest.mark.parametrize("url", ["start.engagespark.com/api/v1", "ftp://x/api", "https://"])
def test_a_base_url_that_is_not_http_is_an_input_error(url: str) -> None:
    with pytest.raises(InputError, match="not an http"):
        EngageSparkClient(KEY, url)


def test_an_empty_key_is_an_input_error() -> None:
    with pytest.raises(InputError, match="is empty: put your engageSPARK API key in it"):
        EngageSparkClient("")
    with pytest.raises(InputError, match="has a space at character 1"):
        EngageSparkClient("  ")


@pytest.mark.parametrize(
    "key", [f"{KEY}\nsecond-line", f"{KEY} {KEY}", f"{KEY}\x00", f"{KEY}\u00a0", f"é{KEY}"]
)
def test_a_key_that_cannot_go_in_a_header_is_an_input_error_without_the_key(key: str) -> None:
    with pytest.raises(InputError) as refused:
        EngageSparkClient(key)
    assert "API key" in str(refused.value)
    assert KEY not in str(refused.value)
    assert "second-line" not in str(refused.value)


def test_one_trailing_line_break_of_a_key_is_dropped(requests_mock: Mocker) -> None:
    requests_mock.post(SUBSCRIBE, status_code=201, json={"data": []})
    with EngageSparkClient(f"{KEY}\n", BASE) as api:
        api.post_subscription(1234, [JUAN], reuse=False)
    assert last_request(requests_mock).headers["Authorization"] == f"Token {KEY}"


def test_timeouts_default_the_whole_answer_to_the_read_timeout() -> None:
    assert Timeouts(read=12).answer == 12
    assert Timeouts(read=12).deadline == 17
    assert Timeouts(connect=1, read=12, total=3).deadline == 4
    with pytest.raises(ValueError, match="positive"):
        Timeouts(read=0)
    with pytest.raises(ValueError, match="positive"):
        Timeouts(total=float("inf"))


# --- classification of answers ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (201, {"data": [contact(1, "639438249629")]}, AttemptKind.CREATED),
        (200, {"data": [contact(1, "639438249629")]}, AttemptKind.CREATED),
        (201, [contact(1, "639438249629")], AttemptKind.CREATED),
        (201, {"ok": True}, AttemptKind.ACCEPTED),
        (200, {"data": "none"}, AttemptKind.ACCEPTED),
        (204, None, AttemptKind.ACCEPTED),
        (429, None, AttemptKind.NOT_PROCESSED),
        (503, None, AttemptKind.NOT_PROCESSED),
        (500, None, AttemptKind.MAYBE_PROCESSED),
        (502, None, AttemptKind.MAYBE_PROCESSED),
        (504, None, AttemptKind.MAYBE_PROCESSED),
        (507, None, AttemptKind.MAYBE_PROCESSED),
        (400, {"error": "bad"}, AttemptKind.REJECTED),
        (422, {"error": "bad"}, AttemptKind.REJECTED),
        (409, {"error": "bad"}, AttemptKind.REJECTED),
        (413, None, AttemptKind.REJECTED),
        (401, {"error": "Invalid Token"}, AttemptKind.REFUSED),
        (402, {"error": "insufficient funds"}, AttemptKind.REFUSED),
        (403, {"error": "forbidden"}, AttemptKind.REFUSED),
        (404, {"error": "Not found"}, AttemptKind.REFUSED),
        (301, None, AttemptKind.REFUSED),
    ],
)
def test_each_status_lands_in_its_class(
    client: EngageSparkClient,
    requests_mock: Mocker,
    status: int,
    body: Any,
    kind: AttemptKind,
) -> None:
    if body is None:
        requests_mock.post(SUBSCRIBE, status_code=status, text="")
    else:
        requests_mock.post(SUBSCRIBE, status_code=status, json=body)
    result = client.post_subscription(1234, [JUAN], reuse=False)
    assert result.kind is kind
    assert result.status_code == status
    assert result.started_at == pytest.approx(time.time(), abs=5)
    assert result.duration >= 0


def test_created_carries_the_contacts_of_data(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    data = [contact(7, "639171234567"), contact(8, "639438249629")]
    requests_mock.post(SUBSCRIBE, status_code=201, json={"data": data})
    result = client.post_subscription(1234, [JUAN, JANE], reuse=False)
    assert result.data == data
    assert result.message == ""


def test_a_rejection_keeps_the_servers_message_and_index(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    body = {"error": "Invalid phone number", "errorCode": "invalid_phone", "context": {"index": 3}}
    requests_mock.post(SUBSCRIBE, status_code=400, json=body)
    result = client.post_subscription(1234, [JUAN], reuse=False)
    assert result.kind is AttemptKind.REJECTED
    assert result.message == "Invalid phone number (invalid_phone)"
    assert result.bad_index == 3


@pytest.mark.parametrize("context", [{}, {"index": "3"}, {"index": True}, "3", None])
def test_a_rejection_without_an_integer_index_has_none(
    client: EngageSparkClient, requests_mock: Mocker, context: Any
) -> None:
    requests_mock.post(SUBSCRIBE, status_code=400, json={"error": "bad", "context": context})
    assert client.post_subscription(1234, [JUAN], reuse=False).bad_index is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            401,
            "The API key was refused (the server said: Invalid Token): "
            "check ENGAGESPARK_API_KEY or the key file.",
        ),
        (402, "top up your engageSPARK balance, then run `bulkimport retry`."),
        (403, "organization"),
        (404, "Engagement 1234 was not found (the server said: Not found): check the id"),
    ],
)
def test_a_refusal_says_what_to_do(
    client: EngageSparkClient, requests_mock: Mocker, status: int, expected: str
) -> None:
    errors = {401: "Invalid Token", 402: "insufficient funds", 403: "no", 404: "Not found"}
    requests_mock.post(SUBSCRIBE, status_code=status, json={"error": errors[status]})
    message = client.post_subscription(1234, [JUAN], reuse=False).message
    assert expected in message
    assert message.endswith(".")


def test_a_non_json_body_does_not_raise_and_keeps_200_chars(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    page = "<html>" + "Internal Server Error " * 40 + "</html>"
    requests_mock.post(SUBSCRIBE, status_code=500, text=page, headers={"Content-Type": "text/html"})
    result = client.post_subscription(1234, [JUAN], reuse=False)
    assert result.kind is AttemptKind.MAYBE_PROCESSED
    assert result.message == page[:200]


def test_a_jsonl_content_type_is_parsed_as_json(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.post(
        SUBSCRIBE,
        status_code=201,
        text='{"data": [{"id": 5, "fullPhoneNumber": "639438249629"}]}',
        headers={"Content-Type": "application/jsonl"},
    )
    result = client.post_subscription(1234, [JUAN], reuse=False)
    assert result.kind is AttemptKind.CREATED
    assert result.data == [{"id": 5, "fullPhoneNumber": "639438249629"}]


def test_a_2xx_that_is_not_json_is_accepted_and_not_transient(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.post(SUBSCRIBE, status_code=201, text="Created")
    result = client.post_subscription(1234, [JUAN], reuse=False)
    assert result.kind is AttemptKind.ACCEPTED
    assert not result.is_transient
    assert result.data == []
    assert result.message == "the answer named no contacts: Created"


def test_a_bare_list_of_contacts_is_still_contacts(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    data = [contact(7, "639171234567"), "noise", contact(8, "639438249629")]
    requests_mock.post(SUBSCRIBE, status_code=201, json=data)
    result = client.post_subscription(1234, [JUAN, JANE], reuse=False)
    assert result.kind is AttemptKind.CREATED
    assert result.data == [data[0], data[2]]


@pytest.mark.parametrize(
    ("status", "body", "cause"),
    [
        (401, {"error": "Invalid Token"}, RefusalCause.KEY),
        (402, {"error": "insufficient funds"}, RefusalCause.FUNDS),
        (403, {"error": "forbidden"}, RefusalCause.ACCESS),
        (404, {"error": "Not found"}, RefusalCause.ENGAGEMENT),
        (404, "<html><h1>Not Found</h1></html>", RefusalCause.SETTING),
        (404, {"detail": "Not found."}, RefusalCause.SETTING),
        (301, "", RefusalCause.SETTING),
        (307, {"error": "moved"}, RefusalCause.SETTING),
    ],
)
def test_every_refusal_says_its_cause(
    client: EngageSparkClient, requests_mock: Mocker, status: int, body: Any, cause: RefusalCause
) -> None:
    if isinstance(body, str):
        requests_mock.post(SUBSCRIBE, status_code=status, text=body)
    else:
        requests_mock.post(SUBSCRIBE, status_code=status, json=body)
    result = client.post_subscription(1234, [JUAN], reuse=False)
    assert result.kind is AttemptKind.REFUSED
    assert result.cause is cause


def test_a_404_that_is_not_the_apis_names_the_url_not_the_engagement(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.post(SUBSCRIBE, status_code=404, text="<html><h1>Not Found</h1></html>")
    message = client.post_subscription(1234, [JUAN], reuse=False).message
    assert message.startswith(f"{SUBSCRIBE} answered 404")
    assert DEFAULT_API_URL in message
    assert "--engagement" not in message
    assert "Engagement 1234" not in message
    assert "RUNNING" not in message


def test_a_redirect_names_where_it_leads(client: EngageSparkClient, requests_mock: Mocker) -> None:
    requests_mock.post(
        SUBSCRIBE, status_code=301, headers={"Location": "https://user:pw@elsewhere.test/x?y=1"}
    )
    result = client.post_subscription(1234, [JUAN], reuse=False)
    assert result.cause is RefusalCause.SETTING
    assert "answered 301, redirecting to https://elsewhere.test/x, which is not" in result.message
    assert "pw" not in result.message


def test_a_refused_custom_field_list_carries_its_cause(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.get(f"{BASE}/customfields", status_code=404, json={"error": "Not found"})
    with pytest.raises(ApiRefused) as refused:
        client.custom_fields()
    # No engagement is named in that request: a 404 there means a wrong URL.
    assert refused.value.cause is RefusalCause.SETTING


# --- Retry-After ---------------------------------------------------------------------


def http_date(offset: float) -> str:
    return email.utils.formatdate(time.time() + offset, usegmt=True)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), (" 0 ", 0.0), ("120", 120.0), ("soon", None), ("-3", None), ("1.5", None)],
)
def test_retry_after_in_seconds(header: str, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_retry_after_as_an_http_date() -> None:
    seconds = parse_retry_after(http_date(60))
    assert seconds is not None
    assert 55 <= seconds <= 61


def test_a_long_retry_after_is_not_capped_in_either_form() -> None:
    assert parse_retry_after("999999") == 999999.0
    seconds = parse_retry_after(http_date(999999))
    assert seconds is not None
    assert 999990 <= seconds <= 1000000


def test_retry_after_in_the_past_is_zero() -> None:
    assert parse_retry_after(http_date(-3600)) == 0.0


def test_retry_after_is_read_from_the_answer(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.post(
        SUBSCRIBE,
        [
            {"status_code": 429, "headers": {"Retry-After": "12"}},
            {"status_code": 503, "headers": {"Retry-After": http_date(30)}},
            {"status_code": 503},
        ],
    )
    first, second, third = (client.post_subscription(1234, [JUAN], reuse=False) for _ in "abc")
    assert first.retry_after == 12.0
    assert second.retry_after is not None
    assert 25 <= second.retry_after <= 31
    assert third.retry_after is None


# --- transport errors as requests raises them ----------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (requests.ConnectTimeout, AttemptKind.NOT_PROCESSED),
        (requests.ReadTimeout, AttemptKind.MAYBE_PROCESSED),
        (requests.exceptions.ChunkedEncodingError, AttemptKind.MAYBE_PROCESSED),
        (requests.ConnectionError, AttemptKind.MAYBE_PROCESSED),
    ],
)
def test_transport_errors_are_classified(
    client: EngageSparkClient,
    requests_mock: Mocker,
    error: type[Exception],
    kind: AttemptKind,
) -> None:
    requests_mock.post(SUBSCRIBE, exc=error)
    result = client.post_subscription(1234, [JUAN], reuse=False)
    assert result.kind is kind
    assert result.status_code is None
    assert result.message.startswith(error.__name__)


# --- the key stays secret ------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.InvalidHeader(f"Invalid leading whitespace in header: Token {KEY}"),
        requests.exceptions.InvalidURL(f"Failed to parse: https://me:{KEY}@api.test"),
        requests.exceptions.MissingSchema(f"No scheme supplied: {KEY}"),
    ],
    ids=["InvalidHeader", "InvalidURL", "MissingSchema"],
)
def test_a_request_that_cannot_be_built_is_a_setting_refusal_without_its_text(
    client: EngageSparkClient, requests_mock: Mocker, error: Exception
) -> None:
    requests_mock.post(SUBSCRIBE, exc=error)
    result = client.post_subscription(1234, [JUAN], reuse=False)
    assert result.kind is AttemptKind.REFUSED
    assert result.cause is RefusalCause.SETTING
    assert not result.is_transient
    assert KEY not in result.message
    assert "Failed to parse" not in result.message


def test_a_key_requests_refuses_as_a_header_never_leaves_nor_shows(requests_mock: Mocker) -> None:
    requests_mock.post(SUBSCRIBE, status_code=201, json={"data": []})
    api = EngageSparkClient(KEY, BASE)
    # A key the constructor would refuse, as if it had been let through.
    api._api_key = f"{KEY}\nX-Other: {KEY}"
    result = api.post_subscription(1234, [JUAN], reuse=False)
    assert requests_mock.call_count == 0
    assert result.kind is AttemptKind.REFUSED
    assert "check ENGAGESPARK_API_KEY or the key file." in result.message
    assert KEY not in result.message


@pytest.mark.parametrize(
    ("environ", "env_name", "source"),
    [
        ({"ORG_ES_KEY": KEY}, "ORG_ES_KEY", "the environment variable ORG_ES_KEY"),
        ({"ENGAGESPARK_API_KEY": KEY}, "ENGAGESPARK_API_KEY", "the environment variable "
         "ENGAGESPARK_API_KEY"),
    ],
)  # fmt: skip
def test_a_refused_key_names_the_variable_it_came_from(
    requests_mock: Mocker, environ: dict[str, str], env_name: str, source: str
) -> None:
    requests_mock.post(SUBSCRIBE, status_code=401, json={"error": "Invalid Token"})
    with EngageSparkClient(load_api_key(environ, env_name=env_name), BASE) as api:
        message = api.post_subscription(1234, [JUAN], reuse=False).message
    assert message == f"The API key was refused (the server said: Invalid Token): check {source}."
    assert KEY not in message


def test_a_refused_key_names_the_key_file_it_came_from(
    requests_mock: Mocker, tmp_path: Path
) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    requests_mock.post(SUBSCRIBE, status_code=401, json={"error": "Invalid Token"})
    with EngageSparkClient(load_api_key({"ENGAGESPARK_API_KEY": "other"}, key_file), BASE) as api:
        message = api.post_subscription(1234, [JUAN], reuse=False).message
    assert message.endswith(f"check the key file {key_file}.")
    assert "ENGAGESPARK_API_KEY" not in message


def test_a_key_source_given_to_the_client_is_named() -> None:
    api = EngageSparkClient(KEY, BASE, key_source="the vault entry es/prod")
    assert api.key_source == "the vault entry es/prod"
    assert refusal_message(401, "", 1234, key_source=api.key_source) == (
        "The API key was refused: check the vault entry es/prod."
    )


def test_a_token_in_an_exception_text_is_redacted_whatever_the_key(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.post(SUBSCRIBE, exc=requests.ConnectionError("sent 'Authorization: Token abc'"))
    result = client.post_subscription(1234, [JUAN], reuse=False)
    assert result.kind is AttemptKind.MAYBE_PROCESSED
    assert "abc" not in result.message
    assert "Token ***" in result.message


def test_the_key_is_not_in_the_repr(client: EngageSparkClient) -> None:
    assert KEY not in repr(client)
    assert BASE in repr(client)


def test_a_key_echoed_by_the_server_is_redacted(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.post(SUBSCRIBE, status_code=401, json={"error": f"Invalid Token {KEY}"})
    result = client.post_subscription(1234, [JUAN], reuse=False)
    assert KEY not in result.message
    assert "Invalid Token ***" in result.message


def test_the_key_is_not_logged_or_raised(
    client: EngageSparkClient,
    requests_mock: Mocker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    requests_mock.post(SUBSCRIBE, status_code=201, json={"data": [contact(1, "639438249629")]})
    requests_mock.get(f"{BASE}/customfields", status_code=401, json={"error": "Invalid Token"})
    client.post_subscription(1234, [JUAN], reuse=False)
    with pytest.raises(ApiRefused) as refused:
        client.custom_fields()
    assert caplog.records, "the client logs its attempts"
    assert KEY not in caplog.text
    assert KEY not in str(refused.value)
    assert KEY not in repr(refused.value)
    assert "639438249629" not in caplog.text


# --- custom fields -------------------------------------------------------------------

FIELDS = {
    "data": [
        {"organizationId": 1, "fieldType": "text", "id": 11, "name": "Branch"},
        {"organizationId": 1, "fieldType": "text", "id": 12, "name": "Applicant ID"},
    ]
}


def test_custom_fields_are_listed(client: EngageSparkClient, requests_mock: Mocker) -> None:
    requests_mock.get(f"{BASE}/customfields", json=FIELDS)
    fields = client.custom_fields()
    assert [(item.id, item.name) for item in fields] == [(11, "Branch"), (12, "Applicant ID")]
    assert last_request(requests_mock).headers["Authorization"] == f"Token {KEY}"


def test_a_custom_field_resolves_by_name_ignoring_case_and_is_fetched_once(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.get(f"{BASE}/customfields", json=FIELDS)
    assert client.resolve_custom_field("applicant id") == 12
    assert client.resolve_custom_field(" BRANCH ") == 11
    assert requests_mock.call_count == 1


def test_an_unknown_custom_field_lists_the_known_ones(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.get(f"{BASE}/customfields", json=FIELDS)
    with pytest.raises(InputError, match=r"'Region'.*Applicant ID, Branch"):
        client.resolve_custom_field("Region")


def test_custom_fields_that_differ_only_in_case_need_the_exact_name(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    fields = [{"id": 1, "name": "Branch"}, {"id": 2, "name": "BRANCH"}]
    requests_mock.get(f"{BASE}/customfields", json={"data": fields})
    assert client.resolve_custom_field("BRANCH") == 2
    with pytest.raises(InputError, match="exact name"):
        client.resolve_custom_field("branch")


def test_custom_fields_refused_raise_api_refused(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.get(f"{BASE}/customfields", status_code=403, json={"error": "forbidden"})
    with pytest.raises(ApiRefused) as refused:
        client.custom_fields()
    assert refused.value.status == 403


def test_custom_fields_unavailable_raise_api_unavailable(
    client: EngageSparkClient, requests_mock: Mocker
) -> None:
    requests_mock.get(f"{BASE}/customfields", status_code=502, text="Bad Gateway")
    with pytest.raises(ApiUnavailable, match="try again later"):
        client.custom_fields()


# --- real sockets: what requests and urllib3 raise -----------------------------------


@contextmanager
def raw_server(behaviour: Callable[[socket.socket], None], backlog: int = 8) -> Iterator[int]:
    """Serve one connection on 127.0.0.1 with ``behaviour`` and yield the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(backlog)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            behaviour(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(timeout=2)


def read_request(conn: socket.socket) -> bytes:
    """Return one whole HTTP request (head and body), or b"" when the client closed."""
    conn.settimeout(2)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        body += chunk
    return head + b"\r\n\r\n" + body


def close_after_request(conn: socket.socket) -> None:
    read_request(conn)


def reset_after_request(conn: socket.socket) -> None:
    read_request(conn)
    time.sleep(0.05)  # let the client start reading, so the reset hits its recv
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def stall_after_request(conn: socket.socket) -> None:
    read_request(conn)
    conn.settimeout(2)
    try:
        conn.recv(1)  # returns when the client gives up and closes
    except OSError:
        return


def cut_body_short(conn: socket.socket) -> None:
    read_request(conn)
    conn.sendall(b'HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{"data": [')


SOCKET_CASES = [
    (close_after_request, AttemptKind.MAYBE_PROCESSED, "closed connection"),
    (reset_after_request, AttemptKind.MAYBE_PROCESSED, "reset"),
    (stall_after_request, AttemptKind.MAYBE_PROCESSED, "ReadTimeout"),
    (cut_body_short, AttemptKind.MAYBE_PROCESSED, "ChunkedEncodingError"),
]


@pytest.mark.parametrize(("behaviour", "kind", "hint"), SOCKET_CASES)
def test_a_request_that_left_is_maybe_processed(
    behaviour: Callable[[socket.socket], None],
    kind: AttemptKind,
    hint: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with raw_server(behaviour) as port:
        url = f"http://127.0.0.1:{port}/api/v1"
        with EngageSparkClient(KEY, url, Timeouts(connect=1, read=0.3)) as api:
            result = api.post_subscription(1234, [JUAN], reuse=False)
        assert result.kind is kind
        assert hint.lower() in result.message.lower()
    assert KEY not in caplog.text
    assert "urllib3" in {record.name.split(".")[0] for record in caplog.records}


def test_a_port_nobody_listens_on_is_not_processed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with EngageSparkClient(KEY, f"http://127.0.0.1:{port}/api/v1") as api:
        result = api.post_subscription(1234, [JUAN], reuse=False)
    assert result.kind is AttemptKind.NOT_PROCESSED
    assert "refused" in result.message.lower()
    assert KEY not in caplog.text


def test_a_connect_timeout_is_not_processed() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    # Fill the accept queue: the kernel then drops new SYNs and connect() times out.
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        time.sleep(0.05)
        with EngageSparkClient(KEY, f"http://127.0.0.1:{port}/api/v1", Timeouts(0.2, 1)) as api:
            result = api.post_subscription(1234, [JUAN], reuse=False)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    assert result.kind is AttemptKind.NOT_PROCESSED
    assert result.message.startswith("ConnectTimeout")


@contextmanager
def keep_alive_server() -> Iterator[tuple[int, list[int]]]:
    """Serve 201s over keep-alive connections; yield the port and connection ids."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    connections: list[int] = []
    body = b'{"data": []}'
    reply = b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    def handle(conn: socket.socket, number: int) -> None:
        with conn:
            while read_request(conn):
                connections.append(number)
                conn.sendall(reply)

    def accept() -> None:
        number = 0
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn, number), daemon=True).start()
            number += 1

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1], connections
    finally:
        listener.close()


def test_one_thread_reuses_its_connection_and_threads_get_their_own() -> None:
    with keep_alive_server() as (port, connections):
        api = EngageSparkClient(KEY, f"http://127.0.0.1:{port}/api/v1", Timeouts(1, 1))
        for _ in range(2):
            assert api.post_subscription(1, [JUAN], reuse=False).kind is AttemptKind.CREATED
        worker = threading.Thread(
            target=api.post_subscription, args=(1, [JUAN]), kwargs={"reuse": False}
        )
        worker.start()
        worker.join()
        api.close()
        assert api.post_subscription(1, [JUAN], reuse=False).kind is AttemptKind.CREATED
        api.close()
        assert connections == [0, 0, 1, 2]


def test_default_api_url_is_the_documented_one() -> None:
    assert DEFAULT_API_URL == "https://start.engagespark.com/api/v1"
    assert "start.engagespark.com" in repr(EngageSparkClient(KEY))
