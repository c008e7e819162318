"""Workbook text with a NUL between every letter is refused, as in a CSV file."""

from __future__ import annotations

from pathlib import Path

import pytest
import xlwt

from bulkimport.errors import InputError
from bulkimport.read.sources import open_source

DATA = Path(__file__).parent / "data"


def test_nul_between_every_letter_is_refused() -> None:
    path = DATA / "wb_nul_letters.xls"

    with pytest.raises(InputError) as refused, open_source(path) as table:
        list(table.rows)

    assert str(refused.value) == (
        f"{path} sheet 'People' holds text with control characters (a NUL between every "
        "letter, say), as when an old workbook is decoded at the wrong character width: "
        "open it in Excel or LibreOffice and save it again as .xlsx."
    )


def test_one_nul_in_a_cell_is_data(tmp_path: Path) -> None:
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("People")
    for number, cells in enumerate([["Name", "Mobile"], ["Ana\x00Reyes", "09171234567"]]):
        for column, text in enumerate(cells):
            sheet.write(number, column, text)
    path = tmp_path / "one_nul.xls"
    book.save(str(path))

    with open_source(path) as table:
        rows = [row.cells for row in table.rows]

    assert rows == [("Ana\x00Reyes", "09171234567")]
