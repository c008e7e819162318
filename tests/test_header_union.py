"""One header for every output: repeated and nameless columns keep their cells everywhere."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulkimport.cli import main
from bulkimport.output.tables import HeaderUnion, column_labels
from bulkimport.sandbox import Sandbox
from tests.conftest import write_csv

OWN = ["source", "sheet", "row", "status"]


def invoke(*args: str) -> int:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.reader(stream))


def originals(table: list[list[str]], skip: int) -> list[list[str]]:
    """Return the user's own columns of a report or results table: all after ``skip``."""
    return [line[skip:] for line in table]


def run_args(sandbox: Sandbox, ledger: Path, *extra: str) -> list[str]:
    return [
        "--engagement", "1234", "--country", "PH", "--api-url", sandbox.url,
        "--ledger", str(ledger), *extra,
    ]  # fmt: skip


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "notes.csv",
        "Name,Mobile,Note,Note,",
        "Ana,0917 123 4567,first,second,third",
        "Ben,0918 765 4321,,only the second,",
    )


EXPECTED = [
    ["Name", "Mobile", "Note", "Note (again)", "column 5"],
    ["Ana", "0917 123 4567", "first", "second", "third"],
    ["Ben", "0918 765 4321", "", "only the second", ""],
]


def test_check_report_keeps_a_repeated_and_a_nameless_column(notes: Path, tmp_path: Path) -> None:
    report = tmp_path / "check.csv"

    assert invoke("check", str(notes), "--country", "PH", "--report", str(report)) == 0

    table = read_csv(report)
    assert table[0][:6] == ["source", "sheet", "row", "status", "phone", "reason"]
    assert originals(table, 6) == EXPECTED


@pytest.mark.usefixtures("api_env")
def test_run_results_and_the_results_command_keep_every_cell(
    sandbox: Sandbox, notes: Path, tmp_path: Path
) -> None:
    ledger, after_run, later = tmp_path / "l.sqlite", tmp_path / "run.csv", tmp_path / "later.csv"

    assert invoke("run", str(notes), *run_args(sandbox, ledger, "--results", str(after_run))) == 0
    assert invoke("results", "--ledger", str(ledger), "-o", str(later)) == 0

    for path in (after_run, later):
        table = read_csv(path)
        assert table[0][:8] == [*OWN, "contact_id", "subscribed_at", "phone", "reason"]
        assert [line[3] for line in table[1:]] == ["subscribed", "subscribed"]
        assert originals(table, 8) == EXPECTED


@pytest.mark.usefixtures("api_env")
def test_check_report_and_results_file_show_several_files_under_one_header(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    first = write_csv(tmp_path / "a.csv", "Name,Mobile,Note", "Ana,0917 123 4567,a note")
    second = write_csv(tmp_path / "b.csv", "Mobile,Note,Note,Name", "0918 765 4321,one,two,Ben")
    report, results, ledger = tmp_path / "check.csv", tmp_path / "run.csv", tmp_path / "l.sqlite"
    files = (str(first), str(second))

    assert invoke("check", *files, "--country", "PH", "--report", str(report)) == 0
    assert invoke("run", *files, *run_args(sandbox, ledger, "--results", str(results))) == 0

    expected = [
        ["Name", "Mobile", "Note", "Note (again)"],
        ["Ana", "0917 123 4567", "a note", ""],
        ["Ben", "0918 765 4321", "one", "two"],
    ]
    assert originals(read_csv(report), 6) == expected
    assert originals(read_csv(results), 8) == expected


def test_labels_make_every_name_distinct() -> None:
    header = ["Note", "", "Note", "Note (again)", "Note", "column 2"]

    assert column_labels(header) == [
        "Note",
        "column 2",
        "Note (again)",
        "Note (again) (again)",
        "Note (again) (again) (again)",
        "column 2 (again)",
    ]


def test_cells_beyond_the_header_follow_the_union_and_trailing_blanks_drop() -> None:
    union = HeaderUnion([("A", "B"), ("B", "C")])

    assert union.names == ["A", "B", "C"]
    assert union.cells(("B", "C"), ["b", "c", "extra", "", ""]) == ["", "b", "c", "extra"]
    assert union.cells(["A", "B"], ["a"]) == ["a", "", ""]
    assert union.all_names() == ["A", "B", "C", "column 3"]  # only headers of width 2 overflowed


def test_cells_beyond_one_width_are_named_after_their_column() -> None:
    union = HeaderUnion([("A", "column 3")])
    union.cells(("A", "column 3"), ["a", "b", "c", "d"])
    assert union.all_names() == ["A", "column 3", "column 3 (again)", "column 4"]


def test_check_report_keeps_a_cell_beyond_the_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ragged.csv", "Name,Mobile", "Ana,0917 123 4567,stray note")
    report = tmp_path / "check.csv"

    assert invoke("check", str(path), "--country", "PH", "--report", str(report)) == 0

    assert originals(read_csv(report), 6) == [
        ["Name", "Mobile", "column 3"],
        ["Ana", "0917 123 4567", "stray note"],
    ]
