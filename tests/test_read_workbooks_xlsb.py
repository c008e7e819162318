"""Binary workbooks (.xlsb) are read through calamine and measured like XLSX before it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bulkimport.errors import InputError
from bulkimport.read.sources import SUPPORTED_SUFFIXES, check_xlsx_extent, open_source

DATA = Path(__file__).parent / "data"


def test_xlsb_is_read() -> None:
    with open_source(DATA / "wb_people.xlsb") as table:
        described = (table.sheet, table.header_row, table.header)
        rows = [(row.row, row.cells) for row in table.rows]

    assert ".xlsb" in SUPPORTED_SUFFIXES
    assert described == ("People", 1, ("Name", "Mobile"))
    assert rows == [(2, ("Ana", "639171234570")), (3, ("Ben", "09181234567"))]


def test_xlsb_cell_far_from_the_data_is_refused_before_calamine() -> None:
    path = DATA / "wb_far_cell.xlsb"

    with pytest.raises(InputError) as refused, open_source(path):
        pass

    assert str(refused.value) == (
        f"{path} sheet 'People' reaches row 1,048,576 and column 16,384, more than "
        "10,000,000 cells: delete the rows and columns after the data (Ctrl+End in Excel "
        "shows the last used cell), or save the sheet as CSV."
    )


def test_xlsb_extent_counts_value_cells_only() -> None:
    check_xlsx_extent(DATA / "wb_people.xlsb", 0, "People", max_cells=6)
    with pytest.raises(InputError, match="reaches row 3 and column 2"):
        check_xlsx_extent(DATA / "wb_people.xlsb", 0, "People", max_cells=5)


def test_xlsb_named_xlsx_is_read(tmp_path: Path) -> None:
    path = tmp_path / "people.xlsx"
    shutil.copy(DATA / "wb_people.xlsb", path)

    with open_source(path) as table:
        rows = [row.cells for row in table.rows]

    assert rows == [("Ana", "639171234570"), ("Ben", "09181234567")]
