"""One batch end to end: retries with reuse, splitting rejections, matching answers to rows."""

from __future__ import annotations

import itertools
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from bulkimport.contacts import RowStatus
from bulkimport.errors import RefusalCause
from bulkimport.sandbox import Faults, Sandbox
from bulkimport.send.batch import (
    EVERY_PART_REJECTED,
    NOT_IN_ANSWER,
    STOPPED_BEFORE_RESENT,
    STOPPED_BEFORE_SENT,
    BatchOutcome,
    Subscriber,
    subscribe_batch,
)
from bulkimport.send.client import AttemptKind, AttemptResult, EngageSparkClient, Timeouts
from bulkimport.send.retry import RetryPolicy

FAST = RetryPolicy(max_attempts=5, backoff_base=0, sleep=lambda seconds: None)
PATIENT = RetryPolicy(max_attempts=40, backoff_base=0, sleep=lambda seconds: None)


def result(
    kind: AttemptKind,
    status: int | None,
    *,
    data: Sequence[dict[str, Any]] = (),
    message: str = "",
    bad_index: int | None = None,
    retry_after: float | None = None,
    cause: RefusalCause | None = None,
) -> AttemptResult:
    return AttemptResult(
        kind=kind,
        status_code=status,
        data=list(data),
        message=message,
        bad_index=bad_index,
        retry_after=retry_after,
        duration=0.01,
        started_at=0.0,
        cause=cause,
    )


THROTTLED = result(AttemptKind.NOT_PROCESSED, 429, message="Request was throttled")
LOST = result(AttemptKind.MAYBE_PROCESSED, None, message="ReadTimeout: timed out")
Responder = Callable[[list[Mapping[str, Any]], bool], AttemptResult]


class ScriptedClient(EngageSparkClient):
    """A client whose answers come from a script instead of the network."""

    def __init__(self, *answers: AttemptResult | Responder) -> None:
        super().__init__("test-key", "http://127.0.0.1:9/api/v1")
        self.answers = list(answers)
        self.calls: list[tuple[list[Mapping[str, Any]], bool]] = []

    def post_subscription(
        self, engagement_id: int, contacts: Sequence[Mapping[str, Any]], *, reuse: bool
    ) -> AttemptResult:
        sent = list(contacts)
        self.calls.append((sent, reuse))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer if isinstance(answer, AttemptResult) else answer(sent, reuse)


def created_for(first_id: int = 100) -> Responder:
    """Answer 201 with one contact per sent contact, ids counting up from ``first_id``."""
    ids = itertools.count(first_id)

    def respond(contacts: list[Mapping[str, Any]], reuse: bool) -> AttemptResult:
        data = [{"id": next(ids), "fullPhoneNumber": c["fullPhoneNumber"]} for c in contacts]
        return result(AttemptKind.CREATED, 201, data=data)

    return respond


def people(*phones: str) -> list[Subscriber]:
    return [
        Subscriber(key=10 + n, payload={"fullPhoneNumber": phone, "firstName": f"P{n}"})
        for n, phone in enumerate(phones)
    ]


def send(
    client: EngageSparkClient,
    subscribers: Sequence[Subscriber],
    *,
    reuse: bool = False,
    policy: RetryPolicy = FAST,
) -> BatchOutcome:
    return subscribe_batch(client, 1234, subscribers, reuse=reuse, policy=policy, label="7")


def statuses(outcome: BatchOutcome) -> list[RowStatus]:
    return [row.status for row in outcome.rows]


# --- matching answers to rows --------------------------------------------------------


def test_a_shuffled_answer_is_matched_by_phone_not_position() -> None:
    data = [
        {"id": 3, "fullPhoneNumber": "639170000003"},
        {"id": 1, "fullPhoneNumber": "639170000001"},
        {"id": 2, "fullPhoneNumber": "639170000002"},
    ]
    client = ScriptedClient(result(AttemptKind.CREATED, 201, data=data))
    outcome = send(client, people("639170000001", "639170000002", "639170000003"))
    assert [(row.key, row.status, row.contact_id) for row in outcome.rows] == [
        (10, RowStatus.SUBSCRIBED, 1),
        (11, RowStatus.SUBSCRIBED, 2),
        (12, RowStatus.SUBSCRIBED, 3),
    ]
    assert not outcome.unavailable
    assert outcome.refused is None


