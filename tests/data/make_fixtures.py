"""Write the spreadsheet fixtures in this folder; run it again to regenerate them.

    .venv/bin/python tests/data/make_fixtures.py

Needs openpyxl, xlwt and odfpy (the dev extras). Zip-based files get fixed
timestamps so that regenerating them changes no bytes.
"""

from __future__ import annotations

import io
import random
import re
import struct
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import xlwt
from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import Table, TableCell, TableRow
from odf.text import P

HERE = Path(__file__).resolve().parent
FIXED_TIME = (2024, 1, 31, 12, 0, 0)
FIXED_DATETIME = datetime(2024, 1, 31, 12, 0, 0)


def write_text_files() -> None:
    """Write the CSV, TSV and TXT fixtures, each in the encoding its name says."""
    (HERE / "utf8_bom.csv").write_bytes(
        "\ufeffPhone,First Name,Last Name\r\n"
        "+639171234570,José,Peña\r\n"
        "09181234567,Zoë,Ñuñez\r\n".encode()
    )
    (HERE / "cp1252_semicolon.csv").write_bytes(
        "Mobile;First name;Last name;Notes\r\n"
        "639171234570;José;Peña;café, tea\r\n"
        "639181234571;Renée;Müller;€ 5\r\n".encode("cp1252")
    )
    (HERE / "utf16_excel.txt").write_bytes(
        b"\xff\xfe"
        + (
            "Phone\tName\tCity\r\n"
            "639171234570\tJosé Peña\tCebú\r\n"
            "639181234571\tAna Reyes\tDavao\r\n"
        ).encode("utf-16-le")
    )
    (HERE / "pipe.txt").write_bytes(
        b"phone|name|group\n639171234570|Ana|7\n639181234571|Ben|7\n639191234572|Cy|8\n"
    )
    (HERE / "blank_rows.csv").write_bytes(
        b"\nphone,name\n639171234570,Ana\n\n , \n639181234571,Ben\n,\n639191234572,Cy\n"
    )
    (HERE / "quoted_newline.csv").write_bytes(
        b"phone,name,address\r\n"
        b'639171234570,Ana,"12 Rizal St.\r\nCebu City"\r\n'
        b'639181234571,"Reyes, Ben","Unit 4\r\nBlock 2\r\nDavao"\r\n'
        b"639191234572,Cy,Manila\r\n"
    )
    (HERE / "header_only.csv").write_bytes(b"phone,first name,last name\r\n")
    (HERE / "empty.csv").write_bytes(b"")
    (HERE / "junk.csv").write_bytes(random.Random(20240131).randbytes(4096))
    (HERE / "not_a_zip.xlsx").write_bytes(b"phone,name\n639171234570,Ana\n")


def _fixed_workbook() -> openpyxl.Workbook:
    """Return an empty workbook whose document properties carry a fixed time."""
    workbook = openpyxl.Workbook()
    workbook.properties.created = FIXED_DATETIME
    workbook.properties.modified = FIXED_DATETIME
    return workbook


def _save_fixed(workbook: openpyxl.Workbook, name: str) -> bytes:
    """Save a workbook with fixed member timestamps and return its bytes."""
    buffer = io.BytesIO()
    workbook.save(buffer)
    data = _with_fixed_times(buffer.getvalue())
    (HERE / name).write_bytes(data)
    return data


