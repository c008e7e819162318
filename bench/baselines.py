"""The references `check` and `run` are measured against: bare library loops and a naive sender.

Each floor does only what no importer can skip: read the file with the library
and call phonenumbers parse + is_valid_number + format_number once per number.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import phonenumbers
import requests
from openpyxl import load_workbook
from python_calamine import CalamineWorkbook
from workload import COUNTRY, HEADER, PHONE_COLUMN

E164 = phonenumbers.PhoneNumberFormat.E164


def phone_floor(raws: Iterable[str]) -> int:
    """Parse, validate and format every number; return how many were valid."""
    valid = 0
    for raw in raws:
        try:
            number = phonenumbers.parse(raw, COUNTRY)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            phonenumbers.format_number(number, E164)
            valid += 1
    return valid


def csv_floor(path: Path) -> int:
    """Read the CSV with pandas (every cell text) and run the phone floor on its numbers."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return phone_floor(frame[HEADER[PHONE_COLUMN]])


def _cell_text(value: object) -> str:
    """Return a workbook cell as the text a person typed (whole floats without ``.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def calamine_floor(path: Path) -> int:
    """Read the first sheet with python-calamine and run the phone floor on its numbers."""
    workbook = CalamineWorkbook.from_path(str(path))
    rows = workbook.get_sheet_by_index(0).iter_rows()
    next(rows)  # the header
    return phone_floor(_cell_text(row[PHONE_COLUMN]) for row in rows)


def openpyxl_read(path: Path) -> int:
    """Read every row of the first sheet with openpyxl in read-only mode; return the count."""
    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        return sum(1 for _ in workbook.worksheets[0].iter_rows(values_only=True)) - 1
    finally:
        workbook.close()


def naive_send(path: Path, api_url: str, api_key: str, engagement_id: int, rows: int) -> int:
    """POST one contact per request, in a loop, as a first script would; return rows sent.

    It normalizes each number with phonenumbers and sends it with its name,
    without a session (a new connection per request) and without batching.
    """
    url = f"{api_url}/engagements/{engagement_id}/contacts/?try_using_existing=newest"
    headers = {"Authorization": f"Token {api_key}"}
    sent = 0
    with path.open(newline="", encoding="utf-8") as source:
        reader = csv.reader(source)
        next(reader)
        for cells in reader:
            if sent >= rows:
                break
            try:
                number = phonenumbers.parse(cells[PHONE_COLUMN], COUNTRY)
            except phonenumbers.NumberParseException:
                continue
            if not phonenumbers.is_valid_number(number):
                continue
            contact = {
                "fullPhoneNumber": phonenumbers.format_number(number, E164)[1:],
                "firstName": cells[0],
                "lastName": cells[1],
            }
            response = requests.post(url, json=[contact], headers=headers, timeout=30)
            response.raise_for_status()
            sent += 1
    return sent
