"""Tests for the spreadsheet readers, over the real files in tests/data/."""

from __future__ import annotations

import hashlib
import io
import random
import re
import shutil
import zipfile
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path

import openpyxl
import pytest
from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import Table, TableCell, TableRow
from odf.text import P
from openpyxl.styles import Font

from bulkimport.contacts import SourceRow
from bulkimport.errors import InputError
from bulkimport.read.sources import (
    CSV_FIELD_SIZE_LIMIT,
    DEFAULT_OPTIONS,
    MAX_SHEET_CELLS,
    SAMPLE_BYTES,
    SUPPORTED_SUFFIXES,
    ReadOptions,
    cell_text,
    check_xlsx_extent,
    check_zip_limits,
    detect_encoding,
    fingerprint,
    open_source,
    sniff_delimiter,
)

DATA = Path(__file__).parent / "data"

Rows = list[tuple[int, tuple[str, ...]]]


def read_all(path: Path, options: ReadOptions = DEFAULT_OPTIONS) -> tuple[dict[str, object], Rows]:
    """Return a table's description and every row as (row number, cells)."""
    with open_source(path, options) as table:
        rows = [(row.row, row.cells) for row in table.rows]
        described: dict[str, object] = {
            "sheet": table.sheet,
            "header_row": table.header_row,
            "header": table.header,
            "encoding": table.encoding,
            "delimiter": table.delimiter,
        }
    return described, rows


def input_error(path: Path, options: ReadOptions = DEFAULT_OPTIONS) -> str:
    """Return the message of the InputError that reading the whole file raises."""
    with pytest.raises(InputError) as caught, open_source(path, options) as table:
        for _ in table.rows:
            pass
    return str(caught.value)


# --- fixtures read exactly ---------------------------------------------------------------

