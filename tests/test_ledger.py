from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from bulkimport.contacts import RowStatus
from bulkimport.errors import LedgerError, LedgerLocked
from bulkimport.ledger.lock import LedgerLock
from bulkimport.ledger.states import TRANSITIONS, IllegalTransition, check_transition
from bulkimport.ledger.store import (
    SCHEMA_VERSION,
    Handled,
    Ledger,
    NewRow,
    Settlement,
)

S = RowStatus


def new_ledger(tmp_path: Path) -> tuple[Ledger, int, int]:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    run = ledger.start_run("run", 1234, {"batch_size": 100})
    source = ledger.add_source(run, 1234, "a.csv", "sha", "", ["Phone"])
    ledger.record_rows(
        source,
        run,
        1234,
        [
            NewRow(2, S.PENDING, ["0917"], "639171234567", "639171234567",
                   payload={"fullPhoneNumber": "639171234567"}),
            NewRow(3, S.INVALID, ["x"], reason="bad"),
        ],
    )  # fmt: skip
    return ledger, run, source


def test_created_private_with_wal_and_the_schema_version(tmp_path: Path) -> None:
    ledger, _, _ = new_ledger(tmp_path)
    path = tmp_path / "ledger.sqlite"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    ledger.close()


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.SUBSCRIBED, S.SENDING),
        (S.PENDING, S.SUBSCRIBED),
        (S.INVALID, S.PENDING),
        (None, S.SENDING),
        (S.UNKNOWN, S.SUBSCRIBED),
    ],
)
def test_illegal_transitions_raise(current: RowStatus | None, new: RowStatus) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(current, new)


def test_every_design_transition_is_legal() -> None:
    legal = [
        (S.PENDING, S.SENDING),
        (S.SENDING, S.SUBSCRIBED),
        (S.SENDING, S.FAILED),
        (S.SENDING, S.UNKNOWN),
        (S.SENDING, S.PENDING),
        (S.UNKNOWN, S.SENDING),
    ]
    for current, new in legal:
        check_transition(current, new)
    assert all(not TRANSITIONS[s] for s in (S.SUBSCRIBED, S.INVALID, S.DUPLICATE, S.SKIPPED))


def test_settling_a_row_that_was_not_sending_raises_and_changes_nothing(tmp_path: Path) -> None:
    ledger, run, _ = new_ledger(tmp_path)
    (row,) = ledger.queued_rows(engagement_id=1234)
    with pytest.raises(IllegalTransition):
        ledger.settle([Settlement(row.id, S.SUBSCRIBED, 1, "")], [], run)
    assert ledger.counts(run_id=run) == {"pending": 1, "invalid": 1}


def test_rows_left_sending_by_a_crash_become_unknown_with_reuse(tmp_path: Path) -> None:
    ledger, _, _ = new_ledger(tmp_path)
    (row,) = ledger.queued_rows(engagement_id=1234)
    ledger.mark_sending([row.id])
    ledger.close()
    reopened = Ledger.open(tmp_path / "ledger.sqlite")
    assert reopened.recover_interrupted() == 1
    (again,) = reopened.queued_rows(engagement_id=1234)
    assert again.status is S.UNKNOWN
    assert again.reuse is True


def test_recording_the_same_rows_twice_keeps_their_state(tmp_path: Path) -> None:
    ledger, run, source = new_ledger(tmp_path)
    (row,) = ledger.queued_rows(engagement_id=1234)
    ledger.mark_sending([row.id])
    ledger.settle([Settlement(row.id, S.SUBSCRIBED, 42, "")], [], run)
    ledger.record_rows(source, run, 1234, [NewRow(2, S.PENDING, ["0917"])])
    assert ledger.counts(source_ids=[source]) == {"subscribed": 1, "invalid": 1}


def test_already_handled_names_where_a_number_was_subscribed(tmp_path: Path) -> None:
    ledger, run, _ = new_ledger(tmp_path)
    (row,) = ledger.queued_rows(engagement_id=1234)
    ledger.mark_sending([row.id])
    ledger.settle([Settlement(row.id, S.SUBSCRIBED, 42, "")], [], run)
    found = ledger.already_handled(1234, ["639171234567", "639000000000"], exclude_source=0)
    assert found == {
        "639171234567": Handled(
            f"already subscribed on {date.today().isoformat()} (run {run}, a.csv row 2)", 42
        )
    }
    assert ledger.already_handled(555, ["639171234567"], exclude_source=0) == {}


def test_a_file_that_is_not_a_ledger_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(LedgerError, match="is not a bulkimport ledger"):
        Ledger.open(path)


def test_another_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(LedgerError, match="not a bulkimport ledger"):
        Ledger.open(path)


def test_a_ledger_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    ledger, _, _ = new_ledger(tmp_path)
    ledger.close()
    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="newer bulkimport"):
        Ledger.open(tmp_path / "ledger.sqlite")


def test_the_lock_keeps_a_second_process_out_and_names_the_holder(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    with LedgerLock(ledger):
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path\n"
                "from bulkimport.ledger.lock import LedgerLock\n"
                "try:\n LedgerLock(Path(sys.argv[1])).acquire()\n"
                "except Exception as e: print(type(e).__name__, e)",
                str(ledger),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert probe.stdout.startswith("LedgerLocked Another bulkimport run (pid ")
    with LedgerLock(ledger):  # released: it can be taken again
        pass


def test_the_lock_refuses_a_second_holder_in_one_process(tmp_path: Path) -> None:
    with LedgerLock(tmp_path / "l.sqlite"), pytest.raises(LedgerLocked):
        LedgerLock(tmp_path / "l.sqlite").acquire()


def test_another_programs_database_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(LedgerError):
        Ledger.open(path)
    assert path.read_bytes() == before
    assert not (tmp_path / "other.sqlite-wal").exists()
