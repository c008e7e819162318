"""The ledger in trouble: busy, full, read-only, odd file names, a file changing under a run.

Each problem is one line that says what is wrong and what to do, with a
documented exit code, and never the advice to replace a ledger that is fine.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulkimport.cli import main
from bulkimport.errors import LedgerBusy, LedgerError
from bulkimport.ledger import store as ledger_module
from bulkimport.ledger.store import Ledger, ledger_error
from bulkimport.sandbox import SANDBOX_TOKEN, Sandbox
from bulkimport.send.client import EngageSparkClient
from tests.conftest import write_csv

pytestmark = pytest.mark.usefixtures("api_env")


def people(path: Path, count: int) -> Path:
    lines = [f"P{i},0917 {i // 10000:03d} {i % 10000:04d}" for i in range(count)]
    return write_csv(path, "Name,Mobile", *lines)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def invoke_json(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def run_args(sandbox: Sandbox, ledger: Path, *extra: str) -> list[str]:
    return [
        "--engagement", "1234", "--country", "PH", "--api-url", sandbox.url,
        "--ledger", str(ledger), *extra,
    ]  # fmt: skip


@pytest.fixture
def held_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A ledger another program holds a write transaction on."""
    path = tmp_path / "l.sqlite"
    Ledger.open(path).close()
    monkeypatch.setattr(ledger_module, "BUSY_SECONDS", 0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    yield path
    other.execute("ROLLBACK")
    other.close()


def test_a_ledger_busy_in_another_program_exits_4_and_sends_nothing(
    sandbox: Sandbox, held_ledger: Path, tmp_path: Path
) -> None:
    source = people(tmp_path / "p.csv", 5)
    code, output = invoke("run", str(source), *run_args(sandbox, held_ledger))
    assert code == 4, output
    assert "is busy: another program holds a write transaction on it" in output
    assert "move this one away" not in output
    assert "not a bulkimport ledger" not in output
    assert "Traceback" not in output
    assert sandbox.request_count() == 0


def test_sqlite_errors_become_sentences_that_never_advise_replacing_a_good_ledger(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.sqlite"
    Ledger.open(path).close()
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.Error) as caught:
        read_only.execute("CREATE TABLE x (a)")
    error = ledger_error(caught.value, path)
    assert type(error) is LedgerError
    assert "Cannot write the ledger" in str(error)
    assert "no permission, or a read-only file or folder" in str(error)
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello, this is not a database at all\n" * 100)
    with pytest.raises(LedgerError, match="is not a bulkimport ledger"):
        Ledger.open(not_a_db)
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorname = "SQLITE_BUSY"  # type: ignore[attr-defined]
    assert isinstance(ledger_error(busy, path), LedgerBusy)


def test_a_full_disk_while_recording_says_so_and_sends_nothing(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = people(tmp_path / "p.csv", 3000)
    ledger = tmp_path / "l.sqlite"
    original = Ledger.open

    def small_disk(path: Path) -> Ledger:
        opened = original(path)
        # SQLite's own "database or disk is full" (SQLITE_FULL), a few pages from here.
        pages = opened._db.execute("PRAGMA page_count").fetchone()[0]
        opened._db.execute(f"PRAGMA max_page_count = {pages + 20}")
        return opened

    monkeypatch.setattr(Ledger, "open", staticmethod(small_disk))
    code, output = invoke("run", str(source), *run_args(sandbox, ledger))
    assert code == 2, output
    assert "The disk holding the ledger" in output
    assert "is full: free some space" in output
    assert "Traceback" not in output
    assert sandbox.request_count() == 0


def test_answers_that_arrived_are_recorded_when_the_ledger_fails_mid_run(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails after two batches left: both answers are waited for and recorded."""
    source = people(tmp_path / "p.csv", 50)
    ledger = tmp_path / "l.sqlite"
    original = Ledger.mark_sending
    calls: list[int] = []

    def fail_third(self: Ledger, row_ids: list[int], run_id: int | None = None) -> None:
        calls.append(len(row_ids))
        if len(calls) == 3:
            raise LedgerError("The disk holding the ledger is full: free some space.")
        original(self, row_ids, run_id)

    monkeypatch.setattr(Ledger, "mark_sending", fail_third)
    code, output = invoke(
        "run", str(source), *run_args(sandbox, ledger, "--batch-size", "10", "--concurrency", "2")
    )
    assert code == 2, output
    assert "is full" in output
    assert sandbox.request_count() == 2
    with sqlite3.connect(ledger) as db:
        counts = dict(db.execute("SELECT status, count(*) FROM rows GROUP BY status"))
    assert counts == {"subscribed": 20, "pending": 30}


def test_a_file_name_that_is_not_utf8_is_recorded_and_shown_escaped(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    name = os.fsdecode(b"caf\xe9\x1b[31m.csv")
    source = people(tmp_path / name, 3)
    ledger = tmp_path / "l.sqlite"
    code, output = invoke("run", str(source), *run_args(sandbox, ledger))
    assert code == 0, output
    assert "\x1b" not in output
    assert "caf\\udce9\\x1b[31m.csv" in output
    code, output = invoke("status", "--ledger", str(ledger), "--json")
    (run,) = json.loads(output)["runs"]
    assert run["files"] == [str(tmp_path / "caf\\xe9\x1b[31m.csv")]
    assert run["rows"] == {"subscribed": 3}


def test_a_file_rewritten_while_it_is_read_sends_nothing(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = people(tmp_path / "p.csv", 2500)
    ledger = tmp_path / "l.sqlite"
    original = Ledger.record_rows

    def append_meanwhile(self: Ledger, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        with source.open("a", encoding="utf-8") as more:
            more.write("Late,0917 999 0000\n")

    monkeypatch.setattr(Ledger, "record_rows", append_meanwhile)
    code, output = invoke("run", str(source), *run_args(sandbox, ledger))
    assert code == 2, output
    assert "changed while it was being read: nothing was sent" in output
    assert sandbox.request_count() == 0
    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT count(*) FROM rows").fetchone()[0] == 0


def test_a_results_file_that_fails_after_the_import_still_gets_the_summary(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = people(tmp_path / "p.csv", 5)
    ledger, results = tmp_path / "l.sqlite", tmp_path / "results.xlsx"
    original = EngageSparkClient.post_subscription

    def folder_appears(self: EngageSparkClient, *args: object, **kwargs: object) -> object:
        results.mkdir(exist_ok=True)  # someone makes a folder of that name meanwhile
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(EngageSparkClient, "post_subscription", folder_appears)
    code, line = invoke_json(
        "run", str(source), *run_args(sandbox, ledger, "--results", str(results), "--json")
    )
    assert code == 1, line
    assert line["rows"] == {"subscribed": 5}
    assert line["results"] is None
    (problem,) = line["problems"]  # type: ignore[misc]
    assert "`bulkimport results -o FILE` writes the results later" in problem
    assert sandbox.request_count() == 1


def test_status_counts_the_rows_a_retry_sent(sandbox: Sandbox, tmp_path: Path) -> None:
    source = people(tmp_path / "p.csv", 30)
    ledger = tmp_path / "l.sqlite"
    sandbox.set_funds(False)
    code, _ = invoke("run", str(source), *run_args(sandbox, ledger))
    assert code == 3
    sandbox.set_funds(True)
    code, _ = invoke("retry", "--ledger", str(ledger), "--api-url", sandbox.url)
    assert code == 0
    code, output = invoke("status", "--ledger", str(ledger), "--json")
    retry_run, first_run = json.loads(output)["runs"]
    assert retry_run["command"] == "retry"
    assert retry_run["rows"] == {"subscribed": 30}
    assert first_run["rows"] == {"pending": 30}
    assert SANDBOX_TOKEN not in output
