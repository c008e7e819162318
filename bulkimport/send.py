"""Send one batch end to end: retries, splitting rejected batches, matching answers to rows.

Every subscriber gets exactly one :class:`RowOutcome`. A row is SUBSCRIBED only
when the server's answer names it (by phone number or contact id, never by
position); a row whose fate cannot be known is UNKNOWN, never guessed.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bulkimport.api import AttemptKind, AttemptResult, EngageSparkClient, is_existing_contact
from bulkimport.contacts import RowStatus
from bulkimport.errors import ApiRefused
from bulkimport.retry import RetryPolicy, TransientFailure

log = logging.getLogger(__name__)

NOT_IN_ANSWER = "the API's answer did not include this contact"


@dataclass(frozen=True)
class Subscriber:
    """One row to subscribe: the ledger's row id and the contact as the API takes it."""

    key: int
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class RowOutcome:
    """What became of one row: SUBSCRIBED, FAILED, UNKNOWN or PENDING, and why."""

    key: int
    status: RowStatus
    contact_id: int | None
    reason: str


@dataclass(frozen=True)
class SentAttempt:
    """One POST of a batch (or of part of it): its result, whether reuse was on, which rows."""

    result: AttemptResult
    reuse: bool
    keys: tuple[int, ...]


@dataclass(frozen=True)
class BatchOutcome:
    """The end of one batch: one outcome per subscriber in input order, and every attempt."""

    rows: tuple[RowOutcome, ...]
    attempts: tuple[SentAttempt, ...]
    refused: ApiRefused | None
    unavailable: bool


def _digits(value: object) -> str:
    """Return only the digits of a phone number or id, so ``+63 917`` matches ``63917``."""
    return "".join(char for char in str(value) if char.isdigit()) if value is not None else ""


def _match_key(payload: Mapping[str, Any], existing: bool) -> str:
    """Return what identifies a contact in the server's answer: its id or its number."""
    return _digits(payload.get("id") if existing else payload.get("fullPhoneNumber"))


