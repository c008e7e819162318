"""The sandbox server over a real loopback socket, with plain ``requests``."""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from bulkimport.errors import InputError
from bulkimport.sandbox import FIRST_CONTACT_ID, Faults, Sandbox

TOKEN = "sandbox-token"
AUTH = {"Authorization": f"Token {TOKEN}"}
PHONE = "639171234567"


class RecordedSleep:
    """Stands in for time.sleep and remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(sleep=RecordedSleep()) as running:
        yield running


def subscribe(
    sandbox: Sandbox,
    body: Any,
    *,
    engagement: int = 1234,
    reuse: bool = False,
    headers: dict[str, str] | None = None,
    slash: str = "/",
) -> requests.Response:
    url = f"{sandbox.url}/engagements/{engagement}/contacts{slash}"
    params = {"try_using_existing": "newest"} if reuse else None
    return requests.post(
        url, json=body, params=params, headers=AUTH if headers is None else headers, timeout=10
    )


def numbers(count: int, start: int = 639170000000) -> list[str]:
    return [str(start + i) for i in range(count)]


# --- body shapes ------------------------------------------------------------------------


def test_one_phone_number_answers_a_full_contact(sandbox: Sandbox) -> None:
    response = subscribe(sandbox, {"fullPhoneNumber": PHONE})

    assert response.status_code == 201
    assert int(response.headers["Content-Length"]) == len(response.content)
    (contact,) = response.json()["data"]
    created = contact.pop("createdDate")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", created)
    assert contact == {
        "id": FIRST_CONTACT_ID,
        "organizationId": 853,
        "firstName": "",
        "lastName": "",
        "fullPhoneNumber": PHONE,
        "phoneNumber": "9171234567",
        "dialingCode": "63",
        "carrierId": 952,
        "contactType": "NORMAL",
        "language": "",
        "email": "",
        "groups": [],
        "customFields": {},
        "deleted": "",
    }
    assert sandbox.subscriptions(1234) == [FIRST_CONTACT_ID]


def test_a_list_of_new_contacts_keeps_fields_and_drops_unknown_custom_fields(
    sandbox: Sandbox,
) -> None:
    body = [
        {
            "firstName": "Juan",
            "lastName": "Dela Cruz",
            "fullPhoneNumber": "639438249629",
            "organizationId": 853,
            "groups": [321],
            "email": "juan@example.com",
            "language": "fil",
            "customFields": {"1": "Cashier", "77": "ignored"},
        },
        {"fullPhoneNumber": "4915123456789", "firstName": "Jana"},
    ]

    response = subscribe(sandbox, body, slash="")

    assert response.status_code == 201
    juan, jana = response.json()["data"]
    assert (juan["firstName"], juan["lastName"], juan["groups"]) == ("Juan", "Dela Cruz", [321])
    assert (juan["email"], juan["language"]) == ("juan@example.com", "fil")
    assert juan["customFields"] == {"1": "Cashier"}
    assert (jana["dialingCode"], jana["phoneNumber"]) == ("49", "15123456789")
    assert jana["id"] == juan["id"] + 1
    assert sandbox.subscriptions(1234) == [juan["id"], jana["id"]]


def test_existing_contacts_are_subscribed_by_id_and_a_repeat_is_a_second_message(
    sandbox: Sandbox,
) -> None:
    first = subscribe(sandbox, [{"fullPhoneNumber": n} for n in numbers(2)]).json()["data"]
    ids = [contact["id"] for contact in first]

    response = subscribe(sandbox, {"contacts": [{"id": ids[1]}, {"id": ids[0]}]})

    assert response.status_code == 201
    assert [contact["id"] for contact in response.json()["data"]] == [ids[1], ids[0]]
    assert sandbox.contact_count() == 2
    assert sandbox.subscriptions(1234) == [ids[0], ids[1], ids[1], ids[0]]


def test_an_unknown_existing_contact_rejects_the_batch(sandbox: Sandbox) -> None:
    (known,) = subscribe(sandbox, {"fullPhoneNumber": PHONE}).json()["data"]

    response = subscribe(sandbox, {"contacts": [{"id": known["id"]}, {"id": 5}]})

    assert response.status_code == 400
    assert response.json() == {
        "error": "Contact not found",
        "errorCode": "contact_not_found",
        "context": {"index": 1, "id": 5},
    }
    assert sandbox.subscriptions(1234) == [known["id"]]


@pytest.mark.parametrize(
    "body",
    [
        {"firstName": "no number"},
        42,
        [],
        {"contacts": []},
        {"contacts": [{"id": "17620219"}]},
        [{"fullPhoneNumber": PHONE, "groups": ["staff"]}],
        [{"fullPhoneNumber": PHONE, "firstName": 7}],
        ["639171234567"],
    ],
)
def test_a_body_of_the_wrong_shape_is_a_400_that_creates_nothing(
    sandbox: Sandbox, body: Any
) -> None:
    response = subscribe(sandbox, body)

    assert response.status_code == 400
    assert response.json()["error"]
    assert sandbox.contact_count() == 0
    assert sandbox.subscriptions(1234) == []


def test_a_body_that_is_not_json_is_a_400(sandbox: Sandbox) -> None:
    response = requests.post(
        f"{sandbox.url}/engagements/1234/contacts/", data=b"\xff{not json", headers=AUTH, timeout=10
    )

    assert response.status_code == 400
    assert response.json()["errorCode"] == "invalid_json"


# --- reuse ------------------------------------------------------------------------------


def test_without_reuse_every_call_creates_a_new_contact(sandbox: Sandbox) -> None:
    subscribe(sandbox, {"fullPhoneNumber": PHONE})
    subscribe(sandbox, {"fullPhoneNumber": PHONE})

    assert [c["id"] for c in sandbox.contacts_for(PHONE)] == [
        FIRST_CONTACT_ID,
        FIRST_CONTACT_ID + 1,
    ]


def test_reuse_takes_the_newest_contact_and_ignores_the_other_fields(sandbox: Sandbox) -> None:
    subscribe(sandbox, [{"fullPhoneNumber": PHONE, "firstName": "Old"}])
    subscribe(sandbox, [{"fullPhoneNumber": PHONE, "firstName": "Newer"}])

    response = subscribe(sandbox, [{"fullPhoneNumber": PHONE, "firstName": "Ignored"}], reuse=True)

    (contact,) = response.json()["data"]
    assert (contact["id"], contact["firstName"]) == (FIRST_CONTACT_ID + 1, "Newer")
    assert sandbox.contact_count() == 2
    assert sandbox.subscriptions(1234) == [
        FIRST_CONTACT_ID,
        FIRST_CONTACT_ID + 1,
        FIRST_CONTACT_ID + 1,
    ]


def test_reuse_creates_a_contact_where_none_exists(sandbox: Sandbox) -> None:
    response = subscribe(sandbox, [{"fullPhoneNumber": PHONE, "lastName": "Rizal"}], reuse=True)

    assert response.status_code == 201
    (stored,) = sandbox.contacts_for(PHONE)
    assert stored["lastName"] == "Rizal"


# --- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Token wrong"}, {"Authorization": f"Bearer {TOKEN}"}, {"X": TOKEN}],
)
def test_a_wrong_or_missing_key_is_a_401(sandbox: Sandbox, headers: dict[str, str]) -> None:
    response = subscribe(sandbox, {"fullPhoneNumber": PHONE}, headers=headers)

    assert response.status_code == 401
    assert response.json() == {"error": "Invalid Token"}
    assert sandbox.contact_count() == 0


def test_no_funds_is_a_402_for_every_subscription(sandbox: Sandbox) -> None:
    sandbox.set_funds(False)
    refused = subscribe(sandbox, {"fullPhoneNumber": PHONE})
    sandbox.set_funds(True)
    accepted = subscribe(sandbox, {"fullPhoneNumber": PHONE})

    assert refused.status_code == 402
    assert refused.json() == {"error": "insufficient funds"}
    assert accepted.status_code == 201
    assert sandbox.contact_count() == 1


def test_another_organization_is_a_403(sandbox: Sandbox) -> None:
    body = [{"fullPhoneNumber": PHONE}, {"fullPhoneNumber": PHONE, "organizationId": 999}]

    response = subscribe(sandbox, body)

    assert response.status_code == 403
    assert response.json() == {"error": "You do not have permission to act in organization 999"}
    assert sandbox.contact_count() == 0


def test_an_unknown_engagement_is_the_apis_404_and_an_unknown_path_a_web_page(
    sandbox: Sandbox,
) -> None:
    engagement = subscribe(sandbox, {"fullPhoneNumber": PHONE}, engagement=4321)
    path = requests.get(f"{sandbox.url}/contacts/", headers=AUTH, timeout=10)
    version = requests.post(
        sandbox.url.replace("/api/v1", "/api/v2") + "/engagements/1234/contacts/",
        json={"fullPhoneNumber": PHONE},
        headers=AUTH,
        timeout=10,
    )

    assert (engagement.status_code, engagement.json()) == (404, {"error": "Not found"})
    for response in (path, version):
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("text/html")
        assert "<h1>Not Found</h1>" in response.text
    assert sandbox.contact_count() == 0


@pytest.mark.parametrize(
    "bad",
    [
        "09171234567",
        "+639171234567",
        "63917 123 4567",
        "6391712",
        "6391712345678901",
        "999171234567",
        639171234567,
        None,
    ],
)
def test_a_bad_number_rejects_the_whole_batch_naming_its_index(
    sandbox: Sandbox, bad: object
) -> None:
    body = [{"fullPhoneNumber": n} for n in numbers(3)]
    body[2]["fullPhoneNumber"] = bad  # type: ignore[assignment]

    response = subscribe(sandbox, body)

    assert response.status_code == 400
    assert response.json() == {
        "error": "Invalid phone number",
        "errorCode": "invalid_phone_number",
        "context": {"index": 2, "fullPhoneNumber": bad},
    }
    assert sandbox.contact_count() == 0
    assert sandbox.subscriptions(1234) == []


def test_the_index_can_be_left_out_of_a_400() -> None:
    with Sandbox(report_bad_index=False) as sandbox:
        response = subscribe(sandbox, [{"fullPhoneNumber": PHONE}, {"fullPhoneNumber": "9991234"}])

    assert response.json()["context"] == {"fullPhoneNumber": "9991234"}


# --- custom fields, state, HTTP ---------------------------------------------------------


def test_custom_fields_are_listed_for_a_valid_key_only(sandbox: Sandbox) -> None:
    listed = requests.get(f"{sandbox.url}/customfields", headers=AUTH, timeout=10)
    refused = requests.get(f"{sandbox.url}/customfields/", timeout=10)

    assert listed.json() == {
        "data": [
            {"organizationId": 853, "fieldType": "text", "id": 1, "name": "Position"},
            {"organizationId": 853, "fieldType": "text", "id": 2, "name": "Branch"},
        ]
    }
    assert refused.status_code == 401


def test_the_state_endpoint_counts_requests_contacts_and_repeat_messages(
    sandbox: Sandbox,
) -> None:
    subscribe(sandbox, [{"fullPhoneNumber": PHONE}, {"fullPhoneNumber": "639170000001"}])
    subscribe(sandbox, {"fullPhoneNumber": PHONE})
    subscribe(sandbox, {"fullPhoneNumber": PHONE}, headers={})
    base = urlsplit(sandbox.url)

    state = requests.get(f"{base.scheme}://{base.netloc}/_sandbox/state", timeout=10).json()

    assert state == sandbox.state()
    assert state["requests"] == sandbox.request_count() == 3
    assert state["contacts"] == 3
    assert state["contactsPerNumber"] == {PHONE: 2, "639170000001": 1}
    assert state["subscriptions"] == {
        "1234": {"total": 3, "numbers": 2, "numbersMessagedMoreThanOnce": 1}
    }
    assert (state["funds"], state["faults"], state["organizationId"]) == (True, "", 853)


def test_one_keep_alive_connection_carries_several_requests(sandbox: Sandbox) -> None:
    address = urlsplit(sandbox.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    statuses = []
    try:
        for body in (b'{"fullPhoneNumber": "639171234567"}', b"not json", b"{}"):
            connection.request(
                "POST", "/api/v1/engagements/1234/contacts/", body=body, headers=AUTH
            )
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
            assert not response.will_close
    finally:
        connection.close()

    assert statuses == [201, 400, 400]


def test_latency_is_waited_in_each_request() -> None:
    sleep = RecordedSleep()
    with Sandbox(latency_ms=250, sleep=sleep) as sandbox:
        subscribe(sandbox, {"fullPhoneNumber": PHONE})
        requests.get(f"{sandbox.url}/customfields", headers=AUTH, timeout=10)

    assert sleep.waits == [0.25, 0.25]


def test_concurrent_requests_wait_their_latency_side_by_side() -> None:
    with Sandbox(latency_ms=200) as sandbox, ThreadPoolExecutor(8) as pool:
        started = time.perf_counter()
        responses = list(pool.map(lambda n: subscribe(sandbox, {"fullPhoneNumber": n}), numbers(8)))
        elapsed = time.perf_counter() - started

    assert [r.status_code for r in responses] == [201] * 8
    assert elapsed < 1.2  # one after another would take 1.6 s
    assert sandbox.contact_count() == 8


def test_the_url_needs_a_started_sandbox() -> None:
    with pytest.raises(RuntimeError, match="started"):
        _ = Sandbox().url


def test_a_port_in_use_is_an_input_error(sandbox: Sandbox) -> None:
    port = urlsplit(sandbox.url).port or 0

    with pytest.raises(InputError, match=f"cannot listen on 127.0.0.1:{port}"):
        Sandbox(port=port).start()


# --- faults -----------------------------------------------------------------------------


def test_429_carries_retry_after_in_both_forms_and_creates_nothing(sandbox: Sandbox) -> None:
    sandbox.set_faults(Faults(rate_429=1.0, retry_after=3))

    responses = [subscribe(sandbox, {"fullPhoneNumber": PHONE}) for _ in range(8)]

    assert {r.status_code for r in responses} == {429}
    values = [r.headers["Retry-After"] for r in responses]
    seconds = [v for v in values if v.isdigit()]
    dates = [parsedate_to_datetime(v) for v in values if not v.isdigit()]
    assert seconds
    assert set(seconds) == {"3"}
    assert dates
    assert all(d.tzinfo is not None for d in dates)
    assert sandbox.contact_count() == 0
    assert sandbox.request_count() == 8


def test_503_creates_nothing(sandbox: Sandbox) -> None:
    sandbox.set_faults(Faults(rate_503=1.0))

    responses = [subscribe(sandbox, {"fullPhoneNumber": PHONE}) for _ in range(8)]

    assert {r.status_code for r in responses} == {503}
    with_retry_after = [r for r in responses if "Retry-After" in r.headers]
    assert 0 < len(with_retry_after) < 8
    assert sandbox.contact_count() == 0


def test_500_answers_plain_text_after_creating_the_contacts(sandbox: Sandbox) -> None:
    sandbox.set_faults(Faults(rate_500=1.0))

    response = subscribe(sandbox, [{"fullPhoneNumber": n} for n in numbers(3)])

    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == "Internal Server Error\n"
    assert sandbox.contact_count() == 3
    assert len(sandbox.subscriptions(1234)) == 3


def test_reset_drops_the_connection_after_creating_the_contacts(sandbox: Sandbox) -> None:
    sandbox.set_faults(Faults(rate_reset=1.0))

    with pytest.raises(requests.ConnectionError):
        subscribe(sandbox, [{"fullPhoneNumber": n} for n in numbers(3)])

    assert sandbox.contact_count() == 3
    assert len(sandbox.subscriptions(1234)) == 3


def test_slow_waits_its_seconds_then_answers_201() -> None:
    sleep = RecordedSleep()
    faults = Faults(rate_slow=1.0, slow_seconds=7)
    with Sandbox(faults=faults, sleep=sleep) as sandbox:
        response = subscribe(sandbox, {"fullPhoneNumber": PHONE})

    assert response.status_code == 201
    assert sleep.waits == [7]
    assert sandbox.contact_count() == 1


def test_nodata_answers_a_2xx_without_data_after_creating_the_contacts() -> None:
    sent = numbers(2)
    with Sandbox(faults=Faults(rate_nodata=1.0), seed=1) as sandbox:
        responses = [
            subscribe(sandbox, [{"fullPhoneNumber": n} for n in numbers(2, start)])
            for start in range(639170000000, 639170000000 + 2 * 12, 2)
        ]
        assert sandbox.contact_count() == 24

    shapes = {(r.status_code, r.headers.get("Content-Type", "").split(";")[0]) for r in responses}
    assert shapes == {(201, "application/json"), (200, "text/html"), (204, "application/json")}
    for response in responses:
        if response.status_code == 201:
            assert isinstance(response.json(), list)
            assert len(response.json()) == len(sent)
            assert "data" not in response.text
        if response.status_code == 204:
            assert response.content == b""
            assert "Content-Length" not in response.headers


def test_trickle_writes_the_answer_one_byte_at_a_time_after_processing() -> None:
    with Sandbox(faults=Faults(rate_trickle=1.0, trickle_ms=3)) as sandbox:
        address = urlsplit(sandbox.url)
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=5)
        body = b'{"fullPhoneNumber": "639171234567"}'
        started = time.monotonic()
        connection.request("POST", "/api/v1/engagements/1234/contacts/", body=body, headers=AUTH)
        response = connection.getresponse()
        head_done = time.monotonic()
        payload = response.read()
        finished = time.monotonic()
        connection.close()
        assert sandbox.contact_count() == 1

    assert response.status == 201
    assert payload.startswith(b'{"data":[')
    # Every byte of the status line and headers came 3 ms apart, then every byte of the body.
    assert head_done - started >= 0.003 * 60
    assert finished - head_done >= 0.003 * (len(payload) - 1)


def test_shuffle_answers_the_same_contacts_in_another_order() -> None:
    sent = numbers(20)
    with Sandbox(faults=Faults(rate_shuffle=1.0), seed=7) as sandbox:
        response = subscribe(sandbox, [{"fullPhoneNumber": n} for n in sent])

    answered = [contact["fullPhoneNumber"] for contact in response.json()["data"]]
    assert response.status_code == 201
    assert answered != sent
    assert sorted(answered) == sent


def test_the_same_seed_draws_the_same_faults() -> None:
    def statuses(seed: int) -> list[int]:
        faults = Faults(rate_429=0.3, rate_503=0.3)
        with Sandbox(faults=faults, seed=seed) as sandbox:
            return [subscribe(sandbox, {"fullPhoneNumber": PHONE}).status_code for _ in range(12)]

    first = statuses(5)

    assert first == statuses(5)
    assert {201, 429, 503} <= set(first)


# --- fault specs ------------------------------------------------------------------------


def test_a_fault_spec_sets_each_fault() -> None:
    spec = (
        "429=0.1, 503=0.05,500=0.05,reset=0.05,slow=0.05,shuffle=0.5,slow_seconds=3,retry_after=0"
    )

    faults = Faults.parse(spec)

    assert faults == Faults(
        rate_429=0.1,
        rate_503=0.05,
        rate_500=0.05,
        rate_reset=0.05,
        rate_slow=0.05,
        rate_shuffle=0.5,
        slow_seconds=3,
        retry_after=0,
    )
    assert Faults.parse(faults.spec()) == faults


def test_a_fault_spec_sets_nodata_and_trickle() -> None:
    faults = Faults.parse("nodata=0.1,trickle=0.2,trickle_ms=250")

    assert faults == Faults(rate_nodata=0.1, rate_trickle=0.2, trickle_ms=250)
    assert Faults.parse(faults.spec()) == faults


def test_an_empty_fault_spec_is_no_faults() -> None:
    assert Faults.parse("") == Faults()
    assert Faults().spec() == ""


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("429=0.1,boom=1", '"boom=1"'),
        ("429", '"429"'),
        ("429=often", '"429=often"'),
        ("503=1.5", '"503=1.5"'),
        ("reset=-0.1", '"reset=-0.1"'),
        ("slow_seconds=-1", '"slow_seconds=-1"'),
        ("retry_after=inf", '"retry_after=inf"'),
        ("shuffle=nan", '"shuffle=nan"'),
        ("429=0.1,429=0.2", '"429=0.2"'),
        ("429=0.6,500=0.6", "add up to 1.2"),
        ("nodata=0.5,trickle=0.6", "add up to 1.1"),
        ("trickle_ms=-5", "in milliseconds"),
    ],
)
def test_a_bad_fault_spec_names_the_bad_part(spec: str, named: str) -> None:
    with pytest.raises(InputError, match=re.escape(named)):
        Faults.parse(spec)
