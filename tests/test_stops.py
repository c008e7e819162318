"""Stopping a real run: signals while requests are in flight, then finishing with `retry`.

Each test proves its stop landed while the sandbox was holding requests: the
sandbox's latency waits through a sleep that counts the requests inside it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulkimport.cli import main
from bulkimport.ledger.store import Ledger
from bulkimport.sandbox import SANDBOX_TOKEN, Sandbox
from tests.conftest import write_csv


class InFlight:
    """A sandbox ``sleep`` that counts the requests waiting inside it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.scale = 1.0  # 0 answers at once from the next request on

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            time.sleep(seconds * self.scale)
        finally:
            with self._lock:
                self.now -= 1


def people(path: Path, count: int) -> tuple[Path, set[str]]:
    lines = [f"P{i},0917 {i // 10000:03d} {i % 10000:04d}" for i in range(count)]
    phones = {f"63917{i // 10000:03d}{i % 10000:04d}" for i in range(count)}
    return write_csv(path, "Name,Mobile", *lines), phones


def command(sandbox: Sandbox, ledger: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "bulkimport", *args, "--api-url", sandbox.url,
        "--ledger", str(ledger),
    ]  # fmt: skip


def run_command(sandbox: Sandbox, ledger: Path, source: Path, *extra: str) -> list[str]:
    return command(
        sandbox, ledger, "run", str(source), "--engagement", "1234", "--country", "PH",
        "--batch-size", "10", "--concurrency", "2", *extra,
    )  # fmt: skip


ENV = {**os.environ, "ENGAGESPARK_API_KEY": SANDBOX_TOKEN}