class _BatchRun:
    """The state of one :func:`subscribe_batch` call while its parts are sent."""

    def __init__(
        self,
        client: EngageSparkClient,
        engagement_id: int,
        subscribers: Sequence[Subscriber],
        *,
        reuse: bool,
        policy: RetryPolicy,
        label: str,
    ) -> None:
        self.client = client
        self.engagement_id = engagement_id
        self.subscribers = subscribers
        self.reuse = reuse
        self.policy = policy
        self.label = label
        self.outcomes: dict[int, RowOutcome] = {}
        self.maybe_sent: set[int] = set()  # positions an attempt may have processed
        self.attempts: list[SentAttempt] = []
        self.refused: ApiRefused | None = None
        self.unavailable = False

    def run(self) -> BatchOutcome:
        """Send every part until each row has an outcome, and return them."""
        parts: deque[list[int]] = deque([list(range(len(self.subscribers)))])
        sent_parts = 0
        while parts:
            part = parts.popleft()
            label = self.label if sent_parts == 0 else f"{self.label}.{sent_parts}"
            sent_parts += 1
            try:
                result = self.policy.retrying(label)(self._attempt, part)
            except TransientFailure as failure:
                self.unavailable = True
                reason = f"the API stayed unavailable (last: {_said(failure.result)})"
                self._settle_unsent([part, *parts], reason)
                break
            if result.kind is AttemptKind.CREATED:
                self._match(part, result)
            elif result.kind is AttemptKind.REJECTED:
                parts.extendleft(reversed(self._narrow(part, result)))
            else:  # REFUSED: the only kind left, transient ones were retried
                self.refused = ApiRefused(result.message, result.status_code)
                self._settle_unsent([part, *parts], result.message)
                break
        return BatchOutcome(
            rows=tuple(self.outcomes[position] for position in range(len(self.subscribers))),
            attempts=tuple(self.attempts),
            refused=self.refused,
            unavailable=self.unavailable,
        )

    def _attempt(self, part: list[int]) -> AttemptResult:
        """POST one part once; raise TransientFailure when it is worth sending again."""
        reuse = self.reuse
        contacts = [self.subscribers[position].payload for position in part]
        result = self.client.post_subscription(self.engagement_id, contacts, reuse=reuse)
        keys = tuple(self.subscribers[position].key for position in part)
        self.attempts.append(SentAttempt(result=result, reuse=reuse, keys=keys))
        if result.kind is AttemptKind.MAYBE_PROCESSED:
            # The lost attempt may have created these contacts: from now on reuse
            # them, for this part and every later part of the batch.
            self.reuse = True
            self.maybe_sent.update(part)
        if result.is_transient:
            raise TransientFailure(result)
        return result

    def _settle(
        self, position: int, status: RowStatus, reason: str, contact_id: int | None = None
    ) -> None:
        key = self.subscribers[position].key
        self.outcomes[position] = RowOutcome(key, status, contact_id, reason)

    def _settle_unsent(self, parts: list[list[int]], reason: str) -> None:
        """Give up on rows without an answer: UNKNOWN if maybe processed, else PENDING."""
        for part in parts:
            for position in part:
                maybe = position in self.maybe_sent
                self._settle(position, RowStatus.UNKNOWN if maybe else RowStatus.PENDING, reason)

    def _match(self, part: list[int], result: AttemptResult) -> None:
        """Mark the rows the answer names SUBSCRIBED (as a multiset), the rest UNKNOWN."""
        existing = is_existing_contact(self.subscribers[part[0]].payload)
        waiting: dict[str, deque[int]] = defaultdict(deque)
        for position in part:
            waiting[_match_key(self.subscribers[position].payload, existing)].append(position)
        for contact in result.data:
            contact_id = contact.get("id")
            queue = waiting.get(_match_key(contact, existing))
            if queue and isinstance(contact_id, int) and not isinstance(contact_id, bool):
                self._settle(queue.popleft(), RowStatus.SUBSCRIBED, "", contact_id)
        for queue in waiting.values():
            for position in queue:
                self._settle(position, RowStatus.UNKNOWN, NOT_IN_ANSWER)

    def _narrow(self, part: list[int], result: AttemptResult) -> list[list[int]]:
        """Fail the row the server blamed and return the parts still to send."""
        reason = _rejection_reason(result)
        if len(part) == 1:
            self._settle(part[0], RowStatus.FAILED, reason)
            return []
        index = result.bad_index
        if index is not None and 0 <= index < len(part):
            self._settle(part[index], RowStatus.FAILED, reason)
            return [part[:index] + part[index + 1 :]]
        middle = len(part) // 2
        return [part[:middle], part[middle:]]


def _said(result: AttemptResult) -> str:
    """Return ``<kind> <status>: <message>`` for a row's reason."""
    return f"{result.describe()}: {result.message}" if result.message else result.describe()


def _rejection_reason(result: AttemptResult) -> str:
    """Return the server's message for a rejected row, or a stand-in when it gave none."""
    return result.message or f"the server rejected this contact ({result.status_code})"


def subscribe_batch(
    client: EngageSparkClient,
    engagement_id: int,
    subscribers: Sequence[Subscriber],
    *,
    reuse: bool,
    policy: RetryPolicy,
    label: str,
) -> BatchOutcome:
    """Subscribe one batch to an engagement and return one outcome per subscriber.

    Transient failures are retried under ``policy``; after an attempt that may
    have been processed, every later attempt reuses existing contacts. A
    rejected batch is narrowed down until only the bad rows fail.
    """
    if not subscribers:
        return BatchOutcome(rows=(), attempts=(), refused=None, unavailable=False)
    if len({is_existing_contact(subscriber.payload) for subscriber in subscribers}) > 1:
        raise ValueError("a batch mixes existing and new contacts: plan them in separate batches")
    outcome = _BatchRun(
        client, engagement_id, subscribers, reuse=reuse, policy=policy, label=label
    ).run()
    log.debug(
        "batch %s: %s in %d attempts",
        label,
        ", ".join(
            f"{sum(row.status is status for row in outcome.rows)} {status}"
            for status in (
                RowStatus.SUBSCRIBED,
                RowStatus.FAILED,
                RowStatus.UNKNOWN,
                RowStatus.PENDING,
            )
        ),
        len(outcome.attempts),
    )
    return outcome