def test_the_same_number_twice_is_matched_as_a_multiset() -> None:
    data = [
        {"id": 8, "fullPhoneNumber": "639170000001"},
        {"id": 9, "fullPhoneNumber": "639170000002"},
        {"id": 7, "fullPhoneNumber": "639170000001"},
    ]
    client = ScriptedClient(result(AttemptKind.CREATED, 201, data=data))
    outcome = send(client, people("639170000001", "639170000002", "639170000001"))
    assert statuses(outcome) == [RowStatus.SUBSCRIBED] * 3
    assert {outcome.rows[0].contact_id, outcome.rows[2].contact_id} == {7, 8}
    assert outcome.rows[1].contact_id == 9


def test_numbers_are_compared_by_digits_only() -> None:
    data = [{"id": 5, "fullPhoneNumber": "+63 917 000 0001"}]
    client = ScriptedClient(result(AttemptKind.CREATED, 201, data=data))
    outcome = send(client, people("639170000001"))
    assert outcome.rows[0].contact_id == 5


def test_a_row_missing_from_the_answer_is_unknown() -> None:
    data: list[dict[str, Any]] = [
        {"id": 1, "fullPhoneNumber": "639170000001"},
        {"id": 9, "fullPhoneNumber": "639179999999"},
        {"fullPhoneNumber": "639170000003"},
    ]
    client = ScriptedClient(result(AttemptKind.CREATED, 201, data=data))
    outcome = send(client, people("639170000001", "639170000002", "639170000003"))
    assert statuses(outcome) == [RowStatus.SUBSCRIBED, RowStatus.UNKNOWN, RowStatus.UNKNOWN]
    assert outcome.rows[1].reason == NOT_IN_ANSWER
    assert outcome.rows[1].contact_id is None


def test_existing_contacts_are_matched_by_id() -> None:
    subscribers = [Subscriber(key=1, payload={"id": 501}), Subscriber(key=2, payload={"id": 502})]
    data = [
        {"id": 502, "fullPhoneNumber": "639170000002"},
        {"id": 501, "fullPhoneNumber": "639170000001"},
    ]
    client = ScriptedClient(result(AttemptKind.CREATED, 201, data=data))
    outcome = send(client, subscribers)
    assert [(row.key, row.contact_id) for row in outcome.rows] == [(1, 501), (2, 502)]
    assert client.calls[0][0] == [{"id": 501}, {"id": 502}]


# --- retries and reuse ---------------------------------------------------------------


def test_after_a_maybe_processed_attempt_every_later_attempt_reuses() -> None:
    client = ScriptedClient(THROTTLED, LOST, THROTTLED, created_for())
    outcome = send(client, people("639170000001", "639170000002"), reuse=False)
    assert [reuse for _, reuse in client.calls] == [False, False, True, True]
    assert [(a.result.kind, a.reuse) for a in outcome.attempts] == [
        (AttemptKind.NOT_PROCESSED, False),
        (AttemptKind.MAYBE_PROCESSED, False),
        (AttemptKind.NOT_PROCESSED, True),
        (AttemptKind.CREATED, True),
    ]
    assert all(a.keys == (10, 11) for a in outcome.attempts)
    assert statuses(outcome) == [RowStatus.SUBSCRIBED] * 2


def test_not_processed_attempts_leave_reuse_off() -> None:
    client = ScriptedClient(THROTTLED, THROTTLED, created_for())
    send(client, people("639170000001"), reuse=False)
    assert [reuse for _, reuse in client.calls] == [False, False, False]


def test_reuse_asked_for_is_used_from_the_first_attempt() -> None:
    client = ScriptedClient(created_for())
    send(client, people("639170000001"), reuse=True)
    assert client.calls[0][1] is True


def test_exhausted_without_a_maybe_leaves_rows_pending() -> None:
    client = ScriptedClient(THROTTLED)
    outcome = send(client, people("639170000001", "639170000002"))
    assert len(client.calls) == FAST.max_attempts
    assert outcome.unavailable
    assert statuses(outcome) == [RowStatus.PENDING] * 2
    assert "not_processed 429" in outcome.rows[0].reason
    assert "Request was throttled" in outcome.rows[0].reason


def test_exhausted_after_a_maybe_leaves_rows_unknown() -> None:
    client = ScriptedClient(LOST, THROTTLED)
    outcome = send(client, people("639170000001"))
    assert outcome.unavailable
    assert statuses(outcome) == [RowStatus.UNKNOWN]
    assert "not_processed 429" in outcome.rows[0].reason


