"""A row longer than its header: the cells to its right are kept, and check counts such rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner
from openpyxl import load_workbook

from bulkimport.cli import main
from bulkimport.jobs.check import check_files
from bulkimport.rows.phones import PhonePolicy
from bulkimport.rows.prepare import ImportOptions
from bulkimport.sandbox import Sandbox
from tests.conftest import DATA, write_csv

LONGER_ROWS = DATA / "txt_longer_rows.csv"
SAID = (
    "longer than the header: the cells to its right are kept as columns of their own (column N)\n"
)


def check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_check_says_once_how_many_rows_were_longer() -> None:
    code, output = check(str(LONGER_ROWS), "--country", "PH")
    assert code == 0
    assert output.count("longer than the header") == 1
    assert f"  1 row is {SAID}" in output
    summary = json.loads(check(str(LONGER_ROWS), "--country", "PH", "--json")[1])
    assert summary["longer_rows"] == 1
    assert summary["sources"][0]["longer_rows"] == 1


def test_the_report_keeps_the_extra_cell(tmp_path: Path) -> None:
    report = tmp_path / "check.csv"
    code, _ = check(str(LONGER_ROWS), "--country", "PH", "--report", str(report))
    assert code == 0
    with report.open(encoding="utf-8-sig", newline="") as text:
        lines = list(csv.reader(text))
    assert [line[6:] for line in lines[1:]] == [
        ["Juan Dela Cruz", "09171234567", "call after 5pm"],
        ["Maria Santos", "09181234567"],
        ["Pedro Reyes", "09191234567"],
    ]


def test_every_longer_row_is_counted(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "wide.csv", "Name,Mobile", "Ana,09171234567,a,,b", "Ben,09181234567,c"
    )
    summary = check_files([path], ImportOptions(phones=PhonePolicy(country="PH")))
    assert [source.longer_rows for source in summary.sources] == [2]
    assert f"  2 rows are {SAID}" in check(str(path), "--country", "PH")[1]


def test_trailing_empty_cells_are_not_a_longer_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "commas.csv", "Name,Mobile", "Ana,09171234567,,")
    assert json.loads(check(str(path), "--country", "PH", "--json")[1])["longer_rows"] == 0
    assert "longer than the header" not in check(str(path), "--country", "PH")[1]


def test_the_extra_cell_is_named_column_3_in_the_report(tmp_path: Path) -> None:
    report = tmp_path / "check.csv"
    check(str(LONGER_ROWS), "--country", "PH", "--report", str(report))
    with report.open(encoding="utf-8-sig", newline="") as text:
        header = next(csv.reader(text))
    assert header[6:] == ["Name", "Mobile", "column 3"]


def test_a_workbook_report_names_the_extra_cells_too(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "wide.csv", "Name,Mobile", "Ana,09171234567,a,,b", "Ben,0918,c")
    report = tmp_path / "check.xlsx"
    check(str(path), "--country", "PH", "--report", str(report))
    sheet = load_workbook(report, read_only=True)["Rows"]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[0][6:] == ["Name", "Mobile", "column 3", "column 4", "column 5"]
    assert rows[1][6:] == ["Ana", "09171234567", "a", None, "b"]
    assert rows[2][6:9] == ["Ben", "0918", "c"]


def test_files_of_different_widths_share_extra_cell_columns(tmp_path: Path) -> None:
    narrow = write_csv(tmp_path / "narrow.csv", "Name,Mobile", "Ana,09171234567,note")
    wide = write_csv(tmp_path / "wide.csv", "Name,Mobile,City", "Ben,09181234567,Cebu,x")
    report = tmp_path / "check.csv"
    check(str(narrow), str(wide), "--country", "PH", "--report", str(report))
    with report.open(encoding="utf-8-sig", newline="") as text:
        lines = list(csv.reader(text))
    assert lines[0][6:] == ["Name", "Mobile", "City", "extra cell 1"]
    assert [line[6:] for line in lines[1:]] == [
        ["Ana", "09171234567", "", "note"],
        ["Ben", "09181234567", "Cebu", "x"],
    ]


def test_results_keep_the_extra_cell_under_column_3(
    sandbox: Sandbox, api_env: str, tmp_path: Path
) -> None:
    ledger, results = tmp_path / "l.sqlite", tmp_path / "results.csv"
    run = CliRunner().invoke(
        main,
        ["run", str(LONGER_ROWS), "--engagement", "1234", "--country", "PH",
         "--api-url", sandbox.url, "--ledger", str(ledger)],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    shown = CliRunner().invoke(main, ["results", "--ledger", str(ledger), "-o", str(results)])
    assert shown.exit_code == 0, shown.output
    with results.open(encoding="utf-8-sig", newline="") as text:
        lines = list(csv.DictReader(text))
    assert [line["column 3"] for line in lines] == [
        "call after 5pm",
        None,
        None,
    ]  # ragged: not padded
    assert [line["Mobile"] for line in lines] == ["09171234567", "09181234567", "09191234567"]
