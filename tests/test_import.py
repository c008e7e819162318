"""The import end to end: the CLI against the sandbox over a real socket."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from bulkimport.cli import main
from bulkimport.ledger.lock import LedgerLock
from bulkimport.ledger.store import Ledger
from bulkimport.sandbox import SANDBOX_TOKEN, Faults, Sandbox
from bulkimport.send.client import EngageSparkClient
from tests.conftest import write_csv

PHONES = [f"0917 {n:03d} {n * 7 % 10000:04d}" for n in range(100, 160)]
EXPECTED = {f"63917{n:03d}{n * 7 % 10000:04d}" for n in range(100, 160)}


@pytest.fixture
def applicants(tmp_path: Path) -> Path:
    lines = [f"Person {i},{phone}" for i, phone in enumerate(PHONES)]
    lines += ["Nobody,", "Twice,0917 100 0700", "Junk,call me"]
    return write_csv(tmp_path / "applicants.csv", "Name,Mobile No.", *lines)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def run_args(sandbox: Sandbox, ledger: Path, *extra: str) -> list[str]:
    return [
        "--engagement", "1234", "--country", "PH", "--api-url", sandbox.url,
        "--ledger", str(ledger), *extra,
    ]  # fmt: skip


@pytest.mark.usefixtures("api_env")
def test_run_subscribes_every_valid_row_and_the_results_say_so(
    sandbox: Sandbox, applicants: Path, tmp_path: Path
) -> None:
    ledger, results = tmp_path / "l.sqlite", tmp_path / "results.xlsx"
    code, output = invoke(
        "run", str(applicants), *run_args(sandbox, ledger, "--results", str(results))
    )
    assert code == 1, output  # two invalid rows and one duplicate need attention
    assert "subscribed 60 · invalid 2 · duplicate 1" in output
    book = openpyxl.load_workbook(results)
    sheet = book["Rows"]
    header = [c.value for c in sheet[1]]
    assert header[:8] == [
        "source", "sheet", "row", "status", "contact_id", "subscribed_at", "phone", "reason",
    ]  # fmt: skip
    rows = [dict(zip(header, (c.value for c in line), strict=True)) for line in sheet.iter_rows(2)]
    subscribed = [r for r in rows if r["status"] == "subscribed"]
    assert {r["phone"] for r in subscribed} == EXPECTED
    for r in subscribed:
        (contact,) = sandbox.contacts_for(str(r["phone"]))
        assert int(str(r["contact_id"])) == contact["id"]
    assert all(str(r["subscribed_at"]).startswith("20") for r in subscribed)
    needs = [[c.value for c in line] for line in book["Needs attention"].iter_rows()]
    assert needs[0] == [*header, "what to do"]
    assert sorted((line[2], line[3]) for line in needs[1:]) == sorted(
        (r["row"], r["status"]) for r in rows if r["status"] in ("invalid", "duplicate")
    )
    assert all(line[-1] for line in needs[1:])
    assert book.sheetnames == ["Rows", "Needs attention", "Summary"]
    by_row = {r["row"]: r for r in rows}
    assert by_row[62]["status"] == "invalid"
    assert by_row[63]["reason"] == "same number as row 2"
    assert sorted(sandbox.subscriptions(1234)) == sorted(
        int(str(r["contact_id"])) for r in subscribed
    )


@pytest.mark.usefixtures("api_env")
def test_running_the_same_file_twice_sends_nothing_the_second_time(
    sandbox: Sandbox, applicants: Path, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.sqlite"
    invoke("run", str(applicants), *run_args(sandbox, ledger))
    requests = sandbox.request_count()
    code, output = invoke("run", str(applicants), *run_args(sandbox, ledger, "--json"))
    summary = json.loads(output.strip().splitlines()[-1])
    assert sandbox.request_count() == requests
    # The second run's version keeps the first one's rows, with their state.
    assert summary["rows"] == {"subscribed": 60, "invalid": 2, "duplicate": 1}
    assert summary["batches"] == 0
    assert code == 1


@pytest.mark.usefixtures("api_env")
def test_a_wrong_key_stops_after_one_request_and_retry_finishes(
    sandbox: Sandbox, applicants: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = tmp_path / "l.sqlite"
    monkeypatch.setenv("ENGAGESPARK_API_KEY", "wrong-key")
    code, output = invoke("run", str(applicants), *run_args(sandbox, ledger, "--batch-size", "10"))
    assert code == 3, output
    assert "API key was refused" in output
    assert "Next: fix what the message above says, then `bulkimport retry`." in output
    assert sandbox.request_count() <= 2  # at most the batches already in flight
    assert sandbox.contact_count() == 0
    monkeypatch.setenv("ENGAGESPARK_API_KEY", SANDBOX_TOKEN)
    code, output = invoke("retry", "--ledger", str(ledger))
    assert code == 0, output
    assert {c for p in EXPECTED for c in [len(sandbox.contacts_for(p))]} == {1}


@pytest.mark.usefixtures("api_env")
def test_api_down_stops_with_exit_5_and_retry_completes_when_it_is_back(
    sandbox: Sandbox, applicants: Path, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.sqlite"
    sandbox.set_faults(Faults(rate_503=1.0, retry_after=0))
    code, output = invoke(
        "run",
        str(applicants),
        *run_args(sandbox, ledger, "--batch-size", "5", "--concurrency", "1"),
    )
    assert code == 5, output
    assert "bulkimport retry" in output
    assert sandbox.contact_count() == 0
    sandbox.set_faults(Faults())
    code, output = invoke("retry", "--ledger", str(ledger), "--json")
    assert code == 0, output
    assert json.loads(output.strip().splitlines()[-1])["rows"] == {"subscribed": 60}
    assert all(len(sandbox.contacts_for(p)) == 1 for p in EXPECTED)


@pytest.mark.usefixtures("api_env")
def test_dry_run_prints_the_payloads_and_sends_and_records_nothing(
    sandbox: Sandbox, applicants: Path, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.sqlite"
    code, output = invoke("run", str(applicants), *run_args(sandbox, ledger, "--dry-run"))
    assert '"fullPhoneNumber": "639171000700"' in output
    assert "?try_using_existing=newest" in output
    assert SANDBOX_TOKEN not in output
    assert sandbox.request_count() == 0
    assert not ledger.exists()
    assert code == 1


@pytest.mark.usefixtures("api_env")
def test_a_second_process_on_the_ledger_exits_4_and_changes_nothing(
    sandbox: Sandbox, applicants: Path, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.sqlite"
    with LedgerLock(ledger):
        code, output = invoke("run", str(applicants), *run_args(sandbox, ledger))
    assert code == 4
    assert "Another bulkimport run (pid" in output
    assert sandbox.request_count() == 0
    assert not ledger.exists()


def test_a_missing_key_is_an_error_before_any_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENGAGESPARK_API_KEY", raising=False)
    code, output = invoke("run", str(tmp_path / "missing.csv"), "--engagement", "1")
    assert code == 2
    assert "No API key: set ENGAGESPARK_API_KEY or pass --api-key-file" in output


@pytest.mark.usefixtures("api_env")
def test_status_and_results_read_the_ledger(
    sandbox: Sandbox, applicants: Path, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.sqlite"
    invoke("run", str(applicants), *run_args(sandbox, ledger))
    code, output = invoke("status", "--ledger", str(ledger), "--json")
    (run,) = json.loads(output)["runs"]
    assert run["rows"] == {"subscribed": 60, "invalid": 2, "duplicate": 1}
    assert run["files"] == [str(applicants)]
    (engagement,) = json.loads(output)["engagements"]
    assert engagement["engagement"] == 1234
    assert engagement["people_subscribed"] == 60
    assert engagement["rows_open"] == {}
    assert engagement["rows_failed"] == 0
    code, output = invoke("status", "--ledger", str(ledger))
    assert "engagement 1234: 60 people subscribed · 0 rows open · 0 failed" in output
    code, output = invoke("results", "--ledger", str(ledger), "-o", str(tmp_path / "r.csv"))
    assert code == 0
    assert "Wrote 63 rows" in output
    lines = (tmp_path / "r.csv").read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == (
        "source,sheet,row,status,contact_id,subscribed_at,phone,reason,Name,Mobile No."
    )
    assert len(lines) == 64


def test_killed_runs_resume_to_exactly_one_contact_per_number(tmp_path: Path) -> None:
    """SIGKILL the run at random moments while it sends, 20 times, with faults on; then finish.

    Each kill waits until the sandbox has received a new request, and the ledger
    afterwards shows that most kills landed with a batch in flight.
    """
    lines = [f"P{i},0917 {i:03d} {i * 13 % 10000:04d}" for i in range(100, 1000)]
    source = write_csv(tmp_path / "big.csv", "Name,Mobile", *lines)
    expected = {f"63917{i:03d}{i * 13 % 10000:04d}" for i in range(100, 1000)}
    ledger = tmp_path / "l.sqlite"
    faults = Faults(rate_429=0.05, rate_500=0.05, rate_reset=0.05, rate_shuffle=0.5, retry_after=0)
    rng = random.Random(7)
    env = {**os.environ, "ENGAGESPARK_API_KEY": SANDBOX_TOKEN}
    with Sandbox(latency_ms=40, faults=faults, seed=3) as sandbox:
        command = [
            sys.executable, "-m", "bulkimport", "run", str(source), "--always-create",
            "--batch-size", "10", "--concurrency", "3",
            *run_args(sandbox, ledger)[0:8],
        ]  # fmt: skip
        mid_flight = 0
        for _ in range(20):
            seen = sandbox.request_count()
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            while sandbox.request_count() == seen and process.poll() is None:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.06))
            process.send_signal(signal.SIGKILL)
            process.wait()
            with sqlite3.connect(ledger) as db:
                sending = db.execute("SELECT count(*) FROM rows WHERE status = 'sending'")
                mid_flight += sending.fetchone()[0] > 0
        assert mid_flight >= 10, mid_flight
        final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stdout + final.stderr
        per_number = {phone: sandbox.contacts_for(phone) for phone in expected}
    assert {phone: len(c) for phone, c in per_number.items() if len(c) != 1} == {}
    book = Ledger.open(ledger)
    rows = list(book.result_rows())
    assert {r.status for r in rows} == {"subscribed"}
    assert {r.phone: r.contact_id for r in rows} == {p: c[0]["id"] for p, c in per_number.items()}


@pytest.mark.usefixtures("api_env")
def test_a_results_path_that_cannot_be_written_stops_before_sending(
    sandbox: Sandbox, applicants: Path, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.sqlite"
    missing = tmp_path / "no-such-folder" / "results.xlsx"
    code, output = invoke(
        "run", str(applicants), *run_args(sandbox, ledger, "--results", str(missing))
    )
    assert code == 2
    assert "does not exist" in output
    assert sandbox.request_count() == 0
    code, output = invoke("run", str(applicants), *run_args(sandbox, ledger, "--results", "r.pdf"))
    assert code == 2
    assert ".csv or .xlsx" in output
    assert sandbox.request_count() == 0


def _people(path: Path, count: int) -> tuple[Path, set[str]]:
    lines = [f"P{i},0917 {i // 10000:03d} {i % 10000:04d}" for i in range(count)]
    phones = {f"63917{i // 10000:03d}{i % 10000:04d}" for i in range(count)}
    return write_csv(path, "Name,Mobile", *lines), phones


@pytest.mark.usefixtures("api_env")
def test_every_row_is_recorded_before_the_first_request_leaves(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = _people(tmp_path / "people.csv", 3000)
    ledger = tmp_path / "l.sqlite"
    recorded_at_first_request: list[int] = []
    original = EngageSparkClient.post_subscription

    def spy(self: EngageSparkClient, *args: object, **kwargs: object) -> object:
        if not recorded_at_first_request:
            with sqlite3.connect(ledger) as db:
                recorded_at_first_request.append(
                    db.execute("SELECT count(*) FROM rows").fetchone()[0]
                )
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(EngageSparkClient, "post_subscription", spy)
    code, output = invoke("run", str(source), *run_args(sandbox, ledger, "--concurrency", "1"))
    assert code == 0, output
    assert recorded_at_first_request == [3000]
    assert "subscribed 3,000" in output


@pytest.mark.usefixtures("api_env")
def test_a_run_stopped_early_still_records_every_row_for_retry(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, phones = _people(tmp_path / "people.csv", 2500)
    ledger = tmp_path / "l.sqlite"
    monkeypatch.setenv("ENGAGESPARK_API_KEY", "wrong-key")
    code, output = invoke("run", str(source), *run_args(sandbox, ledger, "--concurrency", "1"))
    assert code == 3, output
    assert "pending 2,500" in output
    source.unlink()  # retry needs only the ledger
    monkeypatch.setenv("ENGAGESPARK_API_KEY", SANDBOX_TOKEN)
    code, output = invoke("retry", "--ledger", str(ledger), "--json")
    assert code == 0, output
    assert json.loads(output.strip().splitlines()[-1])["rows"] == {"subscribed": 2500}
    assert all(len(sandbox.contacts_for(p)) == 1 for p in phones)


@pytest.mark.usefixtures("api_env")
def test_an_unknown_engagement_points_to_the_right_engagement_not_to_retry(
    sandbox: Sandbox, applicants: Path, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.sqlite"
    args = run_args(sandbox, ledger)
    args[1] = "999"  # --engagement 999 does not exist on the sandbox
    code, output = invoke("run", str(applicants), *args)
    assert code == 3
    assert "Engagement 999 was not found" in output
    assert "Next: run the file again with the right --engagement" in output
    assert "bulkimport retry` sends" not in output
