from __future__ import annotations

import json

import openpyxl
import pytest
from click.testing import CliRunner

from bulkimport.cli import main
from bulkimport.contacts import Field
from bulkimport.errors import InputError
from bulkimport.rows.columns import map_columns, parse_map
from tests.conftest import DATA, SAMPLES


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


def test_a_bare_id_in_a_file_without_phones_is_not_a_contact_id() -> None:
    with pytest.raises(InputError) as caught:
        map_columns(["id", "name", "age"])
    message = str(caught.value)
    assert "No phone or contact id column found among the headers 'id', 'name', 'age'" in message
    assert "not an engageSPARK contacts export" in message
    assert 'pass --map "id=id"' in message


def test_a_bare_id_the_user_maps_is_the_contact_id() -> None:
    mapping = map_columns(["id", "name", "age"], [parse_map("id=id")])
    assert mapping.fields[Field.CONTACT_ID] == 0
    assert mapping.ignored == ("age",)


def test_a_bare_id_in_an_export_without_its_phone_columns_is_the_contact_id() -> None:
    header = ["ID", "First Name", "Last Name", "Dialing Code", "Created Date", "Groups"]
    assert map_columns(header).fields[Field.CONTACT_ID] == 0


def test_the_sample_engagespark_export_still_reads_its_id_as_the_contact_id() -> None:
    sheet = openpyxl.load_workbook(SAMPLES / "engagespark_export.xlsx", read_only=True).active
    assert sheet is not None
    header = [str(cell) for cell in next(sheet.iter_rows(max_row=1, values_only=True))]
    mapping = map_columns(header)
    assert header[mapping.fields[Field.CONTACT_ID]] == "ID"
    assert header[mapping.fields[Field.PHONE]] == "Full Phone Number"


def test_check_refuses_an_hr_export_with_a_bare_id_and_names_the_map() -> None:
    result = CliRunner().invoke(main, ["check", str(DATA / "col_hr_ids.csv")])
    assert result.exit_code == 2, result.output
    assert "not an engageSPARK contacts export" in result.output
    assert 'pass --map "id=id"' in result.output


def test_check_takes_a_bare_id_the_user_maps() -> None:
    result = CliRunner().invoke(
        main, ["check", str(DATA / "col_hr_ids.csv"), "--map", "id=id", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["valid"] == 2


def test_map_names_a_blank_header_as_column_n_counted_from_1() -> None:
    mapping = map_columns(["Name", "", "Notes"], [parse_map("column 2=fullPhoneNumber")])
    assert mapping.fields[Field.PHONE] == 1
    assert mapping.describe() == [("Name", "fullName"), ("column 2", "fullPhoneNumber")]


def test_a_header_really_called_column_n_is_matched_by_name() -> None:
    mapping = map_columns(["column 3", "Name", "Notes"], [parse_map("Column 3=phone")])
    assert mapping.fields[Field.PHONE] == 0


def test_messages_name_blank_headers_as_column_n() -> None:
    with pytest.raises(InputError) as caught:
        map_columns(["Name", "", "Notes", ""])
    assert "among the headers 'Name', column 2, 'Notes':" in str(caught.value)
    with pytest.raises(InputError, match=r"not in the header \('Name', column 2, 'Notes'\)"):
        map_columns(["Name", "", "Notes"], [parse_map("column 7=phone")])


def test_check_maps_a_blank_header_column_by_its_number() -> None:
    path = str(DATA / "col_blank_header.csv")
    args = ["check", path, "--country", "PH", "--map", "column 2=fullPhoneNumber"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "columns used: Name → fullName, column 2 → fullPhoneNumber" in result.output
    assert "valid 1 · invalid 0" in result.output
