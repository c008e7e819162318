"""The ledger knows people: one line per row in `results`, versions that keep what they hold."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import bulkimport
from bulkimport.cli import main
from bulkimport.ledger.schema import SCHEMA_VERSION
from bulkimport.ledger.store import Ledger
from bulkimport.sandbox import Sandbox
from tests.conftest import DATA, write_csv

pytestmark = pytest.mark.usefixtures("api_env")

SCHEMA2 = DATA / "ledger_schema2.sqlite"  # written by the previous version: 4 runs, 2 engagements


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def run(sandbox: Sandbox, ledger: Path, *files: Path, extra: tuple[str, ...] = ()) -> int:
    code, _ = invoke(
        "run", *map(str, files), "--engagement", "1234", "--country", "PH",
        "--api-url", sandbox.url, "--ledger", str(ledger), *extra,
    )  # fmt: skip
    return code


def results(ledger: Path, target: Path, *extra: str) -> list[dict[str, str]]:
    code, output = invoke("results", "--ledger", str(ledger), "-o", str(target), *extra)
    assert code in (0, 1), output
    with target.open(encoding="utf-8-sig", newline="") as text:
        return list(csv.DictReader(text))


def export(path: Path, people: range, *, renamed: int | None = None) -> Path:
    lines = [f"{'Renamed' if n == renamed else 'Person'} {n},0917{n:07d}" for n in people]
    return write_csv(path, "Name,Mobile", *lines)


def ledger_bytes(path: Path) -> int:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
    return path.stat().st_size


def test_run_twice_gives_one_line_per_row_each_with_the_contact_id(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger, people = tmp_path / "l.sqlite", export(tmp_path / "people.csv", range(100, 130))
    assert run(sandbox, ledger, people) == 0
    requests = sandbox.request_count()
    assert run(sandbox, ledger, people) == 0
    assert sandbox.request_count() == requests

    lines = results(ledger, tmp_path / "r.csv")
    assert [line["row"] for line in lines] == [str(n) for n in range(2, 32)]
    for line in lines:
        (contact,) = sandbox.contacts_for(line["phone"])
        assert line["status"] == "subscribed"
        assert line["contact_id"] == str(contact["id"])
    assert len(results(ledger, tmp_path / "h.csv", "--history")) == 60  # both versions
    _, output = invoke("status", "--ledger", str(ledger), "--json")
    second, first = json.loads(output)["runs"]
    assert second["rows"] == first["rows"] == {"subscribed": 30}  # the rows of the file it read
    frame = bulkimport.results(ledger)  # the library gives the same lines
    assert frame["row"].tolist() == list(range(2, 32))
    assert frame["contact_id"].tolist() == [int(line["contact_id"]) for line in lines]
    assert len(bulkimport.results(ledger, history=True)) == 60


def test_a_new_version_keeps_what_is_known_and_records_only_what_changed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger, path = tmp_path / "l.sqlite", tmp_path / "export.csv"
    assert run(sandbox, ledger, export(path, range(100, 120))) == 0
    # The tracker adds five people and corrects a name.
    assert run(sandbox, ledger, export(path, range(100, 125), renamed=105)) == 0
    assert sandbox.contact_count() == 25

    lines = results(ledger, tmp_path / "r.csv")
    assert len(lines) == 25
    by_row = {int(line["row"]): line for line in lines}
    renamed = by_row[7]
    assert renamed["status"] == "skipped"  # a changed row is recorded anew; its person is known
    assert renamed["Name"] == "Renamed 105"
    assert renamed["reason"].startswith("already subscribed on ")
    assert "(run 1, export.csv row 7)" in renamed["reason"]
    (contact,) = sandbox.contacts_for(renamed["phone"])
    assert renamed["contact_id"] == str(contact["id"])
    assert {line["status"] for n, line in by_row.items() if n != 7} == {"subscribed"}
    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT count(*) FROM rows").fetchone()[0] == 20 + 5 + 1
        assert db.execute("SELECT count(*) FROM subscriptions").fetchone()[0] == 25


def test_a_person_subscribed_from_another_file_is_skipped_with_their_contact_id(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.sqlite"
    first = write_csv(tmp_path / "a.csv", "Name,Mobile", "Ana,0917 123 4567")
    second = write_csv(tmp_path / "b.csv", "Name,Mobile", "Ben,0918 765 4321", "Ana,09171234567")
    assert run(sandbox, ledger, first) == 0
    assert run(sandbox, ledger, second) == 0
    lines = {line["Name"]: line for line in results(ledger, tmp_path / "r.csv")}
    (ana,) = sandbox.contacts_for("639171234567")
    assert lines["Ana"]["contact_id"] == str(ana["id"])
    assert [line["status"] for line in results(ledger, tmp_path / "b.csv", "--run", "2")] == [
        "subscribed",
        "skipped",
    ]
    assert "(run 1, a.csv row 2)" in results(ledger, tmp_path / "b.csv", "--run", "2")[1]["reason"]


def test_nights_of_a_growing_export_grow_the_ledger_by_the_new_people(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger, path = tmp_path / "l.sqlite", tmp_path / "export.csv"
    assert run(sandbox, ledger, export(path, range(1000, 2000))) == 0
    first = ledger_bytes(ledger)
    for night in range(1, 8):
        assert run(sandbox, ledger, export(path, range(1000, 2000 + 10 * night))) == 0
    assert sandbox.contact_count() == 1070
    # Measured exactly in `make bench`; here only: far from a copy per night.
    assert ledger_bytes(ledger) < 1.3 * first
    assert len(results(ledger, tmp_path / "r.csv")) == 1070


def rows_of(path: Path) -> tuple[int, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        return version, db.execute("SELECT * FROM rows ORDER BY id").fetchall()


def migrated(tmp_path: Path) -> Path:
    ledger = tmp_path / "bulkimport.sqlite"
    shutil.copy(SCHEMA2, ledger)
    return ledger


def test_a_schema_2_ledger_is_upgraded_in_place_with_a_copy_kept_and_nothing_lost(
    tmp_path: Path,
) -> None:
    ledger = migrated(tmp_path)
    with sqlite3.connect(SCHEMA2) as old:
        before = sorted(
            (status, contact_id, reason)
            for status, contact_id, reason in old.execute(
                "SELECT status, contact_id, reason FROM rows"
            )
        )
        subscribed = dict(
            old.execute("SELECT identity, contact_id FROM rows WHERE status = 'subscribed'")
        )
    Ledger.open(ledger).close()
    backup = tmp_path / "bulkimport.sqlite.schema2.bak"
    assert rows_of(backup) == rows_of(SCHEMA2)
    with sqlite3.connect(ledger) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3

    every = results(ledger, tmp_path / "h.csv", "--history")
    after = sorted(
        (line["status"], int(line["contact_id"]) if line["status"] == "subscribed" else None,
         line["reason"])
        for line in every
    )  # fmt: skip
    assert len(every) == len(before) == 162
    assert [a[0] for a in after] == [b[0] for b in before]
    assert [a[1] for a in after if a[0] == "subscribed"] == sorted(
        b[1] for b in before if b[0] == "subscribed"
    )
    # A row the old code skipped without a contact id now carries its person's.
    latest = results(ledger, tmp_path / "r.csv")
    assert len(latest) == 82  # each file once per engagement: 41 rows for 1234 and for 999
    for line in latest:
        if line["status"] in ("subscribed", "skipped"):
            assert line["contact_id"] == str(subscribed[line["phone"]])

    kept = backup.stat().st_mtime_ns
    Ledger.open(ledger).close()  # a second open changes nothing
    assert backup.stat().st_mtime_ns == kept
    assert sorted(p.name for p in tmp_path.iterdir() if ".bak" in p.name) == [backup.name]


def test_status_shows_people_and_open_rows_per_engagement(tmp_path: Path) -> None:
    ledger = migrated(tmp_path)
    code, output = invoke("status", "--ledger", str(ledger))
    assert code == 0
    assert "engagement 1234: 38 people subscribed · 0 rows open · 0 failed" in output
    assert "engagement 999: 0 people subscribed · 38 rows open · 0 failed" in output


def test_discard_stops_stranded_rows_from_blocking_retry(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = migrated(tmp_path)  # run 4 left 38 rows pending for engagement 999 (not found)
    code, output = invoke("retry", "--ledger", str(ledger), "--api-url", sandbox.url)
    assert code == 3, output
    assert sandbox.contact_count() == 0

    code, output = invoke("retry", "--ledger", str(ledger), "--api-url", sandbox.url,
                          "--engagement", "1234")  # fmt: skip
    assert code == 0, output
    assert "Nothing to retry for engagement 1234: its rows are settled." in output
    assert "Engagement 999 has rows waiting: `bulkimport retry --engagement 999`" in output

    code, output = invoke("discard", "--ledger", str(ledger), "--run", "4")
    assert code == 0, output
    assert "Discarded 38 rows of run 4" in output
    code, output = invoke("retry", "--ledger", str(ledger), "--api-url", sandbox.url)
    assert code == 0, output
    assert "Nothing to retry: every row in the ledger is settled." in output
    assert sandbox.request_count() == 1  # only the first, refused, retry asked the API

    code, output = invoke("status", "--ledger", str(ledger), "--json")
    engagements = {e["engagement"]: e for e in json.loads(output)["engagements"]}
    assert engagements[999]["rows"]["discarded"] == 38
    assert engagements[999]["rows_open"] == {}
    stranded = [
        line for line in results(ledger, tmp_path / "r.csv") if line["status"] == "discarded"
    ]
    assert len(stranded) == 38
    assert all("discarded on request" in line["reason"] for line in stranded)

    code, output = invoke("discard", "--ledger", str(ledger), "--run", "4")
    assert "Nothing to discard" in output


def test_discard_needs_to_be_told_which_rows(tmp_path: Path) -> None:
    ledger = migrated(tmp_path)
    code, output = invoke("discard", "--ledger", str(ledger))
    assert code == 2
    assert "--run N" in output
    code, output = invoke("discard", "--ledger", str(ledger), "--run", "99")
    assert code == 2
    assert "There is no run 99" in output
