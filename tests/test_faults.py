"""Imports under every fault the API can throw, killed and resumed at random moments.

A seeded random walk of at least 200 steps. Each step runs `run` on one of a
growing set of exports (or `retry`) against the sandbox, while the sandbox
answers with 429, 503, 500, connection resets, slow answers (the client's
read timeout is shorter) and shuffled results, and while the run is killed at
a random instant: in a worker before its request leaves or after the answer
came back (the answer is lost), or in the main thread after a batch was
recorded. A kill is a BaseException raised where the process would have died,
so nothing after it runs: rows stay ``sending`` exactly as after ``kill -9``.

Contacts are always created (``--always-create``), so only the ledger's
resend-with-reuse of rows whose fate is unknown keeps numbers from getting a
second contact. After every step:

- no input number has more than one contact on the sandbox;
- every row the ledger calls ``subscribed`` is, on the sandbox, a contact of
  that number with that id and subscribed to the engagement;
- no valid row is lost: each is pending, sending, unknown, subscribed or
  skipped, and invalid and duplicate rows stay what they are.

At the end the faults stop, everything is resumed to completion, and each
number has exactly one contact.
"""

from __future__ import annotations

import logging
import random
import socket
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bulkimport.errors import ExitCode
from bulkimport.jobs.importing import retry_rows, run_import
from bulkimport.jobs.sending import Sender
from bulkimport.jobs.summary import RunSummary
from bulkimport.ledger.store import Ledger
from bulkimport.rows.phones import PhonePolicy
from bulkimport.rows.prepare import ImportOptions
from bulkimport.sandbox import NO_FAULTS, SANDBOX_TOKEN, Faults, Sandbox
from bulkimport.send.client import AttemptResult, EngageSparkClient, Timeouts
from bulkimport.send.retry import RetryPolicy
from bulkimport.settings import SendSettings

SEED = 20250301
STEPS = 220
ENGAGEMENT = 1234
POOL = [f"0917 {n:03d} {n * 7 % 10000:04d}" for n in range(100, 600)]
OPTIONS = ImportOptions(phones=PhonePolicy(country="PH"))
SENDABLE_OR_DONE = {"pending", "sending", "unknown", "subscribed", "skipped"}


def international(national: str) -> str:
    """Return ``0917 123 4567`` as the API stores it: ``639171234567``."""
    return "63" + national.replace(" ", "")[1:]


class Killed(BaseException):
    """The process dying at this instant: like SIGKILL, no handler catches it."""


@dataclass
class Kill:
    """Where the run dies: at the ``at``-th attempt or recorded batch, if anywhere."""

    where: str = "nowhere"  # "before request", "after answer", "after record", "stop"
    at: int = 0
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reached(self, where: str) -> bool:
        """Count one event of kind ``where`` and return whether this is the one to die at."""
        if where != self.where:
            return False
        with self.lock:
            self.count += 1
            return self.count == self.at


class DyingClient(EngageSparkClient):
    """The real client, dying before a request leaves or just after its answer arrives."""

    def __init__(self, url: str, kill: Kill) -> None:
        super().__init__(SANDBOX_TOKEN, url, Timeouts(connect=1.0, read=0.05))
        self.kill = kill

    def post_subscription(
        self, engagement_id: int, contacts: Sequence[Mapping[str, Any]], *, reuse: bool
    ) -> AttemptResult:
        if self.kill.reached("before request"):
            raise Killed
        result = super().post_subscription(engagement_id, contacts, reuse=reuse)
        if self.kill.reached("after answer"):
            raise Killed  # the API processed the batch; the answer dies with the process
        return result


