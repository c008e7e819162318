"""Write the wb_* workbook fixtures in this folder; run it again to regenerate them.

    .venv/bin/python tests/data/wb_make_fixtures.py

Needs openpyxl, xlwt and odfpy (the dev extras). Zip members get fixed
timestamps so that regenerating them changes no bytes.
"""

from __future__ import annotations

import io
import re
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


if __name__ == "__main__":
    main()
