"""Write the wb_* workbook fixtures in this folder; run it again to regenerate them.

    .venv/bin/python tests/data/wb_make_fixtures.py

Needs openpyxl, xlwt and odfpy (the dev extras). Zip members get fixed
timestamps so that regenerating them changes no bytes.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import xlwt
from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import Table, TableCell, TableRow
from odf.text import P

HERE = Path(__file__).resolve().parent
FIXED_TIME = (2024, 1, 31, 12, 0, 0)
FIXED_DATETIME = datetime(2024, 1, 31, 12, 0, 0)


def _workbook() -> openpyxl.Workbook:
    """Return an empty workbook whose document properties carry a fixed time."""
    workbook = openpyxl.Workbook()
    workbook.properties.created = FIXED_DATETIME
    workbook.properties.modified = FIXED_DATETIME
    return workbook


def _save(workbook: openpyxl.Workbook, name: str) -> None:
    """Save a workbook with fixed member timestamps."""
    buffer = io.BytesIO()
    workbook.save(buffer)
    _write_zip(name, buffer.getvalue())


def _write_zip(name: str, data: bytes, edit: dict[str, bytes] | None = None) -> None:
    """Write the zip with fixed timestamps, members in ``edit`` replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for member in source.infolist():
            info = zipfile.ZipInfo(member.filename, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            payload = (edit or {}).get(member.filename, source.read(member))
            if member.filename == "docProps/core.xml":
                payload = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                    rb"\g<1>2024-01-31T12:00:00Z\g<2>",
                    payload,
                )
            target.writestr(info, payload)
    (HERE / name).write_bytes(out.getvalue())


def write_late_column() -> None:
    """Write a sheet whose cells start in column C, with a blank header cell in D."""
    workbook = _workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "People"
    sheet["C1"], sheet["E1"] = "Name", "Mobile"
    sheet["C2"], sheet["D2"], sheet["E2"] = "Ana", "call after 5pm", "09171234567"
    _save(workbook, "wb_late_column.xlsx")


def write_dates() -> None:
    """Write the same date, date and time, duration and fraction in XLSX, XLS and ODS."""
    header = ["Name", "Joined", "Seen", "Hours", "Score"]
    seen = datetime(2016, 10, 20, 13, 45, 7)
    hours = timedelta(hours=255, minutes=10, seconds=10)
    workbook = _workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Dates"
    sheet.append(header)
    # 12.618328720000001 is how the binary value Excel stores for 12.61832872 prints in full.
    sheet.append(["Ana", date(2016, 10, 20), seen, hours, 12.618328720000001])
    sheet["D2"].number_format = "[h]:mm:ss"
    _save(workbook, "wb_dates.xlsx")

    book = xlwt.Workbook(encoding="utf-8")
    legacy = book.add_sheet("Dates")
    for column, title in enumerate(header):
        legacy.write(0, column, title)
    legacy.write(1, 0, "Ana")
    legacy.write(1, 1, date(2016, 10, 20), xlwt.easyxf(num_format_str="YYYY-MM-DD"))
    legacy.write(1, 2, seen, xlwt.easyxf(num_format_str="YYYY-MM-DD HH:MM:SS"))
    legacy.write(1, 3, hours / timedelta(days=1), xlwt.easyxf(num_format_str="[h]:mm:ss"))
    legacy.write(1, 4, 12.618328720000001)
    book.save(str(HERE / "wb_dates.xls"))

    document = OpenDocumentSpreadsheet()
    table = Table(name="Dates")
    cells = [
        [_ods_text(title) for title in header],
        [
            _ods_text("Ana"),
            TableCell(valuetype="date", datevalue="2016-10-20T00:00:00"),
            TableCell(valuetype="date", datevalue="2016-10-20T13:45:07"),
            TableCell(valuetype="time", timevalue="PT255H10M10S"),
            TableCell(valuetype="float", value="12.618328720000001"),
        ],
    ]
    for values in cells:
        row = TableRow()
        for cell in values:
            row.addElement(cell)
        table.addElement(row)
    document.spreadsheet.addElement(table)
    buffer = io.BytesIO()
    document.write(buffer)
    _write_zip("wb_dates.ods", buffer.getvalue())


