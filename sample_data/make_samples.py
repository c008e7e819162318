"""Write the sample files in this folder; run it again to get the same bytes.

    .venv/bin/python sample_data/make_samples.py

Every number meant to be valid is checked with phonenumbers (a valid
Philippine mobile) before it is written, and every problem row is planted at a
known place, so README.md can say exactly what ``bulkimport check`` reports.
"""

from __future__ import annotations

import csv
import io
import random
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import phonenumbers
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

HERE = Path(__file__).resolve().parent
SEED = 20240131
FIXED_DATETIME = datetime(2024, 4, 2, 9, 0, 0)  # when the "exports" were saved
FIXED_TIME = FIXED_DATETIME.timetuple()[:6]

# Mobile prefixes of Globe, Smart, DITO and Sun. 0999 is left out so that no
# sample number comes near the sandbox's rule that refuses numbers starting
# with 999 (its way to fake a server-side rejection).
MOBILE_PREFIXES = (
    "0905", "0906", "0915", "0916", "0917", "0926", "0927", "0935", "0936", "0945",
    "0955", "0956", "0965", "0966", "0975", "0977", "0995", "0996", "0997", "0918",
    "0919", "0920", "0921", "0928", "0929", "0939", "0947", "0949", "0961", "0998",
    "0908", "0909", "0910", "0912", "0930", "0938", "0946", "0948", "0950",
)  # fmt: skip

FEMALE_NAMES = (
    "Maria", "Ana", "Kristine", "Angelica", "Rhea", "Princess", "Mary Joy", "Camille",
    "Kimberly", "Jennifer", "Lovely", "Jasmine", "Mae", "Ma. Cristina", "Liza", "Sheila",
    "Aileen", "Bea", "Patricia", "Gemma", "Joanna", "Rowena", "Marites", "Cherry Ann",
    "Katherine", "Nicole", "Janine", "Shiela Mae", "Divina", "Rosalie",
)  # fmt: skip
MALE_NAMES = (
    "Jose", "Juan", "Mark", "John Paul", "Jerome", "Jomar", "Christian", "Jericho",
    "Rodel", "Ronaldo", "Marvin", "Carlo", "Joshua", "Arnel", "Edgardo", "Reynaldo",
    "Angelo", "Rafael", "Ricardo", "Nestor", "Niño", "Jayson", "Kenneth", "Ramil",
    "Danilo", "Michael", "Ariel", "Francis", "Romeo", "Vincent",
)  # fmt: skip
SURNAMES = (
    "Dela Cruz", "Santos", "Reyes", "Garcia", "Mendoza", "Bautista", "Villanueva",
    "Ramos", "Aquino", "Castillo", "Flores", "Gonzales", "Torres", "Rivera", "Cruz",
    "Fernandez", "Lopez", "Navarro", "Pascual", "Salazar", "Manalo", "Mercado",
    "Del Rosario", "De Guzman", "Aguilar", "Soriano", "Tolentino", "Domingo", "Valdez",
    "Lim", "Tan", "Panganiban", "Macaraeg", "Dimaculangan", "Magbanua", "Pangilinan",
    "Ocampo", "Evangelista", "Santiago", "Marquez", "Ignacio", "Peña", "Muñoz",
    "Castañeda", "Ibáñez", "Cabrera", "Dizon", "Javier", "Sarmiento", "Yap",
)  # fmt: skip
POSITIONS = (
    "Customer Service Representative", "Technical Support Representative",
    "Sales Associate", "Cashier", "Warehouse Staff", "Delivery Rider",
    "Admin Assistant", "Barista", "Service Crew", "Inventory Clerk",
)  # fmt: skip
BRANCHES = (
    "Makati", "Quezon City", "Pasig", "Cebu City", "Davao City", "Iloilo City",
    "Cagayan de Oro", "Baguio",
)  # fmt: skip
EMAIL_DOMAINS = ("gmail.com", "gmail.com", "gmail.com", "yahoo.com", "ymail.com", "outlook.com")