# --- rejections ----------------------------------------------------------------------


def test_a_rejection_with_an_index_fails_that_row_and_resends_the_rest() -> None:
    bad = result(AttemptKind.REJECTED, 400, message="Invalid phone number", bad_index=1)
    client = ScriptedClient(bad, created_for())
    outcome = send(client, people("639170000001", "999", "639170000003"))
    assert statuses(outcome) == [RowStatus.SUBSCRIBED, RowStatus.FAILED, RowStatus.SUBSCRIBED]
    assert outcome.rows[1].reason == "Invalid phone number"
    assert [c["fullPhoneNumber"] for c in client.calls[1][0]] == ["639170000001", "639170000003"]
    assert len(client.calls) == 2


def rejects_999(contacts: list[Mapping[str, Any]], reuse: bool) -> AttemptResult:
    """Reject any batch holding a number that starts with 999, without saying which."""
    if any(str(c["fullPhoneNumber"]).startswith("999") for c in contacts):
        return result(AttemptKind.REJECTED, 400, message="Invalid phone number")
    data = [
        {"id": 1000 + n, "fullPhoneNumber": c["fullPhoneNumber"]} for n, c in enumerate(contacts)
    ]
    return result(AttemptKind.CREATED, 201, data=data)


def test_a_rejection_without_an_index_is_split_until_the_bad_row_fails_alone() -> None:
    phones = [f"6391700000{n:02d}" for n in range(8)]
    phones[5] = "999123"
    client = ScriptedClient(rejects_999)
    outcome = send(client, people(*phones))
    expected = [RowStatus.SUBSCRIBED] * 8
    expected[5] = RowStatus.FAILED
    assert statuses(outcome) == expected
    assert outcome.rows[5].reason == "Invalid phone number"
    # 8 -> 4+4 -> 2+2 -> 1+1: seven requests, the good halves sent once each.
    assert len(client.calls) == 7


def test_a_rejection_is_never_retried() -> None:
    client = ScriptedClient(result(AttemptKind.REJECTED, 422, message="Unprocessable"))
    outcome = send(client, people("999"))
    assert len(client.calls) == 1
    assert statuses(outcome) == [RowStatus.FAILED]
    assert outcome.rows[0].reason == "Unprocessable"


def test_an_index_outside_the_batch_is_ignored_and_the_batch_split() -> None:
    bad = result(AttemptKind.REJECTED, 400, message="bad", bad_index=9)
    client = ScriptedClient(bad, created_for())
    outcome = send(client, people("639170000001", "639170000002"))
    assert statuses(outcome) == [RowStatus.SUBSCRIBED] * 2
    assert [len(contacts) for contacts, _ in client.calls] == [2, 1, 1]


def test_a_rejection_without_a_message_still_gives_a_reason() -> None:
    client = ScriptedClient(result(AttemptKind.REJECTED, 400))
    outcome = send(client, people("999"))
    assert outcome.rows[0].reason == "the server rejected this contact (400)"


def test_a_batch_rejected_whole_the_same_way_stops_splitting_after_its_halves() -> None:
    everything = result(AttemptKind.REJECTED, 400, message="Bad Request")
    client = ScriptedClient(everything)
    outcome = send(client, people(*[f"6391700000{n:02d}" for n in range(16)]))
    # The batch, then its two halves; not 2 * 16 - 1 requests down to single rows.
    assert [len(contacts) for contacts, _ in client.calls] == [16, 8, 8]
    assert statuses(outcome) == [RowStatus.FAILED] * 16
    assert {row.reason for row in outcome.rows} == {f"Bad Request ({EVERY_PART_REJECTED})"}


def test_a_half_rejected_otherwise_goes_on_splitting_both() -> None:
    answers = iter(["Bad Request", "Bad Request", "Invalid phone number"])

    def respond(contacts: list[Mapping[str, Any]], reuse: bool) -> AttemptResult:
        message = next(answers, None)
        if message is None:
            return rejects_999(contacts, reuse)
        return result(AttemptKind.REJECTED, 400, message=message)

    phones = [f"6391700000{n:02d}" for n in range(4)]
    phones[1] = "999123"
    client = ScriptedClient(respond)
    outcome = send(client, people(*phones))
    # [4] -> [0, 999] like its parent (held) -> [2, 3] otherwise: both are split further.
    assert statuses(outcome) == [
        RowStatus.SUBSCRIBED,
        RowStatus.FAILED,
        RowStatus.SUBSCRIBED,
        RowStatus.SUBSCRIBED,
    ]
    assert outcome.rows[1].reason == "Invalid phone number"
    assert [len(contacts) for contacts, _ in client.calls] == [4, 2, 2, 1, 1, 1, 1]