FIXTURES = {
    "utf8_bom.csv": (
        {"sheet": "", "header_row": 1, "encoding": "utf-8-sig", "delimiter": ","},
        ("Phone", "First Name", "Last Name"),
        [(2, ("+639171234570", "José", "Peña")), (3, ("09181234567", "Zoë", "Ñuñez"))],
    ),
    "cp1252_semicolon.csv": (
        {"sheet": "", "header_row": 1, "encoding": "cp1252", "delimiter": ";"},
        ("Mobile", "First name", "Last name", "Notes"),
        [
            (2, ("639171234570", "José", "Peña", "café, tea")),
            (3, ("639181234571", "Renée", "Müller", "€ 5")),
        ],
    ),
    "utf16_excel.txt": (
        {"sheet": "", "header_row": 1, "encoding": "utf-16", "delimiter": "\t"},
        ("Phone", "Name", "City"),
        [
            (2, ("639171234570", "José Peña", "Cebú")),
            (3, ("639181234571", "Ana Reyes", "Davao")),
        ],
    ),
    "pipe.txt": (
        {"sheet": "", "header_row": 1, "encoding": "utf-8", "delimiter": "|"},
        ("phone", "name", "group"),
        [
            (2, ("639171234570", "Ana", "7")),
            (3, ("639181234571", "Ben", "7")),
            (4, ("639191234572", "Cy", "8")),
        ],
    ),
    "blank_rows.csv": (
        {"sheet": "", "header_row": 2, "encoding": "utf-8", "delimiter": ","},
        ("phone", "name"),
        [
            (3, ("639171234570", "Ana")),
            (6, ("639181234571", "Ben")),
            (8, ("639191234572", "Cy")),
        ],
    ),
    "quoted_newline.csv": (
        {"sheet": "", "header_row": 1, "encoding": "utf-8", "delimiter": ","},
        ("phone", "name", "address"),
        [
            (2, ("639171234570", "Ana", "12 Rizal St.\r\nCebu City")),
            (3, ("639181234571", "Reyes, Ben", "Unit 4\r\nBlock 2\r\nDavao")),
            (4, ("639191234572", "Cy", "Manila")),
        ],
    ),
    "numeric_phones.xlsx": (
        {"sheet": "Contacts", "header_row": 1, "encoding": None, "delimiter": None},
        ("Phone", "Name", "Joined", "Active", "Score"),
        [
            (2, ("639171234570", "Ana", "2024-01-31", "TRUE", "1.5")),
            (3, ("09171234567", "Ben", "2024-01-31T13:45:07", "FALSE", "0.1")),
            (4, ("+639181234567", "Cy", "", "", "100000000000000000000")),
            (5, ("639191234572", " Dee ", "", "", "-3")),
        ],
    ),
    "two_sheets.xlsx": (
        {"sheet": "Notes", "header_row": 1, "encoding": None, "delimiter": None},
        ("Read me first",),
        [(2, ("Applicants are on the next sheet",))],
    ),
    "leading_blank_rows.xlsx": (
        {"sheet": "Sheet1", "header_row": 3, "encoding": None, "delimiter": None},
        ("", "Phone", "Name"),  # column A is empty: columns count from A, as Excel's do
        [(4, ("", "639171234570", "Ana")), (6, ("", "639181234571", "Ben"))],
    ),
    "legacy.xls": (
        {"sheet": "Legacy", "header_row": 1, "encoding": None, "delimiter": None},
        ("Phone", "Name", "Joined"),
        [
            (2, ("639171234570", "José Peña", "2024-01-31")),
            (3, ("+639181234571", "Ana", "")),
        ],
    ),
    "applicants.ods": (
        {"sheet": "Applicants", "header_row": 1, "encoding": None, "delimiter": None},
        ("Phone", "Name", "Applied"),
        [
            (2, ("639171234570", "José Peña", "2024-01-31")),
            (4, ("+63 918 123 4571", "Ana", "")),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_is_read_exactly(name: str) -> None:
    expected_meta, expected_header, expected_rows = FIXTURES[name]

    described, rows = read_all(DATA / name)

    assert described == {**expected_meta, "header": expected_header}
    assert rows == expected_rows


def test_rows_name_their_source_and_sheet() -> None:
    path = DATA / "numeric_phones.xlsx"

    with open_source(path) as table:
        first = next(table.rows)

    assert first == SourceRow(
        str(path), "Contacts", 2, ("639171234570", "Ana", "2024-01-31", "TRUE", "1.5")
    )


def test_supported_suffixes() -> None:
    assert frozenset({".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}) == (
        SUPPORTED_SUFFIXES
    )


# --- bad files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("empty.csv", "is empty (0 bytes)"),
        ("header_only.csv", "has a header row but no data rows"),
        ("junk.csv", "does not look like a text file"),
        ("not_a_zip.xlsx", "is not a real .xlsx workbook"),
        ("truncated.xlsx", "is damaged or incomplete"),
        ("zip_bomb.xlsx", "looks like a zip bomb"),
        ("encrypted.xlsx", "remove the password in Excel and save again"),
    ],
)
def test_bad_fixture_raises_input_error(name: str, phrase: str) -> None:
    message = input_error(DATA / name)

    assert phrase in message
    assert message.startswith(str(DATA / name))


def test_missing_path(tmp_path: Path) -> None:
    assert "does not exist" in input_error(tmp_path / "nowhere.csv")


def test_folder(tmp_path: Path) -> None:
    folder = tmp_path / "exports.csv"
    folder.mkdir()

    assert "is a folder" in input_error(folder)


def test_unknown_extension_lists_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "people.pdf"
    path.write_bytes(b"%PDF-1.7")

    message = input_error(path)

    assert "not a supported spreadsheet" in message
    assert ".csv, .ods, .tsv, .txt, .xls, .xlsb, .xlsm, .xlsx" in message


def test_only_blank_rows_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_bytes(b"\r\n , \r\n\t\r\n,,\r\n")

    assert "is empty (no row has any data)" in input_error(path)


def test_workbook_named_csv(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    shutil.copy(DATA / "numeric_phones.xlsx", path)

    assert "rename it to .xlsx" in input_error(path)


def test_zip_over_the_uncompressed_limit(tmp_path: Path) -> None:
    path = tmp_path / "large.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", random.Random(1).randbytes(5000))

    with pytest.raises(InputError, match="would unpack to 5,000 bytes, more than the 4,000"):
        check_zip_limits(path, max_uncompressed_bytes=4000)
    check_zip_limits(path)  # within the real limits


def test_workbook_without_worksheets(tmp_path: Path) -> None:
    path = tmp_path / "nosheets.xlsx"
    _rewrite_member(
        DATA / "numeric_phones.xlsx",
        path,
        "xl/workbook.xml",
        lambda xml: re.sub(rb"<sheets>.*</sheets>", b"<sheets/>", xml),
    )

    assert "has no worksheets" in input_error(path)


# --- sheets ----------------------------------------------------------------------------


@pytest.mark.parametrize("wanted", ["Applicants", "2", "applicants", " Applicants "])
def test_sheet_by_name_or_number(wanted: str) -> None:
    described, rows = read_all(DATA / "two_sheets.xlsx", ReadOptions(sheet=wanted))

    assert described["sheet"] == "Applicants"
    assert described["header"] == ("phone", "name")
    assert rows == [(2, ("639171234570", "Ana")), (3, ("639181234571", "Ben"))]


@pytest.mark.parametrize("wanted", ["People", "3", "0"])
def test_unknown_sheet_lists_the_sheets(wanted: str) -> None:
    message = input_error(DATA / "two_sheets.xlsx", ReadOptions(sheet=wanted))

    assert f"has no sheet {wanted!r}" in message
    assert "1 'Notes', 2 'Applicants'" in message


def test_unknown_sheet_of_many_lists_ten_and_counts_the_rest(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    first = workbook.active
    assert first is not None
    first.title = "S1"
    for number in range(2, 31):
        workbook.create_sheet(f"S{number}")
    path = tmp_path / "many.xlsx"
    workbook.save(path)

    message = input_error(path, ReadOptions(sheet="People"))

    listing = ", ".join(f"{n} 'S{n}'" for n in range(1, 11))
    assert f"give --sheet one of {listing} … and 20 more (by name or number)." in message


def test_default_sheet_is_the_first_visible_one(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    hidden = workbook.active
    assert hidden is not None
    hidden.title = "Lookup"
    hidden.append(["code"])
    hidden.append(["x"])
    hidden.sheet_state = "hidden"
    people = workbook.create_sheet("People")
    people.append(["phone"])
    people.append(["639171234570"])
    path = tmp_path / "hidden.xlsx"
    workbook.save(path)

    described, rows = read_all(path)

    assert described["sheet"] == "People"
    assert rows == [(2, ("639171234570",))]


def test_sheet_option_is_ignored_for_csv() -> None:
    described, _ = read_all(DATA / "pipe.txt", ReadOptions(sheet="Applicants"))

    assert described["sheet"] == ""


# --- encodings -------------------------------------------------------------------------


def test_late_invalid_bytes_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    ascii_rows = [f"6391700{i:05d},Name {i}\r\n" for i in range(4000)]
    assert len("".join(ascii_rows)) > SAMPLE_BYTES  # the bad row is past the sample
    path.write_bytes(
        b"phone,name\r\n" + "".join(ascii_rows).encode() + "639189999999,Peña\r\n".encode("cp1252")
    )

    message = input_error(path)

    assert "row 4002 has bytes that are not valid utf-8" in message
    assert "--encoding cp1252" in message
    _, rows = read_all(path, ReadOptions(encoding="cp1252"))
    assert rows[-1] == (4002, ("639189999999", "Peña"))


def test_sample_cut_inside_a_character_is_still_utf8(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    head = b"phone,name\n" + b"639170000000,Ana\n" * 3000
    filler = b"x" * (SAMPLE_BYTES - 1 - len(head))
    body = head + filler + "é\n639181234571,José\n".encode()
    assert body[SAMPLE_BYTES - 1 : SAMPLE_BYTES + 1] == "é".encode()  # the sample ends mid-é
    path.write_bytes(body)

    described, rows = read_all(path)

    assert described["encoding"] == "utf-8"
    assert rows[-2][1] == (filler.decode() + "é",)
    assert rows[-1][1] == ("639181234571", "José")


@pytest.mark.parametrize(
    ("sample", "complete", "encoding"),
    [
        (b"\xef\xbb\xbfphone\n", True, "utf-8-sig"),
        (b"\xff\xfep\x00h\x00", True, "utf-16"),
        (b"\xfe\xff\x00p\x00h", True, "utf-16"),
        ("phone,name\nJosé\n".encode("utf-16-le"), True, "utf-16-le"),
        ("phone,name\nJosé\n".encode("utf-16-be"), True, "utf-16-be"),
        ("phone,name\nJosé\n".encode(), True, "utf-8"),
        ("phone,name\nJosé\n".encode("cp1252"), True, "cp1252"),
        (b"phone\nJos\x81\n", True, "latin-1"),  # 0x81 is undefined in cp1252
        (b"phone\nJos\xc3", False, "utf-8"),  # the sample cut the character short
        (b"phone\nJos\xc3", True, "cp1252"),  # the file really ends there
    ],
)
def test_detect_encoding(sample: bytes, complete: bool, encoding: str) -> None:
    assert detect_encoding(sample, complete=complete) == encoding


def test_utf16_without_bom_file(tmp_path: Path) -> None:
    path = tmp_path / "people.txt"
    path.write_bytes("phone\tname\r\n639171234570\tJosé\r\n".encode("utf-16-le"))

    described, rows = read_all(path)

    assert (described["encoding"], described["delimiter"]) == ("utf-16-le", "\t")
    assert rows == [(2, ("639171234570", "José"))]


def test_unknown_encoding_option() -> None:
    message = input_error(DATA / "pipe.txt", ReadOptions(encoding="klingon"))

    assert "Unknown encoding 'klingon'" in message


def test_encoding_option_overrides_detection() -> None:
    described, rows = read_all(DATA / "utf8_bom.csv", ReadOptions(encoding="utf-8"))

    assert described["encoding"] == "utf-8"
    assert described["header"] == ("Phone", "First Name", "Last Name")  # BOM left out
    assert rows[0] == (2, ("+639171234570", "José", "Peña"))


# --- delimiters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("phone,name\n1,Ana\n2,Ben\n", ","),
        ("phone;name\n1;Peña, José\n2;Ben\n", ";"),
        ("phone\tname\n1\tAna\n", "\t"),
        ("phone|name\n1|Ana\n", "|"),
        ('"name; full",phone\n"Peña; José",1\n', ","),
        ("phone\n639171234570\n", ","),  # one column: nothing to detect
        ("phone;name\n", ";"),  # one line: the sniffer gives up, the header decides
    ],
)
def test_sniff_delimiter(text: str, delimiter: str) -> None:
    assert sniff_delimiter(text) == delimiter


@pytest.mark.parametrize("option", ["\\t", "tab", "TAB", "\t"])
def test_tab_delimiter_option(tmp_path: Path, option: str) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(b"phone\tname,full\n639171234570\tPe\xc3\xb1a, Jos\xc3\xa9\n")

    described, rows = read_all(path, ReadOptions(delimiter=option))

    assert described["delimiter"] == "\t"
    assert rows == [(2, ("639171234570", "Peña, José"))]


def test_tsv_defaults_to_tab(tmp_path: Path) -> None:
    path = tmp_path / "people.tsv"
    path.write_bytes(b"phone\tnote\n639171234570\ta,b,c,d\n639181234571\te,f,g,h\n")

    described, rows = read_all(path)

    assert described["delimiter"] == "\t"
    assert rows[0] == (2, ("639171234570", "a,b,c,d"))


def test_delimiter_option_must_be_one_character() -> None:
    assert "is not one character" in input_error(DATA / "pipe.txt", ReadOptions(delimiter="||"))


# --- awkward but valid text files ------------------------------------------------------


def test_cell_longer_than_excel_allows(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(f"phone,notes\n639171234570,{'x' * 100_000}\n", encoding="utf-8")

    _, rows = read_all(path)

    assert rows == [(2, ("639171234570", "x" * 100_000))]


def test_twenty_thousand_columns(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    header = ",".join(f"c{i}" for i in range(20_000))
    values = ",".join(str(i) for i in range(20_000))
    path.write_text(f"{header}\n{values}\n", encoding="utf-8")

    described, rows = read_all(path)

    assert len(described["header"]) == 20_000  # type: ignore[arg-type]
    assert rows[0][1][19_999] == "19999"


def test_nul_byte_in_a_cell_is_data(tmp_path: Path) -> None:
    path = tmp_path / "nul.csv"
    rows_text = "".join(f"6391700{i:05d},Name {i}\n" for i in range(50))
    path.write_bytes(b"phone,name\n" + rows_text.encode() + b"639189999999,Ana\x00Reyes\n")

    _, rows = read_all(path)

    assert rows[-1] == (52, ("639189999999", "Ana\x00Reyes"))


def test_unclosed_quote_runs_into_the_field_limit(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    rest = "".join(f"6391700{i:05d},Name {i}\n" for i in range(CSV_FIELD_SIZE_LIMIT // 15))
    path.write_text('phone,name\n639171234570,Ana\n639181234571,"Ben\n' + rest, encoding="utf-8")

    message = input_error(path)

    assert "row 3 cannot be read" in message
    assert "unclosed quote" in message


def test_rows_stream_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone,name\n")
        out.writelines(f"{639170000000 + i},Name {i}\n" for i in range(200_000))

    with open_source(path) as table:
        first = next(table.rows)
        # A row added after reading began is still seen: the rows are read lazily from
        # the file, not loaded when it was opened.
        with path.open("a", encoding="utf-8", newline="") as out:
            out.write("639999999999,Late\n")
        rest = 0
        for row in table.rows:
            rest += 1
            last = row

    assert first.row == 2
    assert rest + 1 == 200_001
    assert (last.row, last.cells) == (200_002, ("639999999999", "Late"))


# --- workbooks -------------------------------------------------------------------------


def test_legacy_xls_renamed_to_xlsx_is_read(tmp_path: Path) -> None:
    path = tmp_path / "renamed.xlsx"
    shutil.copy(DATA / "legacy.xls", path)

    described, rows = read_all(path)

    assert described["sheet"] == "Legacy"
    assert rows[0] == (2, ("639171234570", "José Peña", "2024-01-31"))


def test_stray_cell_far_from_the_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stray.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["phone"])
    sheet.append(["639171234570"])
    sheet["ZZ20000"] = "oops"  # 20,000 rows x 702 columns
    workbook.save(path)

    message = input_error(path)

    assert "reaches row 20,000 and column 702" in message
    assert "delete the rows and columns after the data" in message


def test_cell_in_the_last_excel_cell_is_measured_without_calamine(tmp_path: Path) -> None:
    path = tmp_path / "corner.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["A1"] = "phone"
    sheet["XFD1048576"] = "oops"
    workbook.save(path)

    with pytest.raises(InputError, match="reaches row 1,048,576 and column 16,384"):
        check_xlsx_extent(path, 0, "Sheet")


def test_styled_empty_cell_far_away_is_harmless(tmp_path: Path) -> None:
    path = tmp_path / "styled.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["phone"])
    sheet.append(["639171234570"])
    sheet["XFD1048576"].font = Font(bold=True)
    workbook.save(path)

    _, rows = read_all(path)

    assert rows == [(2, ("639171234570",))]


def test_xlsx_extent_limit_is_a_parameter() -> None:
    path = DATA / "numeric_phones.xlsx"

    check_xlsx_extent(path, 0, "Contacts")
    with pytest.raises(InputError, match="reaches row 5 and column 5, more than 24 cells"):
        check_xlsx_extent(path, 0, "Contacts", max_cells=24)


def test_ods_repeated_rows_are_measured_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "repeated.ods"
    document = OpenDocumentSpreadsheet()
    table = Table(name="People")
    header = TableRow()
    header.addElement(_ods_text_cell("phone"))
    table.addElement(header)
    repeated = TableRow(numberrowsrepeated=1_000_000)
    repeated.addElement(_ods_text_cell("x", numbercolumnsrepeated=100))
    table.addElement(repeated)
    document.spreadsheet.addElement(table)
    document.save(str(path))

    message = input_error(path)

    assert "sheet 'People' reaches row 1,000,001 and column 100" in message
    assert path.stat().st_size < 10_000
    assert MAX_SHEET_CELLS < 1_000_001 * 100


def test_ods_trailing_empty_repeats_are_not_counted(tmp_path: Path) -> None:
    path = tmp_path / "libreoffice.ods"
    filler = (
        b'<table:table-row table:number-rows-repeated="1048572">'
        b'<table:table-cell table:number-columns-repeated="16384"/></table:table-row>'
    )
    _rewrite_member(
        DATA / "applicants.ods",
        path,
        "content.xml",
        lambda xml: xml.replace(b"</table:table>", filler + b"</table:table>"),
    )

    _, rows = read_all(path)

    assert [row for row, _ in rows] == [2, 4]


def test_ods_with_broken_xml_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "broken.ods"
    _rewrite_member(
        DATA / "applicants.ods",
        path,
        "content.xml",
        lambda xml: xml.replace(b"</table:table>", b""),
    )

    message = input_error(path)

    assert "is damaged" in message
    assert "save it again" in message


# --- cells and fingerprints -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (639171234570.0, "639171234570"),
        (6.39e11, "639000000000"),
        (1e20, "100000000000000000000"),
        (-3.0, "-3"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (42, "42"),
        (True, "TRUE"),
        (False, "FALSE"),
        (date(2024, 1, 31), "2024-01-31"),
        (datetime(2024, 1, 31, 13, 45, 7), "2024-01-31T13:45:07"),
        (time(8, 30), "08:30:00"),
        (timedelta(hours=30, seconds=5), "30:00:05"),
        (None, ""),
        ("  kept as is ", "  kept as is "),
    ],
)
def test_cell_text(value: object, text: str) -> None:
    assert cell_text(value) == text


def test_fingerprint_is_sha256_of_the_bytes() -> None:
    path = DATA / "numeric_phones.xlsx"

    assert fingerprint(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_fingerprint_of_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Cannot read"):
        fingerprint(tmp_path / "gone.csv")


# --- helpers ---------------------------------------------------------------------------


def _ods_text_cell(text: str, **attributes: int) -> TableCell:
    """Return an ODS string cell."""
    cell = TableCell(valuetype="string", **attributes)
    cell.addElement(P(text=text))
    return cell


def _rewrite_member(
    source: Path, target: Path, member: str, change: Callable[[bytes], bytes]
) -> None:
    """Copy a zip-based workbook, passing one member's bytes through ``change``."""
    out = io.BytesIO()
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(out, "w") as copy:
        for info in original.infolist():
            data = original.read(info)
            copy.writestr(info, change(data) if info.filename == member else data)
    target.write_bytes(out.getvalue())
