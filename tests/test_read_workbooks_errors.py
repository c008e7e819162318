"""Formula error cells (#N/A from a failed VLOOKUP...) read as their text, not as empty."""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

import pytest

from bulkimport.contacts import Problem
from bulkimport.read.guards import xls_error_cells
from bulkimport.read.sources import EXCEL_ERRORS, open_source

DATA = Path(__file__).parent / "data"


def read_rows(path: Path) -> list[tuple[int, tuple[str, ...]]]:
    with open_source(path) as table:
        return [(row.row, row.cells) for row in table.rows]


def test_xlsx_error_cells_read_as_their_text() -> None:
    assert read_rows(DATA / "wb_formula_errors.xlsx") == [
        (2, ("Ana", "09171234567", "ok")),
        (3, ("Ben", "#N/A", "0")),
        (4, ("Cy", "#DIV/0!", "0")),
        (5, ("Dee", "#VALUE!", "0")),
        (6, ("Eve", "#N/A", "#REF!")),
    ]


def test_xlsb_error_cells_read_as_their_text() -> None:
    assert read_rows(DATA / "wb_formula_errors.xlsb") == [
        (2, ("Ana", "09171234567")),
        (3, ("Ben", "#N/A")),
        (4, ("Cy", "#DIV/0!")),
    ]


@pytest.mark.parametrize("text", ["#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!"])
def test_error_literals_are_known(text: str) -> None:
    assert text in EXCEL_ERRORS
    assert Problem.CELL_FORMULA_ERROR == "cell_formula_error"


def test_ods_error_cells_read_as_their_text() -> None:
    assert read_rows(DATA / "wb_formula_errors.ods") == [
        (2, ("Ana", "09171234567")),
        (3, ("Ben", "#N/A")),
    ]


def test_xlsx_error_cell_with_its_type_before_its_reference(tmp_path: Path) -> None:
    source = DATA / "wb_formula_errors.xlsx"
    path = tmp_path / "type_first.xlsx"
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(path, "w") as target:
        for member in archive.infolist():
            payload = archive.read(member)
            if member.filename == "xl/worksheets/sheet1.xml":
                payload = payload.replace(b'<c r="B3" t="e">', b'<c t="e" s="0" r="B3">')
            target.writestr(member, payload)

    assert read_rows(path)[1] == (3, ("Ben", "#N/A", "0"))


def test_xls_error_cells_read_as_their_text() -> None:
    assert read_rows(DATA / "wb_formula_errors.xls") == [
        (2, ("Ana", "09171234567")),
        (3, ("Ben", "#N/A")),
        (4, ("Cy", "#DIV/0!")),
    ]


@pytest.mark.parametrize("cut", [0, 100, 512, 1500, 3000])
def test_xls_error_scan_of_a_cut_file_finds_nothing(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "cut.xls"
    path.write_bytes((DATA / "wb_formula_errors.xls").read_bytes()[:cut])

    assert xls_error_cells(path, 0) == {}


def test_check_gives_a_formula_error_in_the_phone_column_its_own_code() -> None:
    from click.testing import CliRunner

    from bulkimport.cli import main

    result = CliRunner().invoke(
        main, ["check", str(DATA / "wb_formula_errors.xlsx"), "--country", "PH", "--json"]
    )
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["problems"] == {"cell_formula_error": 4}
    assert summary["first_problems"][0]["message"] == (
        "The phone cell holds a formula error #N/A: fix the formula in the workbook, "
        "or paste the values (Paste Special > Values) and export again."
    )


def test_an_error_cell_across_a_chunk_edge_is_found(tmp_path: Path) -> None:
    """A long formula puts the error cell across the scan's 1 MiB chunk edge."""
    source = DATA / "wb_formula_errors.xlsx"
    path = tmp_path / "edge.xlsx"
    formula = b"<f>VLOOKUP(A3,Phones!A:B,2,FALSE)</f>"
    long_formula = b"<f>CONCATENATE(" + b"A3," * 600 + b"A3)</f>"  # about 1,800 bytes
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(path, "w") as target:
        for member in archive.infolist():
            payload = archive.read(member)
            if member.filename == "xl/worksheets/sheet1.xml":
                payload = payload.replace(formula, long_formula, 1)
                cell = payload.index(b'<c r="B3"')
                # A comment between rows (random, so it does not look like a zip bomb)
                # moves the cell to start 1,500 bytes before the edge.
                row = payload.rindex(b"<row", 0, cell)
                size = 1024 * 1024 - 1500 - cell - len(b"<!---->")
                filler = random.Random(7).randbytes(size // 2).hex().encode()
                payload = payload[:row] + b"<!--" + filler + b"-->" + payload[row:]
            target.writestr(member, payload)

    assert read_rows(path)[1] == (3, ("Ben", "#N/A", "0"))
