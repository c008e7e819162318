"""A title row above the header: the header is found (or chosen), row numbers stay the sheet's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulkimport.cli import main
from bulkimport.errors import InputError
from bulkimport.rows.phones import PhonePolicy
from bulkimport.rows.prepare import ImportOptions, open_sources
from bulkimport.sandbox import Sandbox
from bulkimport.settings import SettingError, check_header_row
from tests.conftest import DATA, write_csv

TITLE_ROW = DATA / "txt_title_row.csv"


def check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_the_header_below_a_title_and_a_blank_row_is_found_in_row_3() -> None:
    with open_sources([TITLE_ROW], ImportOptions()) as sources:
        (source,) = sources
        rows = [(row.row, row.cells) for row in source.table.rows]
    assert source.table.header_row == 3
    assert source.table.header == ("Name", "Mobile", "Position")
    assert source.mapping.describe() == [("Name", "fullName"), ("Mobile", "fullPhoneNumber")]
    assert rows == [
        (4, ("Juan Dela Cruz", "09171234567", "Driver")),
        (5, ("Maria Santos", "0918 123 456", "Clerk")),
        (6, ("Pedro Reyes", "09191234567", "Cook")),
    ]


def test_check_says_where_the_header_was_found_and_keeps_the_row_numbers() -> None:
    code, output = check(str(TITLE_ROW), "--country", "PH")
    assert code == 1
    assert f"{TITLE_ROW}: encoding utf-8, delimiter ',', header found in row 3\n" in output
    assert "columns used: Name → fullName, Mobile → fullPhoneNumber" in output
    assert "Rows read 3 · valid 2 · invalid 1 · duplicate 0" in output
    assert f"{TITLE_ROW} row 5: " in output
    summary = json.loads(check(str(TITLE_ROW), "--country", "PH", "--json")[1])
    assert summary["sources"][0]["header_row"] == 3
    assert summary["first_problems"][0]["row"] == 5


def test_a_header_in_row_1_is_not_announced(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "plain.csv", "Name,Mobile", "Juan,09171234567")
    code, output = check(str(path), "--country", "PH", "--json")
    assert code == 0
    assert json.loads(output)["sources"][0]["header_row"] == 1
    assert "header found" not in check(str(path), "--country", "PH")[1]


def test_header_row_chooses_the_header() -> None:
    code, output = check(str(TITLE_ROW), "--country", "PH", "--header-row", "3", "--json")
    assert code == 1
    assert json.loads(output)["sources"][0]["header_row"] == 3
    options = ImportOptions(phones=PhonePolicy(country="PH"), header_row=3)
    with open_sources([TITLE_ROW], options) as sources:
        assert [row.row for row in sources[0].table.rows] == [4, 5, 6]


def test_header_row_1_takes_the_title_and_is_refused_as_today() -> None:
    code, output = check(str(TITLE_ROW), "--header-row", "1")
    assert code == 2
    assert (
        f"Error: {TITLE_ROW}: No phone or contact id column found among the headers "
        "'Applicants export 2026-11-30': name it with --map"
    ) in output


def test_a_blank_or_missing_header_row_is_refused() -> None:
    for number in (2, 40):
        options = ImportOptions(header_row=number)
        with pytest.raises(InputError) as refused, open_sources([TITLE_ROW], options):
            pass
        assert str(refused.value) == (
            f"{TITLE_ROW}: the header row {number} is blank or past the last row: give the row "
            "that holds the column names (the first non-blank row is 1)."
        )


def test_a_header_row_with_nothing_below_it_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", "Applicants export,", "Name,Mobile")
    with pytest.raises(InputError) as refused, open_sources([path], ImportOptions()):
        pass
    assert str(refused.value) == (
        f"{path}: the header (row 2) has no data rows below it: add the people below it."
    )


@pytest.mark.parametrize("value", ["0", "x", "1048577"])
def test_header_row_must_be_a_row_number(value: str) -> None:
    code, output = check(str(TITLE_ROW), "--header-row", value)
    assert code == 2
    assert "--header-row" in output


def test_the_validator_names_the_setting() -> None:
    assert check_header_row(None) is None
    assert check_header_row(3) == 3
    with pytest.raises(SettingError) as refused:
        check_header_row(0, "--header-row")
    assert str(refused.value) == "--header-row must be a whole number from 1 to 1048576, not 0."
    with pytest.raises(SettingError):
        check_header_row(True)


def test_a_data_row_is_never_taken_for_the_header(tmp_path: Path) -> None:
    # Row 1 names no phone column; row 2 has a cell "Mobile" but is as wide as row 1.
    path = write_csv(tmp_path / "types.csv", "Name,Number,Type", "Juan,09171234567,Mobile")
    code, output = check(str(path))
    assert code == 2
    assert "No phone or contact id column found among the headers 'Name', 'Number', 'Type'" in (
        output
    )


@pytest.mark.usefixtures("api_env")
def test_a_run_reads_the_rows_below_the_found_header(tmp_path: Path, sandbox: Sandbox) -> None:
    ledger = tmp_path / "l.sqlite"
    result = CliRunner().invoke(
        main,
        [
            "run", str(TITLE_ROW), "--engagement", "1234", "--country", "PH",
            "--api-url", sandbox.url, "--ledger", str(ledger), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rows"] == {"subscribed": 2, "invalid": 1}
    assert len(sandbox.subscriptions(1234)) == 2


def test_the_nightly_key_header_row_chooses_the_header(tmp_path: Path) -> None:
    from bulkimport.jobs.config import ConfigError, load_config

    config = tmp_path / "import.toml"
    config.write_text('engagement = 1234\ninputs = ["*.csv"]\nheader_row = 3\n', encoding="utf-8")
    assert load_config(config).import_options().header_row == 3
    config.write_text('engagement = 1234\ninputs = ["*.csv"]\nheader_row = 0\n', encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    assert str(refused.value) == (
        'import.toml line 3: "header_row" must be a whole number from 1 to 1048576, '
        "not 0; fix the value."
    )
