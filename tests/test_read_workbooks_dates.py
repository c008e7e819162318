"""Dates, durations and fractions read the same from XLSX, XLS and ODS."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bulkimport.read.sources import cell_text, open_source

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["wb_dates.xlsx", "wb_dates.xls", "wb_dates.ods"])
def test_dates_durations_and_fractions_read_alike_in_every_format(name: str) -> None:
    with open_source(DATA / name) as table:
        header = table.header
        rows = [(row.row, row.cells) for row in table.rows]

    assert header == ("Name", "Joined", "Seen", "Hours", "Score")
    assert rows == [(2, ("Ana", "2016-10-20", "2016-10-20T13:45:07", "255:10:10", "12.61832872"))]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2016, 10, 20), "2016-10-20"),
        (datetime(2016, 10, 20, 13, 45, 7, 250000), "2016-10-20T13:45:07.250000"),
        (12.618328720000001, "12.61832872"),
        (0.1 + 0.2, "0.3"),
        (1e-7, "0.0000001"),
        (-2.5, "-2.5"),
        (timedelta(hours=255, minutes=10, seconds=10), "255:10:10"),
    ],
)
def test_cell_text_of_dates_and_fractions(value: object, text: str) -> None:
    assert cell_text(value) == text
