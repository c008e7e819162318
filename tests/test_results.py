"""Results files: exact content, formula safety, colours, permissions, streaming."""

from __future__ import annotations

import csv
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from bulkimport.errors import InputError
from bulkimport.output import workbook as results
from bulkimport.output.tables import formula_safe, write_table

COLUMNS = ("row", "name", "phone", "status", "contact id", "reason")
ROWS: list[tuple[object, ...]] = [
    (2, "José Peña", "639171234567", "subscribed", 17620219, None),
    (3, "Ana Cruz", "", "invalid", None, "phone_missing: the phone cell is empty"),
    (4, "Ben Reyes", "639181112222", "duplicate", None, "same number as row 2"),
]
PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.reader(stream))


def rows_sheet(path: Path) -> Worksheet:
    return openpyxl.load_workbook(path)["Rows"]


def values(sheet: Worksheet) -> list[tuple[object, ...]]:
    return list(sheet.iter_rows(values_only=True))


def fill_of(sheet: Worksheet, coordinate: str) -> str | None:
    fill = sheet[coordinate].fill
    if fill.fill_type != "solid":
        return None
    return str(fill.fgColor.rgb)[-6:]


# --- formula_safe -----------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_formula_safe_quotes_text_that_a_spreadsheet_would_run(prefix: str) -> None:
    assert formula_safe(prefix + "SUM(A1:A9)") == "'" + prefix + "SUM(A1:A9)"


@pytest.mark.parametrize("value", ["José", "0917 123 4567", "", "a=b", 639171234567, -5, None])
def test_formula_safe_leaves_everything_else_alone(value: object) -> None:
    assert formula_safe(value) == value


# --- CSV --------------------------------------------------------------------


