from __future__ import annotations

import pytest

from bulkimport.contacts import Contact, Problem, Rejected, SourceRow
from bulkimport.rows.chunks import batched
from bulkimport.rows.columns import map_columns, parse_map
from bulkimport.rows.duplicates import Deduper
from bulkimport.rows.normalize import ContactDefaults, RowNormalizer, split_full_name
from bulkimport.rows.phones import PhoneNormalizer, PhonePolicy

HEADER = ["First Name", "Last Name", "Mobile", "Email", "Groups", "Contact ID", "Branch"]


def normalizer(**defaults: object) -> RowNormalizer:
    mapping = map_columns(HEADER, [parse_map("Branch=custom:7")])
    return RowNormalizer(
        mapping,
        PhoneNormalizer(PhonePolicy(country="PH")),
        defaults=ContactDefaults(**defaults),  # type: ignore[arg-type]
    )


def row(*cells: str, number: int = 2) -> SourceRow:
    return SourceRow("a.csv", "", number, tuple(cells))


def test_a_full_row_becomes_the_payload_the_api_takes() -> None:
    result = normalizer(groups=(9,)).normalize(
        row(" Juan ", "Dela Cruz", "0917 123 4567", "juan@example.com", "321; 322", "", "Makati")
    )
    assert isinstance(result, Contact)
    assert result.payload() == {
        "fullPhoneNumber": "639171234567",
        "firstName": "Juan",
        "lastName": "Dela Cruz",
        "email": "juan@example.com",
        "groups": [321, 322, 9],
        "customFields": {"7": "Makati"},
    }


def test_a_contact_id_row_is_sent_as_an_existing_contact_even_without_a_phone() -> None:
    result = normalizer().normalize(row("Ana", "", "", "", "", "17569341", ""))
    assert isinstance(result, Contact)
    assert result.payload() == {"id": 17569341}
    assert result.identity == "id:17569341"


def test_short_rows_are_padded_with_empty_cells() -> None:
    result = normalizer().normalize(row("Ana", "Reyes", "09171234567"))
    assert isinstance(result, Contact)
    assert result.phone == "639171234567"


@pytest.mark.parametrize(
    ("cells", "code"),
    [
        (("A", "B", "", "", "", "", ""), Problem.PHONE_MISSING),
        (("A", "B", "0917 123 4567", "not-an-email", "", "", ""), Problem.EMAIL_INVALID),
        (("A", "B", "0917 123 4567", "nino@", "", "", ""), Problem.EMAIL_INVALID),
        (("A", "B", "0917 123 4567", "a b@x.ph", "", "", ""), Problem.EMAIL_INVALID),
        (("A", "B", "0917 123 4567", "", "VIP", "", ""), Problem.GROUP_INVALID),
        (("A", "B", "", "", "", "abc", ""), Problem.CONTACT_ID_INVALID),
        (("A" * 300, "B", "0917 123 4567", "", "", "", ""), Problem.CELL_TOO_LONG),
    ],
)
def test_problems_are_reported_with_a_stable_code(cells: tuple[str, ...], code: Problem) -> None:
    result = normalizer().normalize(row(*cells))
    assert isinstance(result, Rejected)
    assert result.code is code
    assert result.message.endswith(".")


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        ("Juan Dela Cruz", ("Juan Dela", "Cruz")),
        ("Dela Cruz, Juan", ("Juan", "Dela Cruz")),
        ("Madonna", ("Madonna", "")),
        ("  José   Rizal ", ("José", "Rizal")),
    ],
)
def test_full_name_split(full: str, expected: tuple[str, str]) -> None:
    assert split_full_name(full) == expected


def test_deduper_names_the_first_row_and_its_file() -> None:
    deduper = Deduper()
    contact = Contact(phone="639171234567")
    assert deduper.duplicate_of(contact, SourceRow("a.csv", "", 2, ())) is None
    assert deduper.duplicate_of(contact, SourceRow("a.csv", "", 9, ())) == "same number as row 2"
    assert (
        deduper.duplicate_of(contact, SourceRow("b.csv", "", 3, ()))
        == "same number as row 2 of a.csv"
    )


def test_batched_keeps_order_and_sizes() -> None:
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(ValueError, match="at least 1"):
        list(batched([1], 0))


def test_deduper_finds_people_after_they_moved_into_the_sorted_arrays() -> None:
    deduper = Deduper()
    deduper.MERGE_AT = 4  # type: ignore[misc]
    people = [Contact(phone=f"6391712345{n:02d}") for n in range(10)]
    for number, person in enumerate(people, start=2):
        assert deduper.duplicate_of(person, SourceRow("a.csv", "", number, ())) is None
    assert deduper._keys.size == 8  # two merges happened
    assert deduper.duplicate_of(people[0], SourceRow("b.csv", "", 5, ())) == (
        "same number as row 2 of a.csv"
    )
    assert (
        deduper.duplicate_of(people[9], SourceRow("a.csv", "", 30, ())) == "same number as row 11"
    )
    existing = Contact(contact_id=17569341)
    assert deduper.duplicate_of(existing, SourceRow("a.csv", "", 31, ())) is None
    assert deduper.duplicate_of(existing, SourceRow("a.csv", "", 32, ())) == (
        "same contact id as row 31"
    )
