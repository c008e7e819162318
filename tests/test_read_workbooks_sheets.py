"""A sheet without rows names the sheets that hold rows and the --sheet to pick one."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from bulkimport.errors import InputError
from bulkimport.read.sources import ReadOptions, open_source

DATA = Path(__file__).parent / "data"


def refusal(path: Path, sheet: str | None = None) -> str:
    with pytest.raises(InputError) as refused, open_source(path, ReadOptions(sheet=sheet)):
        pass
    return str(refused.value)


def test_empty_first_sheet_names_the_sheets_with_rows() -> None:
    path = DATA / "wb_sheets_without_rows.xlsx"

    assert refusal(path) == (
        f"{path} sheet 'Empty' is empty (no rows): the sheets that hold rows are "
        "'People', 'More people'; pick one with --sheet People."
    )


def test_chart_sheet_names_the_sheets_with_rows() -> None:
    path = DATA / "wb_sheets_without_rows.xlsx"

    assert refusal(path, "Chart") == (
        f"{path} sheet 'Chart' is a chart sheet (no rows): the sheets that hold rows are "
        "'People', 'More people'; pick one with --sheet People."
    )


def test_empty_first_ods_table_quotes_the_sheet_to_pick() -> None:
    path = DATA / "wb_sheets_without_rows.ods"

    assert refusal(path) == (
        f"{path} sheet 'Empty' is empty (no rows): the sheets that hold rows are "
        "'More people'; pick one with --sheet 'More people'."
    )


def test_no_sheet_with_rows(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.create_sheet("Also empty")
    path = tmp_path / "nothing.xlsx"
    workbook.save(path)

    assert refusal(path) == (
        f"{path} sheet 'Sheet' is empty, and no other sheet holds rows: "
        "export the spreadsheet again with a header row and data rows."
    )