@dataclass(frozen=True)
class Person:
    """One applicant; ``mobile`` is the national form, ``09171234567``."""

    first: str
    last: str
    mobile: str
    email: str

    @property
    def international(self) -> str:
        """Return the number as the API takes it: ``639171234567``."""
        return "63" + self.mobile[1:]


class People:
    """Draws applicants with distinct, verified mobile numbers from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._used: set[str] = set()

    def mobile(self) -> str:
        """Return a new valid Philippine mobile number in national form."""
        while True:
            number = self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**7):07d}"
            if number not in self._used:
                self._used.add(number)
                verify_mobile(number)
                return number

    def person(self) -> Person:
        """Return a new applicant with a name, number and (usually) an email."""
        first = self.rng.choice(FEMALE_NAMES if self.rng.random() < 0.55 else MALE_NAMES)
        last = self.rng.choice(SURNAMES)
        return Person(first, last, self.mobile(), self.email(first, last))

    def email(self, first: str, last: str) -> str:
        """Return an address made from the name the way people make them, or "" for none."""
        if self.rng.random() < 0.08:
            return ""
        local = {
            0: f"{_ascii(first)}.{_ascii(last)}",
            1: f"{_ascii(first)}{_ascii(last)}{self.rng.randrange(1, 99)}",
            2: f"{_ascii(first)[:1]}{_ascii(last)}{self.rng.randrange(1990, 2004)}",
        }[self.rng.randrange(3)]
        return f"{local}@{self.rng.choice(EMAIL_DOMAINS)}"


def _ascii(name: str) -> str:
    """Return a name as an email's local part: lower case ASCII letters only."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", plain.lower())


def verify_mobile(national: str) -> None:
    """Stop the script unless ``national`` is a valid Philippine mobile number."""
    number = phonenumbers.parse(national, "PH")
    if not (
        phonenumbers.is_valid_number(number)
        and phonenumbers.region_code_for_number(number) == "PH"
        and phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
    ):
        raise SystemExit(f"{national} is not a valid PH mobile number; change the generator")


def verify_cell(cell: object, person: Person) -> None:
    """Stop the script unless the cell, read as people type it, is the person's number."""
    text = str(cell).strip().lstrip("'")
    number = phonenumbers.parse(text, "PH")
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(number) or formatted != "+" + person.international:
        raise SystemExit(f"cell {cell!r} does not read as {person.international}")


# --- phone cells in the shapes real exports have ----------------------------

PhoneShape = Callable[[str], object]

PHONE_SHAPES: tuple[tuple[PhoneShape, int], ...] = (
    (lambda n: n, 24),  # 09171234567
    (lambda n: f"{n[:4]} {n[4:7]} {n[7:]}", 15),  # 0917 123 4567
    (lambda n: int("63" + n[1:]), 12),  # numeric 639171234567
    (lambda n: int(n[1:]), 10),  # numeric 9171234567: Excel dropped the 0
    (lambda n: f"+63 {n[1:4]} {n[4:7]} {n[7:]}", 10),  # +63 917 123 4567
    (lambda n: f"63-{n[1:4]}-{n[4:7]}-{n[7:]}", 8),  # 63-917-123-4567
    (lambda n: f"({n[:4]}) {n[4:]}", 8),  # (0917) 1234567
    (lambda n: f"'{n}", 6),  # '09171234567: Excel's keep-the-zero apostrophe, saved as text
    (lambda n: f"{n[:4]} {n[4:7]} {n[7:]}  ", 7),  # trailing spaces
)


def phone_cell(rng: random.Random, person: Person) -> object:
    """Return the person's number written in one of the common shapes, verified."""
    shapes, weights = zip(*PHONE_SHAPES, strict=True)
    cell = rng.choices(shapes, weights)[0](person.mobile)
    verify_cell(cell, person)
    return cell


