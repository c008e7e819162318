"""Hostile and broken input end to end: through `check` and `run` (against the sandbox).

A file that cannot be used gets one line saying what to do, exit code 2, no
traceback, and nothing sent: the sandbox sees no request and the ledger holds
no row that a later `retry` could send. Files that are awkward but usable
(NUL bytes, mixed line endings, 20,000 columns, huge cells) are imported
correctly. The fixtures are in tests/data/hostile/ (see make_hostile.py there).
"""

from __future__ import annotations

import csv
import gc
import json
import logging
import re
import sqlite3
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result
from defusedxml import EntitiesForbidden

from bulkimport.cli import main
from bulkimport.errors import InputError
from bulkimport.ledger.store import SCHEMA_VERSION, Ledger
from bulkimport.read import guards, workbooks
from bulkimport.read.sources import CSV_FIELD_SIZE_LIMIT, SAMPLE_BYTES, check_ole2_parses
from bulkimport.sandbox import SANDBOX_TOKEN, Sandbox

DATA = Path(__file__).parent / "data"
HOSTILE = DATA / "hostile"
ENV = {"ENGAGESPARK_API_KEY": SANDBOX_TOKEN}


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env or ENV)


def assert_refused(result: Result, phrase: str) -> str:
    """Assert exit 2 with one line naming the problem, and no traceback; return the line."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), lines[0]
    assert phrase.lower() in lines[0].lower(), lines[0]
    return lines[0]


def run_args(sandbox: Sandbox, ledger: Path, *files: Path) -> list[str]:
    return [
        "run", *map(str, files), "--engagement", "1234", "--country", "PH",
        "--api-url", sandbox.url, "--ledger", str(ledger),
    ]  # fmt: skip


def ledger_rows(path: Path) -> dict[str, int]:
    """Return the ledger's rows by status ({} when there is no ledger)."""
    if not path.exists():
        return {}
    book = Ledger.open(path)
    try:
        return dict(book.counts())
    finally:
        book.close()


# --- files that cannot be used ------------------------------------------------------------


PEOPLE = 300


def people_lines(count: int = PEOPLE) -> list[str]:
    """Return CSV lines of valid people, each padded to about 270 bytes."""
    return [f"Person {n},0917 000 {n:04d},{'note ' * 50}" for n in range(count)]


def invalid_bytes_after_the_sample(folder: Path) -> Path:
    """Return a CSV that is UTF-8 for its first 64 KiB and then holds a cp1252 byte."""
    head = "Name,Mobile,Notes\n" + "\n".join(people_lines()) + "\n"
    assert len(head) > SAMPLE_BYTES  # detection sees only valid UTF-8
    path = folder / "late_bad_byte.csv"
    path.write_bytes(head.encode() + b"Ren\xe9 Ruiz,0917 999 0001,\n")
    return path


def unclosed_quote_late(folder: Path) -> Path:
    """Return a CSV whose 301st person opens a quote that never closes."""
    tail = [f"Tail {n},0917 001 {n:04d},{'x' * 1000}" for n in range(1100)]
    lines = ["Name,Mobile,Notes", *people_lines(), '"Quote,0917 999 0001,', *tail]
    text = "\n".join(lines) + "\n"
    assert len(text) > CSV_FIELD_SIZE_LIMIT
    path = folder / "unclosed_quote.csv"
    path.write_text(text, encoding="utf-8")
    return path


