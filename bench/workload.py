"""The benchmark's input files: applicants with Philippine mobile numbers, from a fixed seed.

Numbers are distinct, so no phone cache can hide the library's cost, and they
come in the shapes people type (national, spaced, +63, dashed, bare 63...).
About 1 row in 100 repeats an earlier person in another shape and about 1 in
100 is unusable (too short, too long, text, empty), so `check` reports problems
as it would on a real sheet.
"""

from __future__ import annotations

import csv
import logging
import random
from collections.abc import Iterator
from pathlib import Path

from openpyxl import Workbook

log = logging.getLogger(__name__)

SEED = 20240606
VERSION = 1  # bump when the rows change, so cached files are made again
HEADER = ("First Name", "Last Name", "Mobile Number", "Email", "Barangay")
PHONE_COLUMN = HEADER.index("Mobile Number")
COUNTRY = "PH"

# Philippine mobile prefixes (the 3 digits after the trunk 0), all valid in libphonenumber.
PREFIXES = [
    "905",
    "906",
    "908",
    "915",
    "916",
    "917",
    "918",
    "919",
    "920",
    "921",
    "922",
    "923",
    "925",
    "926",
    "927",
    "928",
    "929",
    "932",
    "933",
    "934",
    "935",
    "936",
    "939",
    "942",
    "943",
    "945",
    "947",
    "949",
    "955",
    "956",
    "965",
    "966",
    "975",
    "977",
    "995",
    "997",
    "998",
]
FIRST_NAMES = [
    "Juan",
    "Maria",
    "Jose",
    "Ana",
    "Mark",
    "Kristine",
    "Paolo",
    "Angelica",
    "John",
    "Rosalie",
    "Carlo",
    "Jenny",
    "Miguel",
    "Liza",
    "Rafael",
    "Joy",
    "Christian",
    "Grace",
    "Noel",
    "Aileen",
]
LAST_NAMES = [
    "Dela Cruz",
    "Santos",
    "Reyes",
    "Garcia",
    "Mendoza",
    "Bautista",
    "Ocampo",
    "Villanueva",
    "Ramos",
    "Aquino",
    "Castillo",
    "Fernandez",
    "Navarro",
    "Torres",
    "Flores",
]
BARANGAYS = ("Poblacion", "San Isidro", "Santa Cruz", "Bagong Silang", "San Roque")
BAD_PHONES = ("0917 123", "0917-123-45678", "n/a", "", "call after 5pm", "0917123456789")


def _shapes(national: str) -> tuple[str, ...]:
    """Return the ways people write one national number (10 digits, no trunk 0)."""
    a, b, c = national[:3], national[3:6], national[6:]
    return (
        f"0{national}",
        f"0{a} {b} {c}",
        f"+63 {a} {b} {c}",
        f"63{national}",
        f"+63-{a}-{b}-{c}",
        f"(0{a}) {b}-{c}",
    )


def people(count: int, seed: int = SEED) -> Iterator[tuple[str, str, str, str, str]]:
    """Yield ``count`` rows (first, last, phone, email, barangay), the same for a seed."""
    rng = random.Random(seed)
    codes = rng.sample(range(len(PREFIXES) * 10**7), count)
    for index, code in enumerate(codes):
        prefix, rest = divmod(code, 10**7)
        national = PREFIXES[prefix] + f"{rest:07d}"
        pick = rng.random()
        if pick < 0.01:
            phone = rng.choice(BAD_PHONES)
        elif pick < 0.02 and index:
            earlier = codes[rng.randrange(index)]
            prefix, rest = divmod(earlier, 10**7)
            phone = rng.choice(_shapes(PREFIXES[prefix] + f"{rest:07d}"))
        else:
            phone = _shapes(national)[index % 6]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last.replace(' ', '')}{index}@example.com".lower()
        yield first, last, phone, email, rng.choice(BARANGAYS)


def csv_file(folder: Path, count: int) -> Path:
    """Return a CSV of ``count`` people in ``folder``, writing it unless it exists."""
    path = folder / f"people-{count}-v{VERSION}.csv"
    if not path.exists():
        log.info("writing %s", path.name)
        partial = path.with_name(path.name + ".partial")
        with partial.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(HEADER)
            writer.writerows(people(count))
        partial.replace(path)
    return path


def xlsx_file(folder: Path, count: int) -> Path:
    """Return an XLSX of ``count`` people in ``folder``, writing it unless it exists.

    Numbers written as ``63...`` are stored as numeric cells, as Excel stores
    them when someone types them; every other shape is text.
    """
    path = folder / f"people-{count}-v{VERSION}.xlsx"
    if not path.exists():
        log.info("writing %s (openpyxl, write-only)", path.name)
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("Applicants")
        sheet.append(HEADER)
        for first, last, phone, email, barangay in people(count):
            cell: str | int = int(phone) if phone.isdigit() and phone[0] != "0" else phone
            sheet.append([first, last, cell, email, barangay])
        partial = path.with_name(path.name + ".partial")
        workbook.save(partial)
        partial.replace(path)
    return path