# --- applicants.xlsx --------------------------------------------------------

APPLICANT_COLUMNS = (
    "Applicant No.", "First Name", "Last Name", "Mobile No.", "Email",
    "Position Applied", "Branch", "Date Applied",
)  # fmt: skip
APPLICANTS = 200

# Phone cells that cannot be imported, each with the problem code check reports.
BAD_PHONES: tuple[tuple[object, str], ...] = (
    (None, "phone_missing"),
    (None, "phone_missing"),
    (None, "phone_missing"),
    ("   ", "phone_missing"),
    ("0917 123 45", "phone_invalid"),  # a digit short of a mobile: a possible, invalid number
    ("0918 55 123", "phone_invalid"),
    ("0917", "phone_too_short"),
    ("n/a", "phone_not_a_number"),
    ("none", "phone_not_a_number"),
    ("N/A", "phone_not_a_number"),
    ("6.39171E+11", "phone_scientific_notation"),
    ("6.39189E+11", "phone_scientific_notation"),
    ("0917 111 2222 / 0918 333 4444", "phone_several_numbers"),
    ("0927 555 1234, 0935 777 4321", "phone_several_numbers"),
)
DUPLICATES = 3
CLEAN_HEAD = 20
BLANK_ROWS_AFTER = (57, 131)  # data rows after which the tracker has an empty row


@dataclass(frozen=True)
class Application:
    """One row of the HR tracker."""

    number: str
    person: Person
    phone: object
    position: str
    branch: str
    applied: date

    def cells(self) -> list[object]:
        """Return the row's cells in column order."""
        return [
            self.number,
            self.person.first,
            self.person.last,
            self.phone,
            self.person.email,
            self.position,
            self.branch,
            self.applied,
        ]


def applications(rng: random.Random, people: People) -> list[Application]:
    """Return the tracker's rows in date order, problem rows planted at seeded places."""
    good = APPLICANTS - len(BAD_PHONES) - DUPLICATES
    slots = ["good"] * good + ["bad"] * len(BAD_PHONES) + ["duplicate"] * DUPLICATES
    # The first rows stay clean so that every duplicate has an earlier original.
    tail = slots[CLEAN_HEAD:]
    rng.shuffle(tail)
    slots[CLEAN_HEAD:] = tail
    # The first duplicate is a row pasted twice, the others people who applied again.
    originals = iter(rng.sample(range(CLEAN_HEAD), DUPLICATES))
    pasted_twice = True
    bad_phones = iter(BAD_PHONES)
    day = date(2024, 1, 8)
    rows: list[Application] = []
    for index, slot in enumerate(slots):
        day += timedelta(days=rng.choice((0, 0, 0, 1, 1)))
        number = f"2024-{index + 1:04d}"
        if slot == "duplicate":
            original = rows[next(originals)]
            rows.append(original if pasted_twice else _reapplied(original, number, day))
            pasted_twice = False
            continue
        person = _with_stray_spaces(rng, people.person())
        phone = next(bad_phones)[0] if slot == "bad" else phone_cell(rng, person)
        position, branch = rng.choice(POSITIONS), rng.choice(BRANCHES)
        rows.append(Application(number, person, phone, position, branch, day))
    return rows


def _reapplied(original: Application, number: str, day: date) -> Application:
    """Return the applicant again under a new applicant number, the phone typed another way."""
    mobile = original.person.mobile
    retyped = f"+63 {mobile[1:4]} {mobile[4:]}"
    verify_cell(retyped, original.person)
    return replace(original, number=number, phone=retyped, applied=day)


def _with_stray_spaces(rng: random.Random, person: Person) -> Person:
    """Return the person, sometimes with the trailing space a copied name brings along."""
    if rng.random() < 0.05:
        return replace(person, first=person.first + " ")
    if rng.random() < 0.03:
        return replace(person, last=person.last + "  ")
    return person