def test_a_refusal_while_a_half_is_held_leaves_that_half_pending() -> None:
    rejected = result(AttemptKind.REJECTED, 400, message="Bad Request")
    refused = result(AttemptKind.REFUSED, 401, message="The API key was refused")
    client = ScriptedClient(rejected, rejected, refused)
    outcome = send(client, people(*[f"6391700000{n:02d}" for n in range(4)]))
    assert statuses(outcome) == [RowStatus.PENDING] * 4
    assert len(client.calls) == 3


# --- answers that name too few contacts ----------------------------------------------


def test_an_accepted_answer_is_never_posted_again_and_its_rows_are_unknown() -> None:
    accepted = result(AttemptKind.ACCEPTED, 204, message="the answer named no contacts")
    client = ScriptedClient(accepted, created_for())
    outcome = send(client, people("639170000001", "639170000002"))
    assert len(client.calls) == 1
    assert statuses(outcome) == [RowStatus.UNKNOWN] * 2
    assert "named no contacts" in outcome.rows[0].reason
    assert not outcome.unavailable


def test_an_answer_naming_too_few_contacts_says_so() -> None:
    data = [{"id": 5, "fullPhoneNumber": "639170000002"}]
    client = ScriptedClient(result(AttemptKind.CREATED, 201, data=data))
    outcome = send(client, people("639170000001", "639170000002", "639170000003"))
    assert statuses(outcome) == [RowStatus.UNKNOWN, RowStatus.SUBSCRIBED, RowStatus.UNKNOWN]
    assert "too few contacts (1 for 3)" in outcome.rows[0].reason


# --- a server that asks to wait too long; a run asked to stop -------------------------


def test_a_wait_beyond_the_cap_stops_the_batch_and_asks_the_run_to_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bulkimport.send.batch")
    asks = result(AttemptKind.NOT_PROCESSED, 429, message="throttled", retry_after=999999)
    client = ScriptedClient(asks, created_for())
    outcome = send(client, people("639170000001", "639170000002"))
    assert len(client.calls) == 1
    assert statuses(outcome) == [RowStatus.PENDING] * 2
    assert outcome.stop_reason is not None
    assert "11 days" in outcome.stop_reason
    assert "11 days" in outcome.rows[0].reason
    assert "the API asks to wait 11 days: stopping; retry later" in caplog.text


def test_the_stop_reason_is_none_when_the_api_stays_unavailable() -> None:
    outcome = send(ScriptedClient(THROTTLED), people("639170000001"))
    assert outcome.unavailable
    assert outcome.stop_reason is None


def test_a_stop_before_the_batch_sends_nothing() -> None:
    stop = threading.Event()
    stop.set()
    client = ScriptedClient(created_for())
    outcome = send(client, people("639170000001"), policy=FAST.with_stop(stop))
    assert client.calls == []
    assert statuses(outcome) == [RowStatus.PENDING]
    assert outcome.rows[0].reason == STOPPED_BEFORE_SENT
    assert not outcome.unavailable
    assert outcome.stop_reason is None


@pytest.mark.parametrize(
    ("first", "status"), [(THROTTLED, RowStatus.PENDING), (LOST, RowStatus.UNKNOWN)]
)
def test_a_stop_during_a_backoff_starts_no_further_attempt(
    first: AttemptResult, status: RowStatus
) -> None:
    stop = threading.Event()
    policy = RetryPolicy(max_attempts=5, backoff_base=0, sleep=lambda seconds: stop.set())
    client = ScriptedClient(first, created_for())
    outcome = send(client, people("639170000001"), policy=policy.with_stop(stop))
    assert len(client.calls) == 1
    assert statuses(outcome) == [status]
    assert outcome.rows[0].reason == STOPPED_BEFORE_RESENT