def start(cmd: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def statuses(ledger: Path) -> Counter[str]:
    with sqlite3.connect(ledger) as db:
        return Counter(dict(db.execute("SELECT status, count(*) FROM rows GROUP BY status")))


@pytest.fixture
def in_flight() -> InFlight:
    return InFlight()


@pytest.fixture
def slow_sandbox(in_flight: InFlight) -> Iterator[Sandbox]:
    with Sandbox(latency_ms=300, sleep=in_flight) as server:
        yield server


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_finishes_the_batches_in_flight_records_them_and_retry_sends_the_rest(
    slow_sandbox: Sandbox, in_flight: InFlight, tmp_path: Path, signum: signal.Signals
) -> None:
    source, phones = people(tmp_path / "people.csv", 400)
    ledger = tmp_path / "l.sqlite"
    process = start(run_command(slow_sandbox, ledger, source, "--json"))
    wait_until(lambda: slow_sandbox.request_count() >= 3 and in_flight.now >= 1)
    held = in_flight.now
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert held >= 1  # the signal landed while the sandbox held requests
    assert process.returncode == 1, err
    line = json.loads(out.strip().splitlines()[-1])
    assert line["stopped"].startswith("Stopped on request")
    assert "Traceback" not in err
    # Every batch the sandbox processed was recorded: nothing is left in flight.
    counts = statuses(ledger)
    assert counts["sending"] == 0
    subscribed_by_sandbox = slow_sandbox.subscriptions(1234)
    assert counts["subscribed"] == len(subscribed_by_sandbox) > 0
    assert counts["pending"] == 400 - counts["subscribed"] > 0  # all 400 were recorded
    # The morning after: `retry` alone finishes, and nobody is messaged twice.
    final = subprocess.run(
        command(slow_sandbox, ledger, "retry", "--concurrency", "4"),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert final.returncode == 0, final.stdout + final.stderr
    assert statuses(ledger) == {"subscribed": 400}
    by_contact = Counter(slow_sandbox.subscriptions(1234))
    assert max(by_contact.values()) == 1
    assert all(len(slow_sandbox.contacts_for(phone)) == 1 for phone in phones)


def test_a_second_signal_stops_at_once_and_retry_reuses_the_contacts_in_flight(
    tmp_path: Path,
) -> None:
    in_flight = InFlight()
    source, phones = people(tmp_path / "people.csv", 200)
    ledger = tmp_path / "l.sqlite"
    with Sandbox(latency_ms=4000, sleep=in_flight) as sandbox:
        process = start(run_command(sandbox, ledger, source, "--always-create"))
        wait_until(lambda: in_flight.now == 2)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        out, err = process.communicate(timeout=30)
        waited = time.monotonic() - stopped_at
        assert in_flight.now == 2  # the sandbox still holds both: the run did not wait
        assert waited < 3.0, waited
        assert process.returncode == 1, err
        assert "Stopped at once: 2 batch(es) were still waiting" in out
        assert "Traceback" not in err
        assert statuses(ledger) == {"sending": 20, "pending": 180}
        wait_until(lambda: in_flight.now == 0)  # the sandbox processes both batches anyway
        in_flight.scale = 0
        sandbox_created = sandbox.contact_count()
        assert sandbox_created == 20
        final = subprocess.run(
            command(sandbox, ledger, "retry"), env=ENV, capture_output=True, text=True, timeout=300
        )
        assert final.returncode == 0, final.stdout + final.stderr
        assert "20 rows interrupted earlier were marked unknown" in final.stdout
        # Reuse on for the 20 that were in flight: one contact per person, even with
        # --always-create.
        assert all(len(sandbox.contacts_for(phone)) == 1 for phone in phones)
    assert statuses(ledger) == {"subscribed": 200}


def children(pid: int) -> list[int]:
    found = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:  # the process is gone
        return found
    for task in tasks:
        try:
            text = (task / "children").read_text()
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            continue
        found += [int(child) for child in text.split()]
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    return status != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_phone_workers_end_with_their_parent_so_a_pipe_closes(
    sandbox: Sandbox, tmp_path: Path, signum: signal.Signals
) -> None:
    """`bulkimport run big.csv | cat` ends when the run ends, however it was stopped."""
    source, _ = people(tmp_path / "big.csv", 60_000)
    ledger = tmp_path / "l.sqlite"
    process = start(run_command(sandbox, ledger, source))
    wait_until(lambda: len(children(process.pid)) >= 2, timeout=60)
    workers = children(process.pid)
    process.send_signal(signum)
    # communicate() reads to EOF: it returns only once every holder of the pipe is gone.
    process.communicate(timeout=30)
    wait_until(lambda: not any(alive(worker) for worker in workers), timeout=10)
    assert len(workers) >= 2


def test_a_run_stopped_while_reading_is_incomplete_everywhere_until_it_is_run_again(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGAGESPARK_API_KEY", SANDBOX_TOKEN)
    source, phones = people(tmp_path / "people.csv", 2500)
    ledger = tmp_path / "l.sqlite"
    original = Ledger.record_rows
    calls: list[int] = []

    def stop_after_first_chunk(self: Ledger, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, to the CLI's handler

    monkeypatch.setattr(Ledger, "record_rows", stop_after_first_chunk)
    args = ["--engagement", "1234", "--country", "PH", "--api-url", sandbox.url]
    result = CliRunner().invoke(main, ["run", str(source), *args, "--ledger", str(ledger)])
    assert result.exit_code == 1, result.output
    assert "Stopped on request while reading the files: nothing was sent" in result.output
    assert sandbox.request_count() == 0
    assert statuses(ledger) == {"pending": 1000}
    monkeypatch.setattr(Ledger, "record_rows", original)

    status = CliRunner().invoke(main, ["status", "--ledger", str(ledger)])
    assert f"incomplete: {source} was not read to its end (up to row 1001 recorded)" in (
        status.output
    )
    results = CliRunner().invoke(
        main, ["results", "--ledger", str(ledger), "-o", str(tmp_path / "r.csv")]
    )
    assert results.exit_code == 1
    assert "Incomplete:" in results.output
    # `retry` sends what was recorded, and does not call the file settled.
    retry = CliRunner().invoke(
        main, ["retry", "--ledger", str(ledger), "--api-url", sandbox.url, "--json"]
    )
    assert retry.exit_code == 1, retry.output
    line = json.loads(retry.output.strip().splitlines()[-1])
    assert line["rows"] == {"subscribed": 1000}
    assert line["incomplete"] == [
        f"{source} was not read to its end (up to row 1001 recorded): run the same "
        "`bulkimport run` command again to record and send the rest."
    ]
    again = CliRunner().invoke(main, ["retry", "--ledger", str(ledger), "--api-url", sandbox.url])
    assert again.exit_code == 1
    assert "not every file was read to its end" in again.output
    # The same command finishes the file; then everything is settled.
    rerun = CliRunner().invoke(main, ["run", str(source), *args, "--ledger", str(ledger)])
    assert rerun.exit_code == 0, rerun.output
    assert statuses(ledger) == {"subscribed": 2500}
    assert all(len(sandbox.contacts_for(phone)) == 1 for phone in phones)
    done = CliRunner().invoke(main, ["retry", "--ledger", str(ledger), "--api-url", sandbox.url])
    assert done.exit_code == 0
    assert "every row in the ledger is settled" in done.output


def test_debug_logs_of_a_run_show_no_whole_phone_number(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI masks phone numbers in every log line, at -vv too, not only in the nightly log."""
    import logging

    from bulkimport.send.client import EngageSparkClient

    monkeypatch.setenv("ENGAGESPARK_API_KEY", SANDBOX_TOKEN)
    source, phones = people(tmp_path / "p.csv", 3)
    original = EngageSparkClient.post_subscription

    def chatty(
        self: EngageSparkClient, engagement: int, contacts: list[dict[str, str]], **kw: bool
    ):  # type: ignore[no-untyped-def]
        logging.getLogger("bulkimport.send").debug(
            "posting %s", ", ".join(c["fullPhoneNumber"] for c in contacts)
        )
        return original(self, engagement, contacts, **kw)

    monkeypatch.setattr(EngageSparkClient, "post_subscription", chatty)
    handler = logging.StreamHandler(stream := __import__("io").StringIO())
    logging.getLogger().addHandler(handler)
    try:
        args = ["--engagement", "1234", "--country", "PH", "--api-url", sandbox.url]
        result = CliRunner().invoke(
            main, ["-vv", "run", str(source), *args, "--ledger", str(tmp_path / "l.sqlite")]
        )
    finally:
        logging.getLogger().removeHandler(handler)
    assert result.exit_code == 0, result.output
    logged = stream.getvalue()
    assert "posting 63917*****" in logged
    assert not any(phone in logged for phone in phones)