def _with_fixed_times(data: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    """Return the zip rewritten with fixed timestamps, plus any extra deflated members."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for member in source.infolist():
            info = zipfile.ZipInfo(member.filename, FIXED_TIME)
            info.compress_type = member.compress_type
            target.writestr(info, _fixed_modified(member.filename, source.read(member)))
        for name, payload in (extra or {}).items():
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, payload, compresslevel=9)
    return out.getvalue()


def _fixed_modified(name: str, payload: bytes) -> bytes:
    """Return the member with openpyxl's save-time "modified" stamp replaced by the fixed one."""
    if name != "docProps/core.xml":
        return payload
    return re.sub(
        rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
        rb"\g<1>2024-01-31T12:00:00Z\g<2>",
        payload,
    )


def write_numeric_phones() -> bytes:
    """Write phones as numbers and as text, with dates, booleans and fractions beside them."""
    workbook = _fixed_workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Contacts"
    sheet.append(["Phone", "Name", "Joined", "Active", "Score"])
    sheet.append([639171234570, "Ana", date(2024, 1, 31), True, 1.5])
    sheet.append(["09171234567", "Ben", datetime(2024, 1, 31, 13, 45, 7), False, 0.1])
    sheet.append(["+639181234567", "Cy", None, None, 1e20])
    sheet.append([639191234572.0, " Dee ", None, None, -3.0])
    # Shown as 6.39E+11 in Excel; the stored value is still the whole number.
    sheet["A5"].number_format = "0.00E+00"
    return _save_fixed(workbook, "numeric_phones.xlsx")


def write_two_sheets() -> None:
    """Write a workbook whose people are on its second sheet, "Applicants"."""
    workbook = _fixed_workbook()
    notes = workbook.active
    assert notes is not None
    notes.title = "Notes"
    notes.append(["Read me first"])
    notes.append(["Applicants are on the next sheet"])
    applicants = workbook.create_sheet("Applicants")
    applicants.append(["phone", "name"])
    applicants.append(["639171234570", "Ana"])
    applicants.append(["639181234571", "Ben"])
    _save_fixed(workbook, "two_sheets.xlsx")


def write_leading_blank_rows() -> None:
    """Write a sheet whose header is on row 3, starting in column B, with a blank row 5."""
    workbook = _fixed_workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Sheet1"
    sheet["B3"], sheet["C3"] = "Phone", "Name"
    sheet["B4"], sheet["C4"] = "639171234570", "Ana"
    sheet["B6"], sheet["C6"] = "639181234571", "Ben"
    _save_fixed(workbook, "leading_blank_rows.xlsx")


def write_legacy_xls() -> None:
    """Write an Excel 97-2003 workbook with a numeric phone, accents and a date."""
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Legacy")
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for column, title in enumerate(["Phone", "Name", "Joined"]):
        sheet.write(0, column, title)
    sheet.write(1, 0, 639171234570.0)
    sheet.write(1, 1, "José Peña")
    sheet.write(1, 2, date(2024, 1, 31), date_style)
    sheet.write(2, 0, "+639181234571")
    sheet.write(2, 1, "Ana")
    book.save(str(HERE / "legacy.xls"))


def _ods_cell(value: str | float | date | None) -> TableCell:
    """Return an ODS cell holding a string, a float, a date or nothing."""
    if value is None:
        return TableCell()
    if isinstance(value, date):
        cell = TableCell(valuetype="date", datevalue=value.isoformat())
    elif isinstance(value, float):
        cell = TableCell(valuetype="float", value=repr(value))
    else:
        cell = TableCell(valuetype="string")
    cell.addElement(P(text=str(value)))
    return cell


def write_applicants_ods() -> None:
    """Write an OpenDocument sheet "Applicants" with numeric and text phones."""
    document = OpenDocumentSpreadsheet()
    table = Table(name="Applicants")
    rows: list[list[str | float | date | None]] = [
        ["Phone", "Name", "Applied"],
        [639171234570.0, "José Peña", date(2024, 1, 31)],
        [None, None, None],
        ["+63 918 123 4571", "Ana", None],
    ]
    for values in rows:
        row = TableRow()
        for value in values:
            row.addElement(_ods_cell(value))
        table.addElement(row)
    document.spreadsheet.addElement(table)
    buffer = io.BytesIO()
    document.write(buffer)
    (HERE / "applicants.ods").write_bytes(_with_fixed_times(buffer.getvalue()))


def write_damaged_workbooks(valid_xlsx: bytes) -> None:
    """Write a truncated XLSX and a zip bomb (a 16 MiB member of zeros, about 16 KiB stored)."""
    (HERE / "truncated.xlsx").write_bytes(valid_xlsx[: len(valid_xlsx) // 2])
    bomb = _with_fixed_times(valid_xlsx, {"xl/media/filler.bin": bytes(16 * 1024 * 1024)})
    (HERE / "zip_bomb.xlsx").write_bytes(bomb)


def write_encrypted_xlsx() -> None:
    """Write the OLE2 (compound file) container Excel uses for a password-protected XLSX.

    A minimal but well-formed compound file: header, one FAT sector and one
    directory sector naming the two streams of an encrypted workbook,
    ``EncryptionInfo`` and ``EncryptedPackage`` (both empty here).
    """
    end_of_chain, free, fat_sector = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD
    header = b"".join(
        [
            bytes.fromhex("D0CF11E0A1B11AE1"),
            bytes(16),  # CLSID
            struct.pack("<HHHHH", 0x003E, 0x0003, 0xFFFE, 9, 6),
            bytes(6),
            struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end_of_chain, 0, end_of_chain, 0),
            struct.pack("<I", 0) + struct.pack("<I", free) * 108,  # DIFAT: FAT in sector 0
        ]
    )
    fat = struct.pack("<II", fat_sector, end_of_chain) + struct.pack("<I", free) * 126
    directory = b"".join(
        [
            _directory_entry("Root Entry", kind=5, child=1),
            _directory_entry("EncryptionInfo", kind=2, right=2),
            _directory_entry("EncryptedPackage", kind=2),
            bytes(128),
        ]
    )
    (HERE / "encrypted.xlsx").write_bytes(header + fat + directory)


def _directory_entry(name: str, *, kind: int, child: int = -1, right: int = -1) -> bytes:
    """Return one 128-byte compound-file directory entry for an empty stream or the root."""
    no_stream = 0xFFFFFFFF
    encoded = (name + "\0").encode("utf-16-le")
    return b"".join(
        [
            encoded.ljust(64, b"\0"),
            struct.pack("<HBB", len(encoded), kind, 1),
            struct.pack("<III", no_stream, right & no_stream, child & no_stream),
            bytes(16 + 4 + 8 + 8),  # CLSID, state bits, creation and modification times
            struct.pack("<IQ", 0xFFFFFFFE, 0),  # start sector, size
        ]
    )


def main() -> None:
    """Write every fixture."""
    write_text_files()
    valid_xlsx = write_numeric_phones()
    write_two_sheets()
    write_leading_blank_rows()
    write_legacy_xls()
    write_applicants_ods()
    write_damaged_workbooks(valid_xlsx)
    write_encrypted_xlsx()


if __name__ == "__main__":
    main()