def test_a_stop_between_parts_of_a_split_batch_leaves_the_rest_unsent() -> None:
    stop = threading.Event()

    def respond(contacts: list[Mapping[str, Any]], reuse: bool) -> AttemptResult:
        answer = rejects_999(contacts, reuse)
        if answer.kind is AttemptKind.CREATED:
            stop.set()
        return answer

    client = ScriptedClient(respond)
    phones = ["639170000001", "639170000002", "999", "639170000004"]
    outcome = send(client, people(*phones), policy=FAST.with_stop(stop))
    # [4] rejected -> [1, 2] created (the stop comes) -> [999, 4] never sent.
    assert len(client.calls) == 2
    assert statuses(outcome) == [
        RowStatus.SUBSCRIBED,
        RowStatus.SUBSCRIBED,
        RowStatus.PENDING,
        RowStatus.PENDING,
    ]
    assert outcome.rows[3].reason == STOPPED_BEFORE_RESENT


# --- refusals ------------------------------------------------------------------------


def test_a_refusal_stops_and_leaves_unconfirmed_rows_pending() -> None:
    refused = result(
        AttemptKind.REFUSED,
        402,
        message="top up your engageSPARK balance",
        cause=RefusalCause.FUNDS,
    )
    phones = ["639170000001", "639170000002", "639170000003", "999", "639170000005"]
    client = ScriptedClient(rejects_999, rejects_999, rejects_999, refused)
    outcome = send(client, people(*phones))
    # 5 rejected -> [1, 2] created -> [3, 999, 5] rejected -> [3] refused: 999 and 5 unsent.
    assert statuses(outcome) == [
        RowStatus.SUBSCRIBED,
        RowStatus.SUBSCRIBED,
        RowStatus.PENDING,
        RowStatus.PENDING,
        RowStatus.PENDING,
    ]
    assert outcome.refused is not None
    assert outcome.refused.status == 402
    assert outcome.refused.cause is RefusalCause.FUNDS
    assert str(outcome.refused) == "top up your engageSPARK balance"
    assert outcome.rows[3].reason == "top up your engageSPARK balance"
    assert len(client.calls) == 4
    assert not outcome.unavailable


def test_a_refusal_after_a_maybe_leaves_those_rows_unknown() -> None:
    refused = result(AttemptKind.REFUSED, 401, message="The API key was refused")
    client = ScriptedClient(LOST, refused)
    outcome = send(client, people("639170000001"))
    assert statuses(outcome) == [RowStatus.UNKNOWN]
    assert outcome.refused is not None


# --- shapes --------------------------------------------------------------------------


def test_an_empty_batch_sends_nothing() -> None:
    client = ScriptedClient(created_for())
    outcome = send(client, [])
    assert outcome == BatchOutcome(rows=(), attempts=(), refused=None, unavailable=False)
    assert outcome.stop_reason is None
    assert client.calls == []


def test_a_batch_mixing_existing_and_new_contacts_is_a_value_error() -> None:
    client = ScriptedClient(created_for())
    mixed = [Subscriber(1, {"id": 5}), *people("639170000001")]
    with pytest.raises(ValueError, match="mixes existing and new"):
        send(client, mixed)
    assert client.calls == []


# --- against the sandbox over a real socket ------------------------------------------


@pytest.fixture
def sandbox_client() -> Iterator[Callable[[Sandbox, str], EngageSparkClient]]:
    clients: list[EngageSparkClient] = []

    def connect(sandbox: Sandbox, token: str) -> EngageSparkClient:
        client = EngageSparkClient(token, sandbox.url, Timeouts(connect=1, read=0.2))
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"63917{n:07d}" for n in range(start, start + count)]


@pytest.mark.parametrize(
    "faults",
    [
        Faults(rate_429=0.5, retry_after=0),
        Faults(rate_503=0.5, retry_after=0),
        Faults(rate_500=0.5),
        Faults(rate_reset=0.5),
        Faults(rate_slow=0.5, slow_seconds=0.4),
        Faults(rate_429=0.2, rate_500=0.2, rate_reset=0.2, rate_shuffle=0.5, retry_after=0),
    ],
    ids=["429", "503", "500", "reset", "slow", "mixed"],
)
def test_under_faults_every_number_gets_exactly_one_contact(
    faults: Faults, sandbox_client: Callable[[Sandbox, str], EngageSparkClient]
) -> None:
    phones = numbers(24)
    with Sandbox(faults=faults, seed=7) as sandbox:
        client = sandbox_client(sandbox, "sandbox-token")
        outcomes = [
            send(client, people(*phones[start : start + 6]), reuse=False, policy=PATIENT)
            for start in range(0, len(phones), 6)
        ]
        rows = [row for outcome in outcomes for row in outcome.rows]
        assert [row.status for row in rows] == [RowStatus.SUBSCRIBED] * len(phones)
        for phone, row in zip(phones, rows, strict=True):
            [only] = sandbox.contacts_for(phone)
            assert row.contact_id == only["id"]
        assert sandbox.contact_count() == len(phones)
        attempts = [attempt for outcome in outcomes for attempt in outcome.attempts]
        assert len(attempts) > len(outcomes), "the faults made some attempts fail"
        assert sandbox.request_count() == len(attempts)


