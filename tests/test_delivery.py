"""How many people, how fast, and after which question: --limit, --max-per-minute, the
look before sending, and --unknown hold.
"""

from __future__ import annotations

import functools
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bulkimport.cli import main
from bulkimport.errors import ExitCode
from bulkimport.jobs import sending
from bulkimport.jobs.sending import Sender
from bulkimport.sandbox import SANDBOX_TOKEN, Faults, Sandbox
from bulkimport.send import client as client_module
from bulkimport.send.client import AttemptResult
from tests.conftest import write_csv
from tests.test_windows import NO_WAIT, FakeClock

ROOT = Path(__file__).parent.parent


def people(count: int) -> list[str]:
    return [f"P{i},0917 000 {i:04d}" for i in range(count)]


def invoke(sandbox: Sandbox, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--api-url", sandbox.url], catch_exceptions=False)


def run_args(source: Path, ledger: Path) -> list[str]:
    return ["run", str(source), "--engagement", "1234", "--country", "PH", "--ledger", str(ledger)]


def statuses(ledger: Path) -> list[str]:
    with sqlite3.connect(ledger) as db:
        return [row[0] for row in db.execute("SELECT status FROM rows ORDER BY id")]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(datetime(2026, 12, 2, 1, 0, tzinfo=UTC))
    monkeypatch.setattr(
        sending, "Sender", functools.partial(Sender, policy=NO_WAIT, clock=fake, pause=fake.pause)
    )
    return fake


@pytest.mark.usefixtures("api_env", "clock")
def test_limit_sends_exactly_the_first_n_and_retry_the_rest(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *people(12))
    ledger = tmp_path / "l.sqlite"
    canary = invoke(sandbox, *run_args(source, ledger), "--limit", "5", "--batch-size", "2")
    assert canary.exit_code == ExitCode.ROWS_NEED_ATTENTION, canary.output
    assert statuses(ledger) == ["subscribed"] * 5 + ["pending"] * 7
    assert sandbox.contact_count() == 5
    assert "5 subscribed; 7 wait: run `bulkimport retry` to send them" in canary.output

    rest = invoke(sandbox, "retry", "--ledger", str(ledger))
    assert rest.exit_code == ExitCode.OK, rest.output
    assert statuses(ledger) == ["subscribed"] * 12
    assert sandbox.contact_count() == 12


@pytest.mark.usefixtures("api_env")
def test_pacing_holds_the_rate_across_batches_in_flight(
    sandbox: Sandbox, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    posts: list[tuple[datetime, int]] = []
    original = client_module.EngageSparkClient.post_subscription

    def recorded(
        self: Any, engagement_id: int, contacts: Sequence[Mapping[str, Any]], *, reuse: bool
    ) -> AttemptResult:
        posts.append((clock.now, len(contacts)))
        return original(self, engagement_id, contacts, reuse=reuse)

    monkeypatch.setattr(client_module.EngageSparkClient, "post_subscription", recorded)
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *people(90))
    ledger = tmp_path / "l.sqlite"
    args = ["--max-per-minute", "30", "--batch-size", "50", "--concurrency", "4"]
    result = invoke(sandbox, *run_args(source, ledger), *args)
    assert result.exit_code == ExitCode.OK, result.output
    assert "paced at most 30 people a minute" in result.output
    assert [size for _, size in posts] == [30, 30, 30]  # batches shrink to a minute's worth
    started = posts[0][0]
    sent = 0
    for at, size in posts:
        sent += size
        minutes = (at - started).total_seconds() / 60
        assert sent <= 30 + 30 * minutes + 1e-6  # never ahead of the pace
    assert (posts[-1][0] - started).total_seconds() == pytest.approx(120, abs=1)


@pytest.mark.usefixtures("api_env", "clock")
def test_hold_keeps_lost_answers_unknown_until_a_person_sends_them(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *people(4))
    ledger = tmp_path / "l.sqlite"
    sandbox.set_faults(Faults(rate_500=1.0))  # processed, then the answer is a 500
    held = invoke(sandbox, *run_args(source, ledger), "--unknown", "hold", "--batch-size", "2")
    assert held.exit_code == ExitCode.ROWS_NEED_ATTENTION, held.output
    assert sandbox.request_count() == 2  # one per batch: never sent again on its own
    assert statuses(ledger) == ["unknown"] * 4
    assert "4 row(s) unknown" in held.output
    assert "--unknown hold keeps them until `bulkimport retry --include-unknown`" in held.output

    sandbox.set_faults(Faults())
    bare = invoke(sandbox, "retry", "--ledger", str(ledger))
    assert sandbox.request_count() == 2
    assert statuses(ledger) == ["unknown"] * 4
    assert bare.exit_code == ExitCode.ROWS_NEED_ATTENTION

    sent = invoke(sandbox, "retry", "--ledger", str(ledger), "--include-unknown")
    assert sent.exit_code == ExitCode.OK, sent.output
    assert statuses(ledger) == ["subscribed"] * 4
    assert sandbox.contact_count() == 4  # reused: the first (lost) answers' contacts
    assert all(len(sandbox.contacts_for(f"63917000{i:04d}")) == 1 for i in range(4))


@pytest.mark.usefixtures("api_env", "clock")
def test_no_question_without_a_terminal(sandbox: Sandbox, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *people(3))
    result = invoke(sandbox, *run_args(source, tmp_path / "l.sqlite"))
    assert result.exit_code == ExitCode.OK
    assert "Continue?" not in result.output
    assert sandbox.contact_count() == 3


def at_a_terminal(args: Sequence[str], answer: bytes | None) -> tuple[int, str]:
    """Run bulkimport with stdin, stdout and stderr on a pseudo-terminal; answer its question."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "ENGAGESPARK_API_KEY": SANDBOX_TOKEN, "COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bulkimport", *args],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        cwd=ROOT,
    )
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:  # the terminal closed: the command ended
                    break
                if not chunk:
                    break
                seen += chunk
                if answer is not None and b"Continue? [y/N]" in seen:
                    os.write(primary, answer)
                    answer = None
            elif process.poll() is not None:
                break
        return process.wait(timeout=30), seen.decode(errors="replace")
    finally:
        os.close(primary)
        if process.poll() is None:
            process.kill()


@pytest.mark.usefixtures("api_env")
def test_the_question_at_a_terminal(sandbox: Sandbox, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *people(3))
    ledger = tmp_path / "l.sqlite"
    args = [*run_args(source, ledger), "--api-url", sandbox.url]

    code, seen = at_a_terminal(args, b"n\n")
    assert "About to subscribe 3 people to engagement 1234 at 127.0.0.1" in seen
    assert "each gets the SMS or call at once. Continue? [y/N]" in seen
    assert code == ExitCode.ROWS_NEED_ATTENTION, seen
    assert "Nothing was sent" in seen
    assert sandbox.request_count() == 0
    assert statuses(ledger) == ["pending"] * 3

    code, seen = at_a_terminal(["retry", "--ledger", str(ledger), "--api-url", sandbox.url], b"y\n")
    assert "Continue? [y/N]" in seen
    assert code == ExitCode.OK, seen
    assert statuses(ledger) == ["subscribed"] * 3

    other = write_csv(tmp_path / "q.csv", "Name,Mobile", "Q,0917 111 0000")
    code, seen = at_a_terminal(
        [*run_args(other, ledger), "--api-url", sandbox.url, "--yes"], answer=None
    )
    assert code == ExitCode.OK, seen
    assert "Continue?" not in seen
    assert sandbox.contact_count() == 4


def test_the_time_left_counts_the_pace() -> None:
    from bulkimport.output.progress import describe_left

    # 100 of 400 rows in 10 s: 30 s left at that rate, but 5 minutes at 60 a minute.
    assert describe_left(400, 100, 10.0, None) == "0:00:30"
    assert describe_left(400, 100, 10.0, 60) == "0:05:00"
    assert describe_left(400, 0, 0.0, 60) == "0:06:40"
    assert describe_left(400, 0, 0.0, None) == "-:--:--"