def write_applicants_xlsx(rng: random.Random, people: People) -> None:
    """Write applicants.xlsx: one sheet, "Applicants", with two empty rows in the middle."""
    rows = applications(rng, people)
    workbook = _fixed_workbook("Talent Acquisition")
    sheet = workbook.active
    assert isinstance(sheet, Worksheet)
    sheet.title = "Applicants"
    sheet.append(list(APPLICANT_COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, row in enumerate(rows, start=1):
        sheet.append(row.cells())
        sheet.cell(sheet.max_row, 8).number_format = "mm/dd/yyyy"
        if index in BLANK_ROWS_AFTER:
            sheet.append([None] * len(APPLICANT_COLUMNS))
    sheet.freeze_panes = "A2"
    for letter, width in zip("ABCDEFGH", (14, 14, 16, 18, 32, 32, 16, 13), strict=True):
        sheet.column_dimensions[letter].width = width
    _save_fixed(workbook, "applicants.xlsx")


# --- applicants.csv ---------------------------------------------------------

CSV_PEOPLE = (
    "José Rizal Peña", "Niño Santos", "María Cristina Añonuevo", "Dela Cruz, Juan",
    "Ma. Señora Ibáñez", "Renée Villanueva", "Jhun-Jhun Muñoz", "Rosario Castañeda",
    "Teodoro Niño", "O’Neil Baptista", "Zoë Magbanua", "Andrés Bonifacio Reyes",
    "Concepción Lim", "Peña, Ma. Lourdes", "Efraín Soriano", "Inés Manalo",
    "Ramón Dizon", "Lourdes Yáñez", "Joaquín Tan", "Nuñez, Rogelio", "Mónica Javier",
    "Ángel Pascual", "Sofía Mercado", "Raúl Domingo", "Begoña Ocampo", "Dolores Sy",
    "Félix Macaraeg", "Consuelo Aguilar", "Germán Valdez", "Belén Tolentino",
    "Agustín Cabrera", "Remedios Sarmiento", "Tomás Evangelista", "Asunción Yap",
    "Víctor Marquez", "Pilar Ignacio", "Héctor Garcia", "Fé Santiago",
    "Rubén Pangilinan",
)  # fmt: skip
CSV_CITIES = ("Cebu City", "Mandaue", "Lapu-Lapu", "Talisay", "Danao")
CSV_SHAPES: tuple[PhoneShape, ...] = (
    lambda n: f"{n[:4]}-{n[4:7]}-{n[7:]}",
    lambda n: f"+63{n[1:]}",
    lambda n: n,
    lambda n: f"63 {n[1:4]} {n[4:7]} {n[7:]}",
    lambda n: f"{n[:4]} {n[4:7]} {n[7:]}",
)
CSV_BAD = {7: "", 23: "0917-555-12"}  # person index -> phone cell: missing, too short
CSV_DUPLICATE_OF = 2  # the last row is this person again, number written differently


def write_applicants_csv(rng: random.Random, people: People) -> None:
    """Write applicants.csv: semicolons, cp1252, CRLF, one column with the whole name."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Name", "Cellphone", "E-mail", "City", "Registered"])
    day = date(2024, 2, 5)
    rows: list[list[str]] = []
    for index, name in enumerate(CSV_PEOPLE):
        first, last = _split_for_email(name)
        person = Person(first, last, people.mobile(), people.email(first, last))
        if index in CSV_BAD:
            phone = CSV_BAD[index]
        else:
            phone = str(CSV_SHAPES[index % len(CSV_SHAPES)](person.mobile))
            verify_cell(phone, person)
        day += timedelta(days=rng.choice((0, 1, 1, 2)))
        rows.append([name, phone, person.email, rng.choice(CSV_CITIES), f"{day:%d/%m/%Y}"])
    again = rows[CSV_DUPLICATE_OF]
    national = re.sub(r"\D", "", again[1])[-10:]
    retyped = f"+63 {national[:3]} {national[3:6]} {national[6:]}"
    rows.append([again[0], retyped, again[2], again[3], f"{day:%d/%m/%Y}"])
    writer.writerows(rows)
    (HERE / "applicants.csv").write_bytes(buffer.getvalue().encode("cp1252"))


def _split_for_email(name: str) -> tuple[str, str]:
    """Return a first and last name good enough to make an email address."""
    if "," in name:
        last, _, first = name.partition(",")
        return first.strip(), last.strip()
    first, _, last = name.rpartition(" ")
    return first, last


# --- engagespark_export.xlsx ------------------------------------------------

EXPORT_COLUMNS = (
    "ID", "First Name", "Last Name", "Full Phone Number", "Phone Number", "Dialing Code",
    "Email", "Language", "Created Date", "Groups",
)  # fmt: skip
EXPORT_CONTACTS = 30
FIRST_CONTACT_ID = 17620219
GROUPS: tuple[object, ...] = (4417, 4417, 4418, "4417, 4418", "4418, 4421", None)
LANGUAGES = ("en", "en", "en", "tl", "ceb", "")


def export_rows(rng: random.Random, people: People) -> Iterator[list[object]]:
    """Yield contacts as engageSPARK's contacts download lists them."""
    contact_id = FIRST_CONTACT_ID
    created = datetime(2023, 11, 6, 9, 12, 41)
    for _ in range(EXPORT_CONTACTS):
        person = people.person()
        international = int(person.international)
        yield [
            contact_id,
            person.first,
            person.last,
            international,
            int(person.mobile[1:]),
            63,
            person.email,
            rng.choice(LANGUAGES),
            f"{created:%Y-%m-%dT%H:%M:%S}+08:00",
            rng.choice(GROUPS),
        ]
        contact_id += rng.randrange(1, 40)
        created += timedelta(hours=rng.randrange(2, 90), seconds=rng.randrange(3600))


def write_engagespark_export(rng: random.Random, people: People) -> None:
    """Write engagespark_export.xlsx: numeric ids and numbers, the columns of the download."""
    workbook = _fixed_workbook("engageSPARK")
    sheet = workbook.active
    assert isinstance(sheet, Worksheet)
    sheet.title = "Contacts"
    sheet.append(list(EXPORT_COLUMNS))
    for row in export_rows(rng, people):
        sheet.append(row)
    _save_fixed(workbook, "engagespark_export.xlsx")


# --- reproducible zip files -------------------------------------------------


def _fixed_workbook(creator: str) -> openpyxl.Workbook:
    """Return an empty workbook whose document properties carry a fixed time."""
    workbook = openpyxl.Workbook()
    workbook.properties.creator = creator
    workbook.properties.created = FIXED_DATETIME
    workbook.properties.modified = FIXED_DATETIME
    return workbook


def _save_fixed(workbook: openpyxl.Workbook, name: str) -> None:
    """Save a workbook whose zip members and save time are fixed, so reruns change no bytes."""
    buffer = io.BytesIO()
    workbook.save(buffer)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for member in source.infolist():
            info = zipfile.ZipInfo(member.filename, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, _fixed_modified(member.filename, source.read(member)))
    (HERE / name).write_bytes(out.getvalue())


def _fixed_modified(name: str, payload: bytes) -> bytes:
    """Return the member with openpyxl's save-time "modified" stamp replaced by the fixed one."""
    if name != "docProps/core.xml":
        return payload
    return re.sub(
        rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
        rb"\g<1>" + f"{FIXED_DATETIME:%Y-%m-%dT%H:%M:%S}Z".encode() + rb"\g<2>",
        payload,
    )


def main() -> None:
    """Write every sample file."""
    rng = random.Random(SEED)
    people = People(rng)
    write_applicants_xlsx(rng, people)
    write_applicants_csv(rng, people)
    write_engagespark_export(rng, people)


if __name__ == "__main__":
    main()
