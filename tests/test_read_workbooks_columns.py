"""Workbook cells keep the column Excel shows them in, from column A."""

from __future__ import annotations

from pathlib import Path

from bulkimport.read.sources import open_source

DATA = Path(__file__).parent / "data"


def test_cells_start_in_column_a_when_the_data_starts_later() -> None:
    with open_source(DATA / "wb_late_column.xlsx") as table:
        header = table.header
        rows = [(row.row, row.cells) for row in table.rows]

    # The blank header cell is column D, the fourth: "column 4" in the reports.
    assert header == ("", "", "Name", "", "Mobile")
    assert rows == [(2, ("", "", "Ana", "call after 5pm", "09171234567"))]