def test_shuffled_answers_are_matched_to_the_right_rows(
    sandbox_client: Callable[[Sandbox, str], EngageSparkClient],
) -> None:
    phones = numbers(30)
    with Sandbox(faults=Faults(rate_shuffle=1.0), seed=3) as sandbox:
        outcome = send(sandbox_client(sandbox, "sandbox-token"), people(*phones))
        for phone, row in zip(phones, outcome.rows, strict=True):
            assert row.contact_id == sandbox.contacts_for(phone)[0]["id"]
        answered = [contact["fullPhoneNumber"] for contact in outcome.attempts[0].result.data]
        assert answered != phones, "the sandbox shuffled its answer"
        assert sorted(answered) == phones


def test_existing_contacts_are_subscribed_by_id_over_the_socket(
    sandbox_client: Callable[[Sandbox, str], EngageSparkClient],
) -> None:
    phones = numbers(5)
    with Sandbox(faults=Faults(rate_shuffle=1.0), seed=1) as sandbox:
        client = sandbox_client(sandbox, "sandbox-token")
        created = send(client, people(*phones))
        ids = [row.contact_id for row in created.rows if row.contact_id is not None]
        assert len(ids) == 5
        existing = [Subscriber(key=n, payload={"id": cid}) for n, cid in enumerate(ids)]
        outcome = send(client, existing)
        assert [row.contact_id for row in outcome.rows] == ids
        assert sandbox.contact_count() == 5
        assert sorted(sandbox.subscriptions(1234)) == sorted(ids * 2)


@pytest.mark.parametrize("report_bad_index", [True, False])
def test_one_bad_row_in_a_hundred_fails_alone(
    report_bad_index: bool, sandbox_client: Callable[[Sandbox, str], EngageSparkClient]
) -> None:
    phones = numbers(100)
    phones[37] = "999170000037"
    with Sandbox(report_bad_index=report_bad_index) as sandbox:
        outcome = send(sandbox_client(sandbox, "sandbox-token"), people(*phones))
        expected = [RowStatus.SUBSCRIBED] * 100
        expected[37] = RowStatus.FAILED
        assert statuses(outcome) == expected
        assert outcome.rows[37].reason.startswith("Invalid phone number")
        assert sandbox.contact_count() == 99
        # With the index: the batch, then the 99 others. Without: the batch, then two
        # halves per level for the six levels it takes to get row 37 alone (100 -> 1).
        assert sandbox.request_count() == (2 if report_bad_index else 1 + 2 * 6)


def test_a_wrong_key_stops_after_one_request(
    sandbox_client: Callable[[Sandbox, str], EngageSparkClient],
) -> None:
    with Sandbox() as sandbox:
        outcome = send(sandbox_client(sandbox, "not-the-key"), people(*numbers(10)))
        assert sandbox.request_count() == 1
        assert sandbox.contact_count() == 0
    assert statuses(outcome) == [RowStatus.PENDING] * 10
    assert outcome.refused is not None
    assert outcome.refused.status == 401
    assert "ENGAGESPARK_API_KEY" in str(outcome.refused)
    assert "not-the-key" not in str(outcome.refused)


def test_insufficient_funds_stop_the_batch(
    sandbox_client: Callable[[Sandbox, str], EngageSparkClient],
) -> None:
    with Sandbox() as sandbox:
        sandbox.set_funds(False)
        outcome = send(sandbox_client(sandbox, "sandbox-token"), people(*numbers(3)))
    assert outcome.refused is not None
    assert outcome.refused.status == 402
    assert "bulkimport retry" in outcome.rows[0].reason


def test_a_port_nobody_listens_on_leaves_rows_pending() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with EngageSparkClient("sandbox-token", f"http://127.0.0.1:{port}/api/v1") as client:
        outcome = send(client, people(*numbers(3)))
    assert [a.result.kind for a in outcome.attempts] == [AttemptKind.NOT_PROCESSED] * 5
    assert outcome.unavailable
    assert statuses(outcome) == [RowStatus.PENDING] * 3
