"""RapidPro's contact export: URN columns are phones, Field: columns custom fields when mapped."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bulkimport.cli import main
from bulkimport.contacts import Contact, Field, SourceRow
from bulkimport.errors import InputError
from bulkimport.rows.columns import map_columns, parse_map
from bulkimport.rows.normalize import RowNormalizer
from bulkimport.rows.phones import PhoneNormalizer, PhonePolicy
from tests.conftest import DATA

EXPORT = DATA / "col_rapidpro_contacts.csv"
HEADER = ["Contact UUID", "Name", "Language", "Created On", "URN:Tel", "Field:district"]


def test_urn_tel_is_the_phone_and_name_the_full_name() -> None:
    mapping = map_columns(HEADER)
    assert mapping.fields[Field.PHONE] == 4
    assert mapping.fields[Field.FULL_NAME] == 1
    assert mapping.ignored == ("Contact UUID", "Created On", "Field:district")


def test_urn_whatsapp_is_a_phone_column() -> None:
    assert map_columns(["Name", "URN:WhatsApp"]).fields[Field.PHONE] == 1


def test_a_field_column_is_a_custom_field_by_name_when_mapped() -> None:
    mapping = map_columns(HEADER, [parse_map("Field:district=custom:district")])
    assert mapping.custom == {"district": 5}
    assert ("Field:district", "custom:district") in mapping.describe()


def test_repeated_urn_tel_columns_are_a_conflict_told_apart_by_position() -> None:
    with pytest.raises(InputError) as caught:
        map_columns(["Name", "URN:Tel", "URN:Tel", "URN:Tel"])
    assert str(caught.value) == (
        "Columns 'URN:Tel' (column 2), 'URN:Tel' (column 3) and 'URN:Tel' (column 4) "
        'could all be fullPhoneNumber: choose one with --map "column 2=fullPhoneNumber" '
        "(the others are then ignored)."
    )


def test_urn_tel_and_urn_whatsapp_are_a_conflict_like_phone_and_mobile() -> None:
    with pytest.raises(InputError, match=r"'URN:Tel' and 'URN:WhatsApp' could both be"):
        map_columns(["Name", "URN:Tel", "URN:WhatsApp"])


@pytest.mark.parametrize(("option", "column"), [("URN:Tel", 1), ("column 3", 2)])
def test_map_chooses_one_of_the_repeated_urn_tel_columns(option: str, column: int) -> None:
    mapping = map_columns(["Name", "URN:Tel", "URN:Tel"], [parse_map(f"{option}=phone")])
    assert mapping.fields[Field.PHONE] == column
    assert mapping.ignored == ("URN:Tel",)


@pytest.mark.parametrize(
    "cell", ["tel:+250788123123", "TEL:+250 788 123 123", "tel:0788123123", "whatsapp:250788123123"]
)
def test_a_urn_scheme_in_the_phone_cell_is_dropped(cell: str) -> None:
    mapping = map_columns(["Name", "URN:Tel"])
    normalizer = RowNormalizer(mapping, PhoneNormalizer(PhonePolicy(country="RW")))
    contact = normalizer.normalize(SourceRow("a.csv", "", 2, ("Eric", cell)))
    assert isinstance(contact, Contact)
    assert contact.phone == "250788123123"


def check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", str(EXPORT), "--country", "RW", *args])
    return result.exit_code, result.output


def test_check_refuses_two_urn_tel_columns_and_says_how_to_choose() -> None:
    code, output = check()
    assert code == 2, output
    assert "'URN:Tel' (column 5) and 'URN:Tel' (column 6) could both be fullPhoneNumber" in output
    assert '--map "column 5=fullPhoneNumber"' in output


def test_check_reads_a_rapidpro_export_with_its_numbers_and_fields() -> None:
    code, output = check(
        "--map", "URN:Tel=fullPhoneNumber", "--map", "Field:district=custom:district", "--json"
    )
    assert code == 0, output
    summary = json.loads(output)
    assert summary["valid"] == 2
    assert summary["sources"][0]["columns"] == {
        "Name": "fullName",
        "Language": "language",
        "URN:Tel": "fullPhoneNumber",
        "Field:district": "custom:district",
    }
    assert summary["sources"][0]["ignored"] == ["Contact UUID", "Created On", "URN:Tel"]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("tel:+639171234567", "639171234567"), ("Tel:0917 123 4567", "639171234567")],
)
def test_the_phone_normalizer_drops_a_tel_scheme(cell: str, expected: str) -> None:
    assert PhoneNormalizer(PhonePolicy(country="PH")).normalize(cell) == expected