def write_nul_letters() -> None:
    """Write an XLS whose strings have a NUL after every letter (UTF-16 read as bytes)."""
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("People")
    rows = [["Name", "Mobile"], ["Ana Reyes", "09171234567"], ["Ben Cruz", "09181234567"]]
    for number, cells in enumerate(rows):
        for column, text in enumerate(cells):
            sheet.write(number, column, "".join(letter + "\0" for letter in text))
    book.save(str(HERE / "wb_nul_letters.xls"))


def write_sheets_without_rows() -> None:
    """Write a chart sheet and an empty sheet before two sheets of people, in XLSX and ODS."""
    workbook = _workbook()
    empty = workbook.active
    assert empty is not None
    empty.title = "Empty"
    workbook.create_chartsheet("Chart", 0)
    for title in ("People", "More people"):
        sheet = workbook.create_sheet(title)
        sheet.append(["Name", "Mobile"])
        sheet.append(["Ana", "09171234567"])
    _save(workbook, "wb_sheets_without_rows.xlsx")

    document = OpenDocumentSpreadsheet()
    document.spreadsheet.addElement(Table(name="Empty"))
    people = Table(name="More people")
    for values in (["Name", "Mobile"], ["Ana", "09171234567"]):
        row = TableRow()
        for text in values:
            row.addElement(_ods_text(text))
        people.addElement(row)
    document.spreadsheet.addElement(people)
    buffer = io.BytesIO()
    document.write(buffer)
    _write_zip("wb_sheets_without_rows.ods", buffer.getvalue())


def write_xlsb() -> None:
    """Write binary workbooks (XLSB): a sheet of people, and one with a cell in XFD1048576."""
    people: list[tuple[int, int, str | float | bytes]] = [
        (0, 0, "Name"),
        (0, 1, "Mobile"),
        (1, 0, "Ana"),
        (1, 1, 639171234570.0),
        (2, 0, "Ben"),
        (2, 1, "09181234567"),
    ]
    (HERE / "wb_people.xlsb").write_bytes(_xlsb("People", people))
    far = [*people, (1_048_575, 16_383, "stray")]
    (HERE / "wb_far_cell.xlsb").write_bytes(_xlsb("People", far))