def test_csv_holds_header_and_rows_exactly_with_a_bom(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"

    written = write_table(target, COLUMNS, iter(ROWS))

    assert written == 3
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_csv(target) == [
        list(COLUMNS),
        ["2", "José Peña", "639171234567", "subscribed", "17620219", ""],
        ["3", "Ana Cruz", "", "invalid", "", "phone_missing: the phone cell is empty"],
        ["4", "Ben Reyes", "639181112222", "duplicate", "", "same number as row 2"],
    ]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_csv_cells_cannot_become_formulas(tmp_path: Path, prefix: str) -> None:
    target = tmp_path / "results.csv"
    evil = prefix + 'HYPERLINK("http://x")'

    write_table(target, ["name", prefix + "col"], [(evil, -3)])

    header, row = read_csv(target)
    assert header == ["name", "'" + prefix + "col"]
    assert row == ["'" + evil, "-3"]


class TrackedRow(list[object]):
    """A row that counts how many rows are alive at once."""

    alive = 0
    most_alive = 0

    def __init__(self, values: tuple[object, ...]) -> None:
        super().__init__(values)
        TrackedRow.alive += 1
        TrackedRow.most_alive = max(TrackedRow.most_alive, TrackedRow.alive)

    def __del__(self) -> None:
        TrackedRow.alive -= 1


def tracked_rows(count: int) -> Iterator[TrackedRow]:
    TrackedRow.alive = TrackedRow.most_alive = 0
    for number in range(count):
        yield TrackedRow((number + 2, f"Person {number}", str(639170000000 + number), "subscribed"))


@pytest.mark.parametrize(
    ("name", "count", "held"),
    # The row being written and the next one; an XLSX also samples rows to size its columns.
    [("big.csv", 200_000, 2), ("big.xlsx", 2_000, results.WIDTH_SAMPLE_ROWS + 2)],
)
def test_rows_stream_from_a_generator(tmp_path: Path, name: str, count: int, held: int) -> None:
    target = tmp_path / name

    written = write_table(target, ["row", "name", "phone", "status"], tracked_rows(count))

    assert written == count
    assert TrackedRow.most_alive <= held
    last = (count + 1, f"Person {count - 1}", str(639170000000 + count - 1), "subscribed")
    if name.endswith(".csv"):
        lines = read_csv(target)
        assert len(lines) == count + 1
        assert lines[-1] == [str(value) for value in last]
    else:
        rows = values(rows_sheet(target))
        assert len(rows) == count + 1
        assert rows[-1] == last


# --- XLSX -------------------------------------------------------------------


def test_xlsx_holds_header_and_rows_exactly_with_int_cells(tmp_path: Path) -> None:
    target = tmp_path / "results.xlsx"

    written = write_table(target, COLUMNS, iter(ROWS))

    assert written == 3
    workbook = openpyxl.load_workbook(target)
    assert workbook.sheetnames == ["Rows", "Summary"]
    empty_phone = (3, "Ana Cruz", None, "invalid", None, "phone_missing: the phone cell is empty")
    assert values(workbook["Rows"]) == [COLUMNS, ROWS[0], empty_phone, ROWS[2]]
    sheet = workbook["Rows"]
    assert sheet["A2"].data_type == "n"
    assert sheet["E2"].value == 17620219
    assert sheet["E2"].number_format == "0"
    assert sheet["C2"].data_type == "s"  # a phone given as text stays text


def test_xlsx_header_is_bold_frozen_filtered_and_sized(tmp_path: Path) -> None:
    target = tmp_path / "results.xlsx"
    long_reason = "x" * 200

    write_table(target, COLUMNS, [*ROWS, (5, "Eve", "", "failed", None, long_reason)])

    sheet = rows_sheet(target)
    assert all(cell.font.bold for cell in sheet[1])
    assert not sheet["B2"].font.bold
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:F5"
    widths = {letter: sheet.column_dimensions[letter].width for letter in "ABCDEF"}
    assert widths["A"] == results.MIN_WIDTH
    assert widths["C"] == len("639171234567") + 2
    assert widths["F"] == results.MAX_WIDTH


@pytest.mark.parametrize("prefix", PREFIXES)
def test_xlsx_has_no_formula_cell(tmp_path: Path, prefix: str) -> None:
    target = tmp_path / "results.xlsx"
    evil = prefix + "1+1"

    write_table(
        target,
        ["name", prefix + "col", "status"],
        [(evil, "=cmd|' /C calc'!A0", "invalid"), ("#N/A", "=", "valid")],
        summary=[(prefix + "label", evil)],
    )

    # A carriage return survives (openpyxl writes it as &#13; with lxml); the quote in front
    # is what matters.
    workbook = openpyxl.load_workbook(target)
    cells = [cell for sheet in workbook for row in sheet.iter_rows() for cell in row]
    assert cells
    assert [cell.coordinate for cell in cells if cell.data_type == "f"] == []
    assert all(cell.data_type == "s" for cell in cells if isinstance(cell.value, str))
    assert values(workbook["Rows"]) == [
        ("name", "'" + prefix + "col", "status"),
        ("'" + evil, "'=cmd|' /C calc'!A0", "invalid"),
        ("#N/A", "'=", "valid"),
    ]
    assert values(workbook["Summary"]) == [("'" + prefix + "label", "'" + evil)]


@pytest.mark.parametrize(
    ("status", "colour"),
    [
        ("subscribed", results.GREEN),
        ("skipped", results.GREY),
        ("valid", None),
        ("invalid", results.RED),
        ("failed", results.RED),
        ("duplicate", results.AMBER),
        ("unknown", results.AMBER),
        ("pending", results.AMBER),
    ],
)
def test_xlsx_rows_are_coloured_by_status(tmp_path: Path, status: str, colour: str | None) -> None:
    target = tmp_path / "results.xlsx"

    write_table(
        target, ["name", "status", "reason"], [("Ana", status, None), ("Ben", "other", None)]
    )

    sheet = rows_sheet(target)
    assert [fill_of(sheet, f"{column}2") for column in "ABC"] == [colour] * 3
    assert [fill_of(sheet, f"{column}3") for column in "ABC"] == [None] * 3
    assert fill_of(sheet, "A1") is None


def test_xlsx_colours_by_the_named_status_column(tmp_path: Path) -> None:
    target = tmp_path / "check.xlsx"

    write_table(target, ["state", "status"], [("failed", "subscribed")], status_column="state")

    assert fill_of(rows_sheet(target), "B2") == results.RED


def test_xlsx_summary_sheet_holds_the_pairs(tmp_path: Path) -> None:
    target = tmp_path / "results.xlsx"
    summary = [("Source", "applicants.xlsx"), ("Rows read", 200), ("Subscribed", 181)]

    write_table(target, COLUMNS, ROWS, summary=summary)

    sheet = openpyxl.load_workbook(target)["Summary"]
    assert values(sheet) == summary
    assert sheet["A1"].font.bold
    assert sheet["B2"].data_type == "n"


def test_xlsx_summary_callable_is_read_after_the_last_row(tmp_path: Path) -> None:
    target = tmp_path / "results.xlsx"
    counted = {"invalid": 0}

    def counting() -> Iterator[tuple[object, ...]]:
        for row in ROWS:
            counted["invalid"] += row[3] == "invalid"
            yield row

    write_table(target, COLUMNS, counting(), summary=lambda: [("invalid", counted["invalid"])])

    assert values(openpyxl.load_workbook(target)["Summary"]) == [("invalid", 1)]


def test_xlsx_drops_characters_a_worksheet_cannot_hold(tmp_path: Path) -> None:
    target = tmp_path / "results.xlsx"

    write_table(target, ["name"], [("Ana\x00 \x0bCruz\x1f",)])

    assert values(rows_sheet(target))[1] == ("Ana Cruz",)


# --- the file itself --------------------------------------------------------


@pytest.mark.parametrize("name", ["results.csv", "results.xlsx", "RESULTS.XLSX"])
def test_file_is_private_and_replaces_an_existing_one(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    target.write_text("old content")
    target.chmod(0o644)

    write_table(target, COLUMNS, ROWS)

    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes() != b"old content"
    assert [path.name for path in tmp_path.iterdir()] == [name]


def test_a_failing_row_source_leaves_the_old_file_and_no_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "results.xlsx"
    target.write_text("old content")

    def broken() -> Iterator[tuple[object, ...]]:
        yield ROWS[0]
        raise RuntimeError("ledger went away")

    with pytest.raises(RuntimeError, match="ledger went away"):
        write_table(target, COLUMNS, broken())

    assert target.read_text() == "old content"
    assert [path.name for path in tmp_path.iterdir()] == ["results.xlsx"]


@pytest.mark.parametrize("name", ["results.csv", "results.xlsx"])
def test_an_unreadable_source_is_not_blamed_on_the_results_file(tmp_path: Path, name: str) -> None:
    def unreadable() -> Iterator[tuple[object, ...]]:
        yield ROWS[0]
        raise FileNotFoundError(2, "No such file or directory", "applicants.xlsx")

    with pytest.raises(FileNotFoundError) as caught:
        write_table(tmp_path / name, COLUMNS, unreadable())

    assert caught.value.filename == "applicants.xlsx"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["results.txt", "results.xls", "results"])
def test_unknown_suffix_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match=r"use a \.csv or \.xlsx name"):
        write_table(tmp_path / name, COLUMNS, ROWS)

    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    target = tmp_path / "no such folder" / "results.csv"

    with pytest.raises(InputError, match="does not exist") as caught:
        write_table(target, COLUMNS, ROWS)

    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_target_that_is_a_folder_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "results.csv").mkdir()

    with pytest.raises(InputError, match="is a folder"):
        write_table(tmp_path / "results.csv", COLUMNS, ROWS)

    assert [path.name for path in tmp_path.iterdir()] == ["results.csv"]


def test_permission_denied_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests may run as root, where chmod cannot take the right away.
    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)

    with pytest.raises(InputError, match="permission denied"):
        write_table(tmp_path / "results.xlsx", COLUMNS, ROWS)


def test_openpyxl_reads_xml_through_defusedxml() -> None:
    assert openpyxl.DEFUSEDXML is True