Maker = Callable[[Path], Path]
UNUSABLE: dict[str, tuple[Maker, str]] = {
    "empty": (lambda _: DATA / "empty.csv", "is empty (0 bytes)"),
    "header only": (lambda _: DATA / "header_only.csv", "has a header row but no data rows"),
    "no phone or id column": (
        lambda _: HOSTILE / "no_phone_column.csv",
        "No phone or contact id column",
    ),
    "binary junk named .csv": (lambda _: DATA / "junk.csv", "does not look like a text file"),
    "NUL bytes throughout": (lambda _: HOSTILE / "mostly_nul.csv", "holds binary data"),
    "binary junk named .xlsx": (lambda _: HOSTILE / "junk.xlsx", "is not a real .xlsx workbook"),
    "junk behind a zip signature": (lambda _: HOSTILE / "junk_zip.xlsx", "damaged or incomplete"),
    "truncated xlsx": (lambda _: DATA / "truncated.xlsx", "damaged or incomplete"),
    "password-protected xlsx": (lambda _: DATA / "encrypted.xlsx", "protected by a password"),
    "zip bomb": (lambda _: DATA / "zip_bomb.xlsx", "looks like a zip bomb"),
    "zip bomb in the sheet": (lambda _: HOSTILE / "sheet_bomb.xlsx", "looks like a zip bomb"),
    "zip bomb by declared size": (lambda _: HOSTILE / "declared_bomb.xlsx", "would unpack to"),
    "zip that lies about a size": (lambda _: HOSTILE / "lying_sizes.xlsx", "damaged"),
    "zip with a damaged member": (lambda _: HOSTILE / "damaged_member.xlsx", "damaged"),
    "billion laughs xlsx": (lambda _: HOSTILE / "billion_laughs.xlsx", "cannot be read"),
    "external entity xlsx": (lambda _: HOSTILE / "external_entity.xlsx", "cannot be read"),
    "billion laughs ods": (lambda _: HOSTILE / "billion_laughs.ods", "declares entities"),
    "xls that crashes the parser": (lambda _: HOSTILE / "crashing.xls", "crashed"),
    "two phone columns": (
        lambda _: HOSTILE / "two_phone_columns.csv",
        "could both be fullPhoneNumber",
    ),
    "invalid bytes after the sample": (invalid_bytes_after_the_sample, "not valid utf-8"),
    "unclosed quote late in the file": (unclosed_quote_late, "unclosed quote"),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_check_refuses_an_unusable_file_in_one_line(case: str, tmp_path: Path) -> None:
    make, phrase = UNUSABLE[case]
    report = tmp_path / "report.csv"
    assert_refused(invoke("check", str(make(tmp_path)), "--report", str(report)), phrase)
    assert list(tmp_path.glob("*report*")) == []  # not even a half-written report


def test_a_workbook_report_cut_short_leaves_nothing_behind(tmp_path: Path) -> None:
    report = tmp_path / "report.xlsx"
    result = invoke("check", str(invalid_bytes_after_the_sample(tmp_path)), "--report", str(report))
    gc.collect()  # a sheet left open would complain now, after the error line
    assert_refused(result, "not valid utf-8")
    assert list(tmp_path.glob("*report*")) == []


@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_run_refuses_an_unusable_file_and_sends_and_keeps_nothing(
    case: str, tmp_path: Path, sandbox: Sandbox
) -> None:
    make, phrase = UNUSABLE[case]
    good = tmp_path / "good.csv"
    good.write_text("Name,Mobile\nZed Uy,0917 555 0001\n", encoding="utf-8")
    ledger = tmp_path / "ledger.sqlite"

    result = invoke(*run_args(sandbox, ledger, good, make(tmp_path)))

    assert_refused(result, phrase)
    assert sandbox.request_count() == 0
    assert ledger_rows(ledger) == {}  # nothing a later `retry` or night could send
    retried = invoke("retry", "--ledger", str(ledger), "--api-url", sandbox.url)
    assert retried.exit_code == 0, retried.output
    assert "Nothing to retry" in retried.output
    assert sandbox.request_count() == 0


def test_a_file_broken_halfway_can_be_run_again_once_fixed(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """The rows read before the bad byte were forgotten, so the rerun sends each once."""
    broken = invalid_bytes_after_the_sample(tmp_path)
    ledger = tmp_path / "ledger.sqlite"
    assert_refused(invoke(*run_args(sandbox, ledger, broken)), "--encoding cp1252")

    result = invoke(*run_args(sandbox, ledger, broken), "--encoding", "cp1252", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["rows"] == {"subscribed": PEOPLE + 1}
    assert sandbox.contact_count() == PEOPLE + 1
    assert [c["firstName"] for c in sandbox.contacts_for("639179990001")] == ["René"]


# --- bombs are refused before parsing, in bounded memory -------------------------------------


class NoParsing:
    """Stands in for the workbook parser: reaching it means a bomb was not refused first."""

    @staticmethod
    def from_filelike(*args: object) -> None:
        raise AssertionError("the workbook parser was reached")


@pytest.mark.parametrize(
    "bomb",
    [DATA / "zip_bomb.xlsx", HOSTILE / "sheet_bomb.xlsx", HOSTILE / "declared_bomb.xlsx"],
    ids=lambda path: path.name,
)
def test_zip_bombs_are_refused_from_the_directory_in_bounded_memory(
    bomb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workbooks, "CalamineWorkbook", NoParsing)
    tracemalloc.start()
    try:
        result = invoke("check", str(bomb))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_refused(result, "bytes" if "declared" in bomb.name else "zip bomb")
    assert peak < 4 * 1024 * 1024, f"{peak:,} bytes: something was inflated"


# --- XML entities -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["billion_laughs.xlsx", "external_entity.xlsx"])
def test_entities_are_not_expanded_by_any_reader(name: str) -> None:
    started = time.monotonic()
    result = invoke("check", str(HOSTILE / name))
    assert time.monotonic() - started < 5
    # calamine's XML reader does not expand entities a DTD declares: using one is an error.
    assert_refused(result, "cannot be read as a workbook")
    assert "lollol" not in result.output
    assert "root:" not in result.output  # /etc/passwd, which the external entity names
    # openpyxl parses through defusedxml, which refuses entity declarations outright.
    assert openpyxl.DEFUSEDXML is True
    with pytest.raises(ValueError, match="Unable to read workbook") as caught:
        openpyxl.load_workbook(HOSTILE / name)
    assert isinstance(caught.value.__context__, EntitiesForbidden)


def test_the_same_workbook_without_entities_is_read() -> None:
    """The entity fixtures differ from a readable workbook only by their entities."""
    result = invoke("check", str(HOSTILE / "plain.xlsx"), "--country", "PH", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["valid"] == 1


# --- old-style workbooks are tried in a child process first ----------------------------------


def test_a_parser_crash_is_confined_to_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guards, "_OLE2_PROBE", "import os; os.abort()")
    with pytest.raises(InputError, match="crashed the workbook parser"):
        check_ole2_parses(DATA / "legacy.xls")


def test_the_child_runs_out_of_memory_not_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real probe, then an allocation far over the cap given to the child.
    monkeypatch.setattr(guards, "_OLE2_PROBE", guards._OLE2_PROBE + "\nbytearray(2**31)\n")
    with pytest.raises(InputError, match="crashed the workbook parser"):
        check_ole2_parses(DATA / "legacy.xls", max_memory_bytes=256 * 1024 * 1024)


def test_a_child_that_hangs_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guards, "_OLE2_PROBE", "while True: pass")
    with pytest.raises(InputError, match="was given up"):
        check_ole2_parses(DATA / "legacy.xls", max_seconds=0.2)


def test_readable_old_style_workbooks_pass_the_probe() -> None:
    check_ole2_parses(DATA / "legacy.xls")
    check_ole2_parses(DATA / "encrypted.xlsx")  # the password error is the reader's to report
    result = invoke("check", str(DATA / "legacy.xls"), "--country", "PH", "--json")
    assert result.exit_code == 0, result.output


# --- awkward files that work -------------------------------------------------------------------


def results_rows(path: Path) -> list[dict[str, Any]]:
    sheet = openpyxl.load_workbook(path)["Rows"]
    header = [str(cell.value) for cell in sheet[1]]
    return [
        dict(zip(header, (cell.value for cell in row), strict=True))
        for row in sheet.iter_rows(min_row=2)
    ]


def test_mixed_line_endings_keep_the_row_numbers_excel_shows(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    source = HOSTILE / "mixed_line_endings.csv"
    report = tmp_path / "report.csv"
    checked = invoke("check", str(source), "--country", "PH", "--report", str(report))
    assert checked.exit_code == 0, checked.output
    with report.open(encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.DictReader(handle))
    # Row 4 is the blank line; the quoted bare CR stays inside its cell.
    assert [(line["row"], line["Name"]) for line in lines] == [
        ("2", "Ana Reyes"), ("3", "Ben Cruz"), ("5", "Cy\rLim"), ("6", "Dee Go"),
    ]  # fmt: skip

    results = tmp_path / "results.xlsx"
    ran = invoke(*run_args(sandbox, tmp_path / "l.sqlite", source), "--results", str(results))
    assert ran.exit_code == 0, ran.output
    rows = results_rows(results)
    assert [(r["row"], r["status"], r["phone"]) for r in rows] == [
        (2, "subscribed", "639171234570"), (3, "subscribed", "639171234571"),
        (5, "subscribed", "639171234572"), (6, "subscribed", "639171234573"),
    ]  # fmt: skip
    assert sandbox.contacts_for("639171234572")[0]["lastName"] == "Lim"


def test_nul_bytes_in_cells_are_data_and_never_reach_a_workbook(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    results = tmp_path / "results.xlsx"
    ran = invoke(
        *run_args(sandbox, tmp_path / "l.sqlite", HOSTILE / "nul_bytes.csv"),
        "--results",
        str(results),
    )
    assert ran.exit_code == 1, ran.output  # the phone with a NUL in it is invalid
    rows = results_rows(results)
    assert [(r["row"], r["status"]) for r in rows] == [
        (2, "subscribed"), (3, "invalid"), (4, "subscribed"),
    ]  # fmt: skip
    assert rows[1]["reason"].startswith("Phone ")
    assert not any("\x00" in str(value) for row in rows for value in row.values())
    assert rows[0]["Name"] == "AnaReyes"  # a worksheet cannot hold a NUL: it is dropped
    assert sandbox.request_count() == 1
    assert sandbox.contacts_for("639171234570")[0]["firstName"] == "Ana\x00Reyes"


def test_twenty_thousand_columns_work_and_a_workbook_keeps_excels_16384(
    tmp_path: Path, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "wide.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(
            [
                ["Name", "Mobile", *(f"Extra {n}" for n in range(19_998))],
                ["Ana Reyes", "0917 123 4570", *(f"a{n}" for n in range(19_998))],
            ]
        )
    started = time.monotonic()
    report = tmp_path / "report.csv"
    checked = invoke("check", str(source), "--country", "PH", "--report", str(report))
    results = tmp_path / "results.xlsx"
    with caplog.at_level(logging.WARNING, logger="bulkimport"):
        ran = invoke(*run_args(sandbox, tmp_path / "l.sqlite", source), "--results", str(results))
    assert time.monotonic() - started < 20

    assert checked.exit_code == 0, checked.output
    with report.open(encoding="utf-8-sig", newline="") as handle:
        header, line = list(csv.reader(handle))
    assert (len(header), line[3], line[-1]) == (6 + 20_000, "valid", "a19997")
    assert ran.exit_code == 0, ran.output
    assert sandbox.contact_count() == 1
    with zipfile.ZipFile(results) as archive:
        rows = archive.read("xl/worksheets/sheet1.xml")
    # The last cell is in XFD, Excel's last column; a .csv keeps every column.
    cells = re.findall(rb'<c r="([A-Z]+[0-9]+)"', rows)
    assert (len(cells), cells[16_383], cells[-1]) == (2 * 16_384, b"XFD1", b"XFD2")
    assert rows.endswith(b"<t>a16373</t></is></c></row>", 0, rows.index(b"</sheetData>"))
    assert "the last 3624 of 20008 are left out" in caplog.text


def test_a_cell_over_excels_limit_is_kept_in_the_ledger_and_cut_in_the_workbook(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    huge = "x" * 40_000
    source = tmp_path / "long.csv"
    source.write_text(
        f"Name,Mobile,Notes\nAna Reyes,0917 123 4570,{huge}\n{huge},0917 123 4571,short\n",
        encoding="utf-8",
    )
    results, ledger = tmp_path / "results.xlsx", tmp_path / "l.sqlite"
    ran = invoke(*run_args(sandbox, ledger, source), "--results", str(results))
    assert ran.exit_code == 1, ran.output  # the 40,000-character name is too long to send
    first, second = results_rows(results)
    assert (first["status"], len(first["Notes"])) == ("subscribed", 32_767)
    assert (second["status"], len(second["Name"])) == ("invalid", 32_767)
    assert "255" in second["reason"]
    exported = invoke("results", "--ledger", str(ledger), "-o", str(tmp_path / "all.csv"))
    assert exported.exit_code == 0, exported.output
    with (tmp_path / "all.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["Notes"] == huge  # a CSV has no cell limit: nothing was lost


# --- ledgers that cannot be used ------------------------------------------------------------


def newer_ledger(folder: Path) -> Path:
    path = folder / "newer.sqlite"
    Ledger.open(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    return path


def damaged_ledger(folder: Path) -> Path:
    """Return a real ledger with one page in the middle overwritten with zeros."""
    path = folder / "damaged.sqlite"
    book = Ledger.open(path)
    run_id = book.start_run("run", 1234, {})
    source = book.add_source(run_id, 1234, "a.csv", "sha", "", ["Name"])
    book.link_sources(run_id, [source])
    book.close()
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO rows (source_id, run_id, engagement_id, row_number, status, cells, "
        "updated_at) VALUES (?, ?, 1234, ?, 'subscribed', ?, '')",
        [(source, run_id, n, json.dumps([f"Person {n}" * 10])) for n in range(2, 3000)],
    )
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    data = bytearray(path.read_bytes())
    assert len(data) > 8 * page_size
    data[3 * page_size : 4 * page_size] = bytes(page_size)
    path.write_bytes(bytes(data))
    return path


LEDGERS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "not a ledger": (lambda _: HOSTILE / "not_a_ledger.sqlite", "is not a bulkimport ledger"),
    "newer schema": (newer_ledger, "written by a newer bulkimport"),
    "damaged page": (damaged_ledger, "is damaged"),
}


@pytest.fixture
def ledger_case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    make, phrase = LEDGERS[request.param]
    original = make(tmp_path)
    copy = tmp_path / f"copy-{original.name}"
    copy.write_bytes(original.read_bytes())
    return copy, phrase


@pytest.mark.parametrize("ledger_case", sorted(LEDGERS), indirect=True)
@pytest.mark.parametrize("command", ["run", "retry", "status", "results"])
def test_an_unusable_ledger_is_refused_and_left_as_it_was(
    ledger_case: tuple[Path, str], command: str, tmp_path: Path, sandbox: Sandbox
) -> None:
    ledger, phrase = ledger_case
    before = ledger.read_bytes()
    args = {
        "run": run_args(sandbox, ledger, HOSTILE / "mixed_line_endings.csv"),
        "retry": ["retry", "--ledger", str(ledger), "--api-url", sandbox.url],
        "status": ["status", "--ledger", str(ledger)],
        "results": ["results", "--ledger", str(ledger), "-o", str(tmp_path / "r.xlsx")],
    }[command]

    assert_refused(invoke(*args), phrase)

    assert ledger.read_bytes() == before
    assert sandbox.request_count() == 0
    assert not (tmp_path / "r.xlsx").exists()


def test_another_applications_database_keeps_its_data(tmp_path: Path, sandbox: Sandbox) -> None:
    other = tmp_path / "crm.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE people (name TEXT)")
    db.execute("INSERT INTO people VALUES ('Ana')")
    db.commit()
    db.close()
    result = invoke(*run_args(sandbox, other, HOSTILE / "mixed_line_endings.csv"))
    assert_refused(result, "not a bulkimport ledger")
    db = sqlite3.connect(other)
    assert db.execute("SELECT name FROM people").fetchall() == [("Ana",)]
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("people",)]
    db.close()
    assert sandbox.request_count() == 0


# --- the nightly job -----------------------------------------------------------------------------


NIGHT = """\
engagement = 1234
inputs = ["inbox/*"]
api_url = "{url}"
country = "PH"
ledger = "ledger.sqlite"
settle_seconds = 0
"""


def nightly(config: Path) -> Result:
    return CliRunner().invoke(main, ["nightly", "--config", str(config)], env=ENV)


def assert_night_refused(result: Result, phrase: str) -> dict[str, Any]:
    """Assert a night that could not start: exit 2, one JSON line, one error line, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    (line,) = result.stdout.strip().splitlines()
    night: dict[str, Any] = json.loads(line)
    assert night["exit_code"] == 2
    assert phrase in night["error"], night["error"]
    (error,) = result.stderr.strip().splitlines()
    assert error == f"Error: {night['error']}"
    return night


@pytest.mark.parametrize(
    ("setting", "phrase"),
    [
        ('engagement = "1234"', '"engagement" must be the engagement id'),
        ("batch_size = true", '"batch_size" must be a whole number'),
        ("timeout = nan", '"timeout" must be a number of seconds'),
        ("groups = [1.5]", '"groups" must be a list of group ids'),
        ('encoding = "utf-8\\u0000"', '"encoding" must be an encoding name'),
        ('ledger = "led\\u0000ger.sqlite"', '"ledger" must be a file path'),
        ('api_url = "http://[::1/api/v1"', '"api_url" must be an http(s) address'),
        ('log_file = "inbox"', '"log_file": '),
        ("inputs = 5", '"inputs" must be a file pattern'),
    ],
)
def test_a_config_with_wrong_types_is_refused(
    setting: str, phrase: str, tmp_path: Path, sandbox: Sandbox
) -> None:
    (tmp_path / "inbox").mkdir()
    key = setting.split(" ")[0]
    lines = [
        line for line in NIGHT.format(url=sandbox.url).splitlines() if line.split(" ")[0] != key
    ]
    config = tmp_path / "import.toml"
    config.write_text("\n".join([*lines, setting]) + "\n", encoding="utf-8")
    assert_night_refused(nightly(config), phrase)
    assert sandbox.request_count() == 0
    assert not (tmp_path / "ledger.sqlite").exists()


def test_the_wrong_types_fixture_names_the_first_bad_key(tmp_path: Path) -> None:
    config = tmp_path / "import.toml"
    config.write_bytes((HOSTILE / "wrong_types.toml").read_bytes())
    assert_night_refused(nightly(config), 'import.toml line 1: "engagement" must be')


def test_a_night_with_a_ledger_that_is_not_a_ledger_sends_nothing(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "people.csv").write_text("Mobile\n0917 123 4570\n", encoding="utf-8")
    (tmp_path / "ledger.sqlite").write_bytes((HOSTILE / "not_a_ledger.sqlite").read_bytes())
    config = tmp_path / "import.toml"
    config.write_text(NIGHT.format(url=sandbox.url), encoding="utf-8")
    assert_night_refused(nightly(config), "is not a bulkimport ledger")
    assert sandbox.request_count() == 0


def test_hostile_files_in_the_inbox_do_not_stop_the_night(tmp_path: Path, sandbox: Sandbox) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    hostile = ["crashing.xls", "billion_laughs.xlsx", "lying_sizes.xlsx", "junk.xlsx"]
    for name in hostile:
        (inbox / name).write_bytes((HOSTILE / name).read_bytes())
    invalid_bytes_after_the_sample(inbox)
    (inbox / "good.csv").write_text("Name,Mobile\nZed Uy,0917 555 0001\n", encoding="utf-8")
    config = tmp_path / "import.toml"
    config.write_text(NIGHT.format(url=sandbox.url), encoding="utf-8")

    result = nightly(config)

    assert result.exit_code == 1, result.output  # unusable files need a person
    assert "Traceback" not in result.output
    night = json.loads(result.stdout.strip().splitlines()[-1])
    assert night["files"]["processed"] == 1
    assert night["files"]["unreadable"] == len(hostile) + 1
    assert len(night["problems"]) == len(hostile) + 1
    assert night["rows"] == {"subscribed": 1}
    assert sandbox.request_count() == 1
    assert ledger_rows(tmp_path / "ledger.sqlite") == {"subscribed": 1}
