"""The delimiter guess counts cells over parsed records, so quoting is respected."""

from __future__ import annotations

import json

from click.testing import CliRunner

from bulkimport.cli import main
from bulkimport.read.sources import open_source, sniff_delimiter
from tests.conftest import DATA

QUOTED_TAB_HEADER = DATA / "txt_quoted_tab_header.csv"


def test_a_quoted_header_cell_with_a_tab_and_a_newline_keeps_the_comma() -> None:
    with open_source(QUOTED_TAB_HEADER) as table:
        rows = [row.cells for row in table.rows]
    assert table.delimiter == ","
    assert table.header == ("start\tend\nnote", "Name", "Mobile")
    assert rows == [("1", "Juan Dela Cruz", "09171234567"), ("2", "Maria Santos", "09181234567")]


def test_sniffing_a_header_whose_first_line_holds_only_a_quoted_tab() -> None:
    assert sniff_delimiter('"start\tend\nnote",Name,Mobile\n1,Ana,0917\n') == ","
    assert sniff_delimiter('"start\tend\nnote",Name,Mobile\n') == ","  # one record: no sniffer


def test_check_maps_the_columns_of_that_file() -> None:
    result = CliRunner().invoke(
        main, ["check", str(QUOTED_TAB_HEADER), "--country", "PH", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["sources"][0]["delimiter"] == ","
    assert summary["sources"][0]["columns"] == {"Name": "fullName", "Mobile": "fullPhoneNumber"}
    assert summary["valid"] == 2
