"""`bulkimport check` end to end through click: output, exit codes, reports, bad files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from bulkimport.cli import main
from tests.conftest import DATA, write_csv


def check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "mixed.csv",
        "First Name,Last Name,Mobile No.,Position",
        "Juan,Dela Cruz,0917 123 4567,Driver",
        "Maria,Santos,+63 918 765 4321,Clerk",
        "Pedro,Reyes,,Cook",
        'Ana,Lim,=HYPERLINK("x"),Cook',
        "Jose,Rizal,09171234567,Writer",
        "Lea,Go,6.39171E+11,Nurse",
    )


def test_summary_counts_codes_and_first_problems_with_row_numbers(mixed: Path) -> None:
    code, output = check(str(mixed), "--country", "PH")
    assert code == 1
    assert (
        "columns used: First Name → firstName, Last Name → lastName, Mobile No. → fullPhoneNumber"
        in output
    )
    assert "columns not used: Position" in output
    assert "Rows read 6 · valid 2 · invalid 3 · duplicate 1" in output
    assert "mixed.csv row 4:" in output
    assert "mixed.csv row 6: same number as row 2" in output
    assert "phone_scientific_notation" in output


def test_all_valid_exits_0(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ok.csv", "Phone", "+63 917 123 4567", "+1 415 555 2671")
    code, output = check(str(path))
    assert code == 0, output
    assert "valid 2 · invalid 0 · duplicate 0" in output


def test_json_summary(mixed: Path) -> None:
    code, output = check(str(mixed), "--country", "PH", "--json")
    summary = json.loads(output)
    assert code == 1
    assert (summary["rows"], summary["valid"], summary["invalid"], summary["duplicate"]) == (
        6,
        2,
        3,
        1,
    )
    assert summary["problems"]["phone_missing"] == 1
    assert summary["sources"][0]["ignored"] == ["Position"]


def test_csv_report_has_one_formula_safe_line_per_row(mixed: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.csv"
    check(str(mixed), "--country", "PH", "--report", str(report))
    with report.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [
        "source", "sheet", "row", "status", "phone", "reason",
        "First Name", "Last Name", "Mobile No.", "Position",
    ]  # fmt: skip
    assert rows[1][:6] == [str(mixed), "", "2", "valid", "639171234567", ""]
    assert rows[4][3] == "invalid"
    assert rows[4][8] == '\'=HYPERLINK("x")'
    assert rows[3][8] == ""
    assert rows[3][3] == "invalid"
    assert [r[2] for r in rows[1:]] == ["2", "3", "4", "5", "6", "7"]


def test_xlsx_report_highlights_problems_and_holds_no_formula(mixed: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.xlsx"
    check(str(mixed), "--country", "PH", "--report", str(report))
    sheet = openpyxl.load_workbook(report)["Rows"]
    statuses = [row[3].value for row in sheet.iter_rows(min_row=2)]
    assert statuses == ["valid", "valid", "invalid", "invalid", "duplicate", "invalid"]
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    fills = {row[3].value: row[3].fill.fgColor.rgb for row in sheet.iter_rows(min_row=2)}
    assert fills["invalid"] != fills["valid"]


def test_numeric_excel_phone_cells_keep_all_digits() -> None:
    code, output = check(str(DATA / "numeric_phones.xlsx"), "--country", "PH", "--json")
    summary = json.loads(output)
    assert code == 0, output
    assert summary["valid"] == 4


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.csv", "does not exist"),
        ("empty.csv", "empty"),
        ("header_only.csv", "no data rows"),
        ("junk.csv", "not"),
        ("not_a_zip.xlsx", "not"),
        ("truncated.xlsx", "xlsx"),
        ("encrypted.xlsx", "password"),
        ("zip_bomb.xlsx", "zip bomb"),
    ],
)
def test_bad_files_get_one_line_and_exit_2(name: str, message: str) -> None:
    code, output = check(str(DATA / name))
    assert code == 2, output
    assert output.startswith("Error: ")
    assert message.lower() in output.lower()
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) == 1


def test_a_folder_and_an_unknown_extension_are_refused(tmp_path: Path) -> None:
    code, output = check(str(tmp_path))
    assert code == 2
    assert "folder" in output.lower()
    notes = tmp_path / "notes.pdf"
    notes.write_bytes(b"%PDF-1.4")
    code, output = check(str(notes))
    assert code == 2
    assert ".csv" in output


def test_no_phone_column_exits_2_with_the_headers_and_the_map_to_use(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "names.csv", "Name,Notes", "Ana,hi")
    code, output = check(str(path))
    assert code == 2
    assert "'Name', 'Notes'" in output
    assert "--map" in output


def test_unknown_country_is_a_usage_error(mixed: Path) -> None:
    code, output = check(str(mixed), "--country", "XX")
    assert code == 2
    assert "XX" in output


def test_xlsx_report_summary_sheet_has_the_final_counts(mixed: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.xlsx"
    check(str(mixed), "--country", "PH", "--report", str(report))
    summary = openpyxl.load_workbook(report)["Summary"]
    pairs = {row[0].value: row[1].value for row in summary.iter_rows()}
    assert (pairs["rows"], pairs["valid"], pairs["invalid"], pairs["duplicate"]) == (6, 2, 3, 1)


def test_no_phone_on_the_first_sheet_points_to_the_other_sheets() -> None:
    code, output = check(str(DATA / "two_sheets.xlsx"))
    assert code == 2
    assert "other sheets too (Applicants): pick one with --sheet" in output
    code, output = check(str(DATA / "two_sheets.xlsx"), "--sheet", "Applicants", "--country", "PH")
    assert code == 0
    assert "(sheet Applicants)" in output


def test_terminal_control_characters_from_a_file_are_shown_escaped(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "evil.csv", "Name,Phone\x1b[2J", "Ana,\x1b]0;pwned\x07 0917")
    code, output = check(str(path), "--country", "PH", "--map", "Phone\x1b[2J=phone")
    assert code == 1
    assert "\x1b" not in output
    assert "\x07" not in output
    assert "\\x1b]0;pwned\\x07" in output


def test_twenty_thousand_unused_columns_are_named_ten_and_counted(tmp_path: Path) -> None:
    others = [f"extra {n}" for n in range(1, 20_001)]
    path = write_csv(
        tmp_path / "wide.csv", ",".join(["Mobile", *others]), ",".join(["09171234567", *others])
    )

    code, output = check(str(path), "--country", "PH")

    assert code == 0, output[:2000]
    shown = ", ".join(others[:10])
    assert f"  columns not used: {shown} … and 19,990 more\n" in output
    assert len(output) < 1_000


def test_ten_unused_columns_are_all_named(tmp_path: Path) -> None:
    others = [f"extra {n}" for n in range(1, 11)]
    path = write_csv(tmp_path / "ten.csv", ",".join(["Mobile", *others]), "09171234567" + "," * 10)

    code, output = check(str(path), "--country", "PH")

    assert code == 0, output
    assert f"  columns not used: {', '.join(others)}\n" in output


def test_a_sheet_without_phones_names_ten_other_sheets_and_counts_the_rest(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    notes = workbook.active
    assert notes is not None
    notes.title = "Notes"
    notes.append(["remark"])
    notes.append(["none"])
    for number in range(1, 26):
        workbook.create_sheet(f"People {number}")
    path = tmp_path / "many.xlsx"
    workbook.save(path)

    code, output = check(str(path))

    assert code == 2, output
    others = ", ".join(f"People {n}" for n in range(1, 11))
    assert f"other sheets too ({others} … and 15 more): pick one with --sheet." in output
