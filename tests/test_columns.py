from __future__ import annotations

import pytest

from bulkimport.contacts import Field
from bulkimport.errors import InputError
from bulkimport.rows.columns import map_columns, parse_map


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Mobile No.", Field.PHONE),
        ("MOBILE NUMBER", Field.PHONE),
        ("cell_phone", Field.PHONE),
        ("Contact Number", Field.PHONE),
        ("MSISDN", Field.PHONE),
        ("WhatsApp", Field.PHONE),
        ("fullPhoneNumber", Field.PHONE),
        ("Given Name", Field.FIRST_NAME),
        ("Surname", Field.LAST_NAME),
        ("Family name", Field.LAST_NAME),
        ("E-mail", Field.EMAIL),
        ("Language", Field.LANGUAGE),
        ("Group IDs", Field.GROUPS),
        ("organizationId", Field.ORGANIZATION),
        ("Contact ID", Field.CONTACT_ID),
    ],
)
def test_synonyms_are_matched_ignoring_case_space_and_punctuation(
    header: str, field: Field
) -> None:
    mapping = map_columns(["Phone" if field is not Field.PHONE else "Notes", header])
    assert mapping.fields[field] == 1


def test_full_phone_number_beats_the_national_phone_column_of_an_export() -> None:
    mapping = map_columns(["ID", "First Name", "Full Phone Number", "Phone Number", "Dialing Code"])
    assert mapping.fields[Field.PHONE] == 2
    assert mapping.fields[Field.CONTACT_ID] == 0
    assert mapping.ignored == ("Phone Number", "Dialing Code")


def test_a_bare_id_in_an_hr_tracker_is_not_taken_for_a_contact_id() -> None:
    mapping = map_columns(["ID", "Name", "Mobile"])
    assert Field.CONTACT_ID not in mapping.fields
    assert mapping.fields[Field.FULL_NAME] == 1
    assert mapping.ignored == ("ID",)


def test_two_phone_columns_of_one_tier_are_a_conflict_naming_both() -> None:
    with pytest.raises(InputError, match=r"'Phone' and 'Mobile'.*--map"):
        map_columns(["Phone", "Mobile"])


def test_map_override_settles_a_conflict_and_leaves_the_other_ignored() -> None:
    mapping = map_columns(["Phone", "Mobile"], [parse_map("Mobile=fullPhoneNumber")])
    assert mapping.fields[Field.PHONE] == 1
    assert mapping.ignored == ("Phone",)


def test_no_phone_column_lists_the_headers_and_the_fix() -> None:
    with pytest.raises(InputError) as caught:
        map_columns(["Name", "Notes"])
    message = str(caught.value)
    assert "'Name', 'Notes'" in message
    assert '--map "Mobile No.=fullPhoneNumber"' in message


def test_custom_fields_and_ignore_through_map() -> None:
    mapping = map_columns(
        ["Name", "Tel", "Position Applied", "Email"],
        [
            parse_map("Tel=phone"),
            parse_map("Position Applied=custom:Position"),
            parse_map("email=ignore"),
        ],
    )
    assert mapping.fields[Field.PHONE] == 1
    assert mapping.custom == {"Position": 2}
    assert Field.EMAIL not in mapping.fields
    assert mapping.describe() == [
        ("Name", "fullName"),
        ("Tel", "fullPhoneNumber"),
        ("Position Applied", "custom:Position"),
    ]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("Phone", "not of the form"),
        ("Phone=shoe size", "unknown field 'shoe size'"),
        ("Phone=custom:", "names no custom field"),
    ],
)
def test_bad_map_options_say_what_to_write(option: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_map(option)


def test_map_naming_a_missing_header_lists_the_real_ones() -> None:
    with pytest.raises(InputError, match=r"'Mobile No\.' that is not in the header"):
        map_columns(["Phone"], [parse_map("Mobile No.=phone")])


def test_header_with_equals_sign_maps_on_the_last_one() -> None:
    override = parse_map("a=b=phone")
    assert override.header == "a=b"
    assert override.field is Field.PHONE
