"""Web reports: an HTML table saved as .xls is read like a one-sheet workbook, cells as text."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bulkimport.cli import main
from bulkimport.errors import InputError
from bulkimport.read.sources import ReadOptions, open_source
from tests.conftest import DATA


def read(path: Path, **options: str) -> tuple[tuple[str, ...], list[tuple[int, tuple[str, ...]]]]:
    with open_source(path, ReadOptions(**options)) as table:
        return table.header, [(row.row, row.cells) for row in table.rows]


def test_a_web_report_is_read_as_text_with_the_header_the_page_marks() -> None:
    header, rows = read(DATA / "web_report.xls")
    assert header == ("Applicant No.", "Name", "Mobile No.", "Salary", "Note", "Note", "")
    assert rows == [
        (2, ("0001", "José Peña", "09171234567", "12,500", "first", "second", "x")),
        (3, ("0002", "Zoë Ñuñez", "+63 918 123 4567", "1.50", "", "", "")),
        (4, ("0003", "Ana Reyes", "call me", "NaN", "NA", "TRUE", "")),
    ]


def test_a_table_without_header_cells_has_its_first_row_as_header() -> None:
    header, rows = read(DATA / "web_report_no_th.xls")
    assert header == ("phone", "name")
    assert rows == [(2, ("639171234570", "Cebú")), (3, ("639181234571", "Dávao"))]


def test_a_web_report_in_utf16_or_a_named_encoding_is_decoded(tmp_path: Path) -> None:
    page = (DATA / "web_report_no_th.xls").read_text(encoding="utf-8")
    utf16 = tmp_path / "utf16.xls"
    utf16.write_bytes(page.encode("utf-16"))
    assert read(utf16)[1][0] == (2, ("639171234570", "Cebú"))
    latin = tmp_path / "latin.xls"
    latin.write_bytes(page.encode("latin-1"))
    assert read(latin, encoding="latin-1")[1][0] == (2, ("639171234570", "Cebú"))


@pytest.mark.parametrize(
    ("name", "found"),
    [("web_three_tables.xls", "with 3 tables"), ("web_no_table.xls", "with no table")],
)
def test_a_page_with_several_tables_or_none_is_refused_naming_what_it_holds(
    name: str, found: str
) -> None:
    path = DATA / name
    with pytest.raises(InputError) as error:
        read(path)
    assert f"{path} is a web page {found}, not a .xls workbook" in str(error.value)
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2
    assert f"Error: {error.value}" in result.output


@pytest.mark.parametrize(
    "content",
    [
        b"phone,name\n639171234570,Ana\n",
        b'<?xml version="1.0"?>\n<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">'
        b"<Worksheet><Table><Row><Cell><Data>phone</Data></Cell></Row></Table></Worksheet>"
        b"</Workbook>\n",
    ],
    ids=["csv-renamed", "spreadsheetml-2003"],
)
def test_a_renamed_file_that_is_no_web_page_is_still_refused(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "export.xls"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"is not a real \.xls workbook"):
        read(path)


def test_check_reads_a_web_report_as_it_reads_a_workbook(tmp_path: Path) -> None:
    report = tmp_path / "check.csv"
    path = DATA / "web_report.xls"
    result = CliRunner().invoke(
        main, ["check", str(path), "--country", "PH", "--report", str(report)]
    )
    assert result.exit_code == 1, result.output
    assert "Rows read 3 · valid 2 · invalid 1 · duplicate 0" in result.output
    assert f"{path} row 4: Phone 'call me' contains letters" in result.output
    lines = report.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("source,sheet,row,status,phone,reason,Applicant No.,Name")
    assert lines[1].endswith(
        ',2,valid,639171234567,,0001,José Peña,09171234567,"12,500",first,second,x'
    )


def test_read_table_gives_a_web_report_with_distinct_column_names() -> None:
    import bulkimport

    frame = bulkimport.read_table(DATA / "web_report.xls")
    assert list(frame.columns) == [
        "Applicant No.", "Name", "Mobile No.", "Salary", "Note", "Note (again)", "column 7",
    ]  # fmt: skip
    assert frame.loc[3, "Mobile No."] == "+63 918 123 4567"
    assert frame.loc[4, "Salary"] == "NaN"  # the page's text, not a missing value


def test_a_web_report_too_large_to_read_whole_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from bulkimport.read import html

    size = (DATA / "web_report.xls").stat().st_size
    monkeypatch.setattr(html, "MAX_HTML_BYTES", size - 1)
    with pytest.raises(InputError, match="is a web page larger than 0 MB: open it in Excel"):
        read(DATA / "web_report.xls")
    monkeypatch.setattr(html, "MAX_HTML_BYTES", size)
    assert read(DATA / "web_report.xls")[0][0] == "Applicant No."