def _xlsb(name: str, cells: list[tuple[int, int, str | float | bytes]]) -> bytes:
    """Return a minimal XLSB: one sheet of (row, column, value) cells, strings inline.

    A ``bytes`` value is an error cell, the byte its error code.
    """
    book = b"".join(
        [
            _record(0x0083),  # BrtBeginBook
            _record(0x008F),  # BrtBeginBundleShs
            _record(0x009C, struct.pack("<II", 0, 1) + _wide("rId1") + _wide(name)),
            _record(0x0090),  # BrtEndBundleShs
            _record(0x009D, bytes(14)),  # BrtCalcProp
            _record(0x0084),  # BrtEndBook
        ]
    )
    records: list[bytes] = []
    row = -1
    for number, column, value in cells:
        if number != row:
            records.append(_record(0x0000, struct.pack("<I", number) + bytes(13)))  # BrtRowHdr
            row = number
        head = struct.pack("<II", column, 0)
        if isinstance(value, bytes):
            records.append(_record(0x0003, head + value))  # BrtCellError
        elif isinstance(value, str):
            records.append(_record(0x0006, head + _wide(value)))  # BrtCellSt
        else:
            records.append(_record(0x0005, head + struct.pack("<d", value)))  # BrtCellReal
    last_row = max(number for number, _, _ in cells)
    last_column = max(column for _, column, _ in cells)
    sheet = b"".join(
        [
            _record(0x0081),  # BrtBeginSheet
            _record(0x0094, struct.pack("<IIII", 0, last_row, 0, last_column)),  # BrtWsDim
            _record(0x0091),  # BrtBeginSheetData
            *records,
            _record(0x0092),  # BrtEndSheetData
            _record(0x0082),  # BrtEndSheet
        ]
    )
    relationships = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    members = {
        "[Content_Types].xml": (
            b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            b'<Default Extension="rels" '
            b'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            b'<Override PartName="/xl/workbook.bin" '
            b'ContentType="application/vnd.ms-excel.sheet.binary.macroEnabled.main"/>'
            b'<Override PartName="/xl/worksheets/sheet1.bin" '
            b'ContentType="application/vnd.ms-excel.worksheet"/></Types>'
        ),
        "_rels/.rels": _relationships(f"{relationships}/officeDocument", "xl/workbook.bin"),
        "xl/workbook.bin": book,
        "xl/_rels/workbook.bin.rels": _relationships(
            f"{relationships}/worksheet", "worksheets/sheet1.bin"
        ),
        "xl/worksheets/sheet1.bin": sheet,
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for member, payload in members.items():
            info = zipfile.ZipInfo(member, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, payload)
    return out.getvalue()


def _record(kind: int, payload: bytes = b"") -> bytes:
    """Return one XLSB record: its type and size 7 bits a byte, low bits first, then payload."""
    return _varint(kind) + _varint(len(payload)) + payload


def _varint(number: int) -> bytes:
    """Return a number 7 bits a byte, the high bit set on every byte but the last."""
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _wide(text: str) -> bytes:
    """Return an XLSB wide string: its length in characters, then UTF-16 LE."""
    return struct.pack("<I", len(text)) + text.encode("utf-16-le")


def _relationships(kind: str, target: str) -> bytes:
    """Return a relationships part with one relationship, rId1."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{kind}" Target="{target}"/></Relationships>'
    ).encode()


def write_protected_and_damaged() -> None:
    """Write a password-protected ODS and XLS, and an ODS whose manifest fails its CRC."""
    document = OpenDocumentSpreadsheet()
    table = Table(name="People")
    for values in (["Name", "Mobile"], ["Ana", "09171234567"]):
        row = TableRow()
        for text in values:
            row.addElement(_ods_text(text))
        table.addElement(row)
    document.spreadsheet.addElement(table)
    buffer = io.BytesIO()
    document.write(buffer)
    plain = buffer.getvalue()
    with zipfile.ZipFile(io.BytesIO(plain)) as archive:
        manifest = archive.read("META-INF/manifest.xml")
    # What LibreOffice writes for a part saved with a password; the part itself is ciphertext.
    encryption = (
        b'<manifest:encryption-data manifest:checksum-type="SHA1/1K" '
        b'manifest:checksum="AAAAAAAAAAAAAAAAAAAAAAAAAAA=">'
        b'<manifest:algorithm manifest:algorithm-name="Blowfish CFB" '
        b'manifest:initialisation-vector="AAAAAAAAAAA="/>'
        b'<manifest:key-derivation manifest:key-derivation-name="PBKDF2" '
        b'manifest:iteration-count="1024" manifest:salt="AAAAAAAAAAAAAAAAAAAAAA=="/>'
        b"</manifest:encryption-data>"
    )
    encrypted = re.sub(
        rb'(<manifest:file-entry [^>]*manifest:full-path="content.xml"[^>]*?)\s*/>',
        rb"\g<1>>" + encryption + rb"</manifest:file-entry>",
        manifest,
    )
    assert encrypted != manifest
    ciphertext = bytes((index * 151 + 7) % 256 for index in range(600))
    _write_zip(
        "wb_protected.ods",
        plain,
        {"META-INF/manifest.xml": encrypted, "content.xml": ciphertext},
    )

    _write_zip("wb_bad_crc.ods", plain)
    damaged = (HERE / "wb_bad_crc.ods").read_bytes()
    with zipfile.ZipFile(io.BytesIO(damaged)) as archive:
        crc = archive.getinfo("META-INF/manifest.xml").CRC
    good, bad = crc.to_bytes(4, "little"), (crc ^ 1).to_bytes(4, "little")
    assert damaged.count(good) == 2  # the local header and the central directory
    (HERE / "wb_bad_crc.ods").write_bytes(damaged.replace(good, bad))

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("People")
    for number, cells in enumerate([["Name", "Mobile"], ["Ana", "09171234567"]]):
        for column, text in enumerate(cells):
            sheet.write(number, column, text)
    out = io.BytesIO()
    book.save(out)
    data = out.getvalue()
    # xlwt writes INTERFACEHDR and MMS (12 bytes) after the BOF; a FILEPASS record
    # (XOR obfuscation, 12 bytes) takes their place, as in a workbook saved with a password.
    at = data.index(b"\xe1\x00\x02\x00")
    assert data[at + 6 : at + 10] == b"\xc1\x00\x02\x00"
    filepass = struct.pack("<HHHHHH", 0x002F, 8, 0, 0x1234, 0x5678, 0)
    (HERE / "wb_protected.xls").write_bytes(data[:at] + filepass + data[at + 12 :])


def write_formula_errors() -> None:
    """Write phone cells holding formula errors (a failed VLOOKUP...) in XLSX and XLSB."""
    workbook = _workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "People"
    sheet.append(["Name", "Mobile", "Note"])
    sheet.append(["Ana", "09171234567", "ok"])
    for name in ("Ben", "Cy", "Dee", "Eve"):
        sheet.append([name, "0", "0"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml")
    errors = {
        "B3": ("VLOOKUP(A3,Phones!A:B,2,FALSE)", "#N/A"),
        "B4": ("1/0", "#DIV/0!"),
        "B5": ('A5+"x"', "#VALUE!"),
        "C6": ("#REF!", "#REF!"),
        "B6": (None, "#N/A"),
    }
    for ref, (formula, error) in errors.items():
        cell = re.compile(rb'<c r="' + ref.encode() + rb'"[^>]*>.*?</c>')
        kept = "<f>" + formula.replace('"', "&quot;") + "</f>" if formula else ""
        xml, count = cell.subn(f'<c r="{ref}" t="e">{kept}<v>{error}</v></c>'.encode(), xml)
        assert count == 1, ref
    _write_zip("wb_formula_errors.xlsx", buffer.getvalue(), {"xl/worksheets/sheet1.xml": xml})

    cells: list[tuple[int, int, str | float | bytes]] = [
        (0, 0, "Name"),
        (0, 1, "Mobile"),
        (1, 0, "Ana"),
        (1, 1, "09171234567"),
        (2, 0, "Ben"),
        (2, 1, b"\x2a"),  # BrtCellError #N/A
        (3, 0, "Cy"),
        (3, 1, b"\x07"),  # #DIV/0!
    ]
    (HERE / "wb_formula_errors.xlsb").write_bytes(_xlsb("People", cells))

    book = xlwt.Workbook(encoding="utf-8")
    legacy = book.add_sheet("People")
    for number, (name, phone) in enumerate([("Name", "Mobile"), ("Ana", "09171234567")]):
        legacy.write(number, 0, name)
        legacy.write(number, 1, phone)
    legacy.write(2, 0, "Ben")
    legacy.row(2).set_cell_error(1, 0x2A)  # #N/A
    legacy.write(3, 0, "Cy")
    legacy.row(3).set_cell_error(1, 0x07)  # #DIV/0!
    book.save(str(HERE / "wb_formula_errors.xls"))

    # LibreOffice writes an error cell as an empty string marked calcext:value-type="error".
    document = OpenDocumentSpreadsheet()
    table = Table(name="People")
    for values in (["Name", "Mobile"], ["Ana", "09171234567"], ["Ben", "ERROR"]):
        row = TableRow()
        for text in values:
            row.addElement(_ods_text(text))
        table.addElement(row)
    document.spreadsheet.addElement(table)
    buffer = io.BytesIO()
    document.write(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        content = archive.read("content.xml")
    calcext = b"urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0"
    content = content.replace(
        b"<office:document-content ",
        b'<office:document-content xmlns:calcext="' + calcext + b'" ',
        1,
    )
    content, count = re.subn(
        rb"<table:table-cell [^>]*><text:p>ERROR</text:p></table:table-cell>",
        b'<table:table-cell table:formula="of:=VLOOKUP([.A3];$Phones.A:B;2;0)" '
        b'office:value-type="string" office:string-value="" calcext:value-type="error">'
        b"<text:p>#N/A</text:p></table:table-cell>",
        content,
    )
    assert count == 1
    _write_zip("wb_formula_errors.ods", buffer.getvalue(), {"content.xml": content})


def _ods_text(text: str) -> TableCell:
    """Return an ODS string cell."""
    cell = TableCell(valuetype="string")
    cell.addElement(P(text=text))
    return cell


def main() -> None:
    """Write every wb_* fixture."""
    write_late_column()
    write_dates()
    write_nul_letters()
    write_sheets_without_rows()
    write_xlsb()
    write_protected_and_damaged()
    write_formula_errors()


if __name__ == "__main__":
    main()