class DyingProgress:
    """Progress that dies (or asks to stop, like a first Ctrl-C) after a batch is recorded."""

    def __init__(self, kill: Kill, stop: threading.Event) -> None:
        self.kill = kill
        self.stop = stop

    def begin(self, total: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        if self.kill.reached("after record"):
            raise Killed  # other batches are still in flight: their rows stay sending
        if self.kill.reached("stop"):
            self.stop.set()

    def end(self) -> None:
        pass


@dataclass
class Export:
    """An input file and what each of its rows must be in the ledger."""

    path: Path
    valid: dict[int, str]  # row number: international number
    invalid: set[int]
    duplicate: set[int]


class World:
    """The sandbox, the ledger and the exports of one random walk."""

    def __init__(self, sandbox: Sandbox, folder: Path, rng: random.Random) -> None:
        self.sandbox = sandbox
        self.folder = folder
        self.ledger = folder / "ledger.sqlite"
        self.rng = rng
        self.exports: list[Export] = []
        self.imported: list[Export] = []  # every valid row of these is in the ledger
        self.kills = 0
        self._contacts: dict[str, list[int]] = {}
        self.statuses_seen: set[str] = set()

    def new_export(self) -> Export:
        """Write an export of 6 to 18 people from the pool, with an invalid and a repeat."""
        rng = self.rng
        people = rng.sample(POOL, rng.randint(6, 18))
        lines = ["Name,Mobile"]
        valid: dict[int, str] = {}
        invalid: set[int] = set()
        duplicate: set[int] = set()
        for person in people:
            row = len(lines) + 1
            lines.append(f"P{row} Q{len(self.exports)},{person}")
            valid[row] = international(person)
            if rng.random() < 0.2:
                lines.append(f"Again {row},{person}")
                duplicate.add(row + 1)
            if rng.random() < 0.1:
                lines.append(f"Nobody {row},12345")
                invalid.add(len(lines))
        path = self.folder / f"export-{len(self.exports):03d}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        export = Export(path, valid, invalid, duplicate)
        self.exports.append(export)
        return export

    def faults(self) -> Faults:
        """Return a random mix of every fault kind, at most half the requests failing."""
        rng = self.rng
        rates = [rng.choice([0.0, 0.05, 0.1, 0.2]) for _ in range(5)]
        scale = min(1.0, 0.5 / (sum(rates) or 1))
        rate_429, rate_503, rate_500, rate_reset, rate_slow = (rate * scale for rate in rates)
        return Faults(
            rate_429=rate_429,
            rate_503=rate_503,
            rate_500=rate_500,
            rate_reset=rate_reset,
            rate_slow=rate_slow,
            slow_seconds=0.15,
            rate_shuffle=rng.choice([0.0, 0.5, 1.0]),
            retry_after=0,
        )

    def kill(self) -> Kill:
        rng = self.rng
        where = rng.choice(
            ["before request", "after answer", "after answer", "after record", "stop", "nowhere"]
        )
        return Kill(where, at=rng.randint(1, 3))

    def step(self) -> None:
        """Run `run` on an export (sometimes a new one) or `retry`, with faults and a kill."""
        rng = self.rng
        self.sandbox.set_faults(self.faults())
        kill = self.kill()
        stop = threading.Event()
        client = DyingClient(self.sandbox.url, kill)
        sender = Sender(
            client,
            policy=RetryPolicy(
                max_attempts=rng.randint(1, 4), backoff_base=0, sleep=lambda seconds: None
            ),
            progress=DyingProgress(kill, stop),
            stop=stop,
            failures_to_stop=rng.randint(1, 3),
        )
        settings = SendSettings(
            ENGAGEMENT,
            api_url=self.sandbox.url,
            reuse=False,
            batch_size=rng.randint(1, 4),
            concurrency=rng.randint(1, 3),
            timeout=0.05,
        )
        book = Ledger.open(self.ledger)
        try:
            if not self.exports or rng.random() < 0.35:
                self.import_(self.new_export(), settings, book, sender)
            elif rng.random() < 0.25:
                retry_rows(book, settings, sender)
            else:
                self.import_(rng.choice(self.exports), settings, book, sender)
        except Killed:
            self.kills += 1
        finally:
            book.close()  # a dead process's connection is gone; the next step opens anew
            client.close()

    def import_(
        self, export: Export, settings: SendSettings, book: Ledger, sender: Sender
    ) -> RunSummary:
        try:
            return run_import([export.path], OPTIONS, settings, book, sender)
        finally:
            # Kills strike while sending, when every row of the file is already recorded.
            if export not in self.imported:
                self.imported.append(export)

    def ledger_rows(self) -> dict[tuple[str, int], list[tuple[str, int | None, str | None]]]:
        """Return (status, contact id, phone) of every ledger row, by (file, row number)."""
        found: dict[tuple[str, int], list[tuple[str, int | None, str | None]]] = {}
        # Read-only and without decoding every row's cells: this runs after every step.
        db = sqlite3.connect(f"{self.ledger.as_uri()}?mode=ro", uri=True)
        try:
            for path, number, status, contact_id, phone in db.execute(
                "SELECT s.path, r.row_number, r.status, r.contact_id, r.phone "
                "FROM rows r JOIN sources s ON s.id = r.source_id"
            ):
                found.setdefault((path, number), []).append((status, contact_id, phone))
        finally:
            db.close()
        return found

    def contacts(self) -> dict[str, list[int]]:
        """Return the ids of the sandbox's contacts for every number that has any."""
        counts: dict[str, int] = self.sandbox.state()["contactsPerNumber"]
        for phone, count in counts.items():
            # A contact never changes once created: ask again only when a number gained one.
            if len(self._contacts.get(phone, ())) != count:
                self._contacts[phone] = [c["id"] for c in self.sandbox.contacts_for(phone)]
        return {phone: list(self._contacts.get(phone, ())) for phone in map(international, POOL)}

    def check_invariants(self, step: int) -> None:
        contacts = self.contacts()
        doubled = {phone: ids for phone, ids in contacts.items() if len(ids) > 1}
        assert doubled == {}, f"step {step}: numbers with more than one contact"

        rows = self.ledger_rows()
        self.statuses_seen.update(status for states in rows.values() for status, _, _ in states)
        subscribed = set(self.sandbox.subscriptions(ENGAGEMENT))
        for key, states in rows.items():
            for status, contact_id, phone in states:
                if status == "subscribed":
                    assert phone is not None, (step, key)
                    assert contact_id in contacts[phone], (step, key)
                    assert contact_id in subscribed, (step, key)

        for export in self.imported:
            name = str(export.path)
            for number in export.valid:
                statuses = {status for status, _, _ in rows.get((name, number), [])}
                assert statuses, f"step {step}: {name} row {number} is missing from the ledger"
                assert statuses <= SENDABLE_OR_DONE, (step, name, number, statuses)
            for number in export.invalid:
                assert {s for s, _, _ in rows[(name, number)]} == {"invalid"}, (step, number)
            for number in export.duplicate:
                assert {s for s, _, _ in rows[(name, number)]} == {"duplicate"}, (step, number)

    def attempts(self) -> tuple[set[int | None], str]:
        """Return the status codes of the recorded attempts and all their messages."""
        db = sqlite3.connect(f"{self.ledger.as_uri()}?mode=ro", uri=True)
        try:
            found = db.execute("SELECT status_code, message FROM attempts").fetchall()
        finally:
            db.close()
        return {code for code, _ in found}, "\n".join(message for _, message in found)

    def finish(self) -> None:
        """Stop the faults and resume until no row is left pending, sending or unknown."""
        self.sandbox.set_faults(NO_FAULTS)
        settings = SendSettings(ENGAGEMENT, api_url=self.sandbox.url, reuse=False)
        policy = RetryPolicy(backoff_base=0, sleep=lambda seconds: None)
        for _ in range(3):
            book = Ledger.open(self.ledger)
            client = EngageSparkClient(SANDBOX_TOKEN, self.sandbox.url)
            try:
                for export in self.exports:
                    self.import_(export, settings, book, Sender(client, policy=policy))
                retry_rows(book, settings, Sender(client, policy=policy))
                open_rows = {s: n for s, n in book.counts().items() if s in OPEN}
            finally:
                book.close()
                client.close()
            if not open_rows:
                return
        raise AssertionError(f"rows still open after resuming: {open_rows}")


OPEN = {"pending", "sending", "unknown"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with Sandbox(engagements=(ENGAGEMENT,), seed=SEED) as sandbox:
        yield World(sandbox, tmp_path, random.Random(SEED))


def test_killed_and_resumed_under_every_fault_no_row_is_lost_or_doubled(world: World) -> None:
    for step in range(STEPS):
        world.step()
        world.check_invariants(step)
    # The walk went everywhere it should: many kills, every fault, every row state.
    assert world.kills >= STEPS // 5
    assert len(world.exports) >= 20
    codes, messages = world.attempts()
    assert {201, 429, 503, 500, None} <= codes
    assert "ReadTimeout" in messages  # a slow answer outlived the client's timeout
    assert "reset" in messages.lower()
    assert world.statuses_seen >= SENDABLE_OR_DONE | {"invalid", "duplicate"}

    world.finish()
    world.check_invariants(STEPS)

    contacts = world.contacts()
    sent = {phone for export in world.exports for phone in export.valid.values()}
    assert {phone: len(contacts[phone]) for phone in sent} == dict.fromkeys(sent, 1)
    rows = world.ledger_rows()
    for export in world.exports:
        for number, phone in export.valid.items():
            states = rows[(str(export.path), number)]
            assert {status for status, _, _ in states} <= {"subscribed", "skipped"}
            for status, contact_id, _ in states:
                if status == "subscribed":
                    assert [contact_id] == contacts[phone]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_api_down_all_run_stops_within_its_budget_and_retry_finishes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens: each batch retries until its time budget, the run stops after
    three such batches (exit 5) with every row pending, and `retry` finishes later."""
    budget = 20.0
    slept: list[float] = []
    policy = RetryPolicy(
        max_attempts=100, budget_seconds=budget, backoff_base=2, backoff_cap=8, sleep=slept.append
    )
    people = POOL[:40]
    source = tmp_path / "people.csv"
    source.write_text("Mobile\n" + "\n".join(people) + "\n", encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1"
    settings = SendSettings(ENGAGEMENT, api_url=url, reuse=False, batch_size=5, concurrency=1)
    book = Ledger.open(tmp_path / "ledger.sqlite")
    with EngageSparkClient(SANDBOX_TOKEN, url) as client, caplog.at_level(logging.INFO):
        down = run_import([source], OPTIONS, settings, book, Sender(client, policy=policy))

        assert down.exit_code is ExitCode.API_UNAVAILABLE
        assert "bulkimport retry" in down.stopped
        assert down.batches == 3
        assert down.attempts == len(slept) + 3 < 3 * 100  # the budget ended each batch
        waited: dict[str, float] = {}
        for record in caplog.records:
            if record.name == "bulkimport.send.retry" and isinstance(record.args, tuple):
                label, _, _, seconds = record.args  # as the retry log line names them
                assert isinstance(seconds, float)
                waited[str(label)] = waited.get(str(label), 0.0) + seconds
        assert sorted(waited) == [f"{down.run_id}.{n}" for n in (1, 2, 3)]
        assert all(0 < seconds <= budget for seconds in waited.values()), waited
        assert dict(book.counts()) == {"pending": 40}  # refused connections sent nothing

        with Sandbox(port=port, engagements=(ENGAGEMENT,)) as sandbox:
            back = retry_rows(book, settings, Sender(client, policy=policy))
            assert back.exit_code is ExitCode.OK
            assert dict(back.counts) == {"subscribed": 40}
            assert all(len(sandbox.contacts_for(international(p))) == 1 for p in people)
    book.close()
