"""The whole-process references of `check`: what a bare script does with the same file.

    python bench/reference.py csv FILE.csv    # pandas + phonenumbers
    python bench/reference.py xlsx FILE.xlsx  # openpyxl, reading only

``csv`` reads the file with pandas ``read_csv(dtype=str)`` and runs
phonenumbers ``parse``, ``is_valid_number`` and ``format_number(E164)`` on
every number; ``xlsx`` reads every row of the first sheet with openpyxl
``load_workbook(read_only=True)`` and validates none. Each prints the rows it
read and the numbers it found valid as one JSON line. The script imports only
the library it uses, once it knows which, so its start-up is that library's
own: it is timed as a whole process, interpreter start included, against the
whole `bulkimport check` command.
"""

from __future__ import annotations

import json
import sys

COUNTRY = "PH"
PHONE_HEADER = "Mobile Number"


def csv_reference(path: str) -> dict[str, int]:
    """Read the CSV with pandas (every cell text); parse, validate and format each number."""
    import pandas as pd
    import phonenumbers

    e164 = phonenumbers.PhoneNumberFormat.E164
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    valid = 0
    for raw in frame[PHONE_HEADER]:
        try:
            number = phonenumbers.parse(raw, COUNTRY)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            phonenumbers.format_number(number, e164)
            valid += 1
    return {"rows": len(frame), "valid": valid}


def xlsx_reference(path: str) -> dict[str, int]:
    """Read every row of the first sheet with openpyxl in read-only mode; validate nothing."""
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        rows = sum(1 for _ in workbook.worksheets[0].iter_rows(values_only=True)) - 1
    finally:
        workbook.close()
    return {"rows": rows, "valid": 0}


KINDS = {"csv": csv_reference, "xlsx": xlsx_reference}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in KINDS:
        print("usage: python bench/reference.py csv|xlsx FILE", file=sys.stderr)
        return 2
    kind, path = argv
    print(json.dumps(KINDS[kind](path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
