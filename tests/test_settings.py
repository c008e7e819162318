"""Every default, limit and validator has one owner, settings.py, which each face reads."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulkimport import settings
from bulkimport.cli import main
from bulkimport.errors import InputError
from bulkimport.jobs.config import NightlyConfig, load_config
from bulkimport.read.sources import ReadOptions, open_source
from bulkimport.settings import (
    DEFAULT_API_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT,
    SendSettings,
    SettingError,
    check_batch_size,
    check_delimiter,
    check_encoding,
    check_timeout,
)

HEAVY = ("requests", "pandas", "openpyxl", "rich", "click", "python_calamine", "phonenumbers")


def test_settings_imports_nothing_heavy() -> None:
    probe = (
        "import sys, bulkimport.settings; "
        f"print(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""


@pytest.mark.parametrize(
    ("given", "character"),
    [("semicolon", ";"), ("SEMICOLON", ";"), ("comma", ","), ("pipe", "|"), ("tab", "\t"),
     ("\\t", "\t"), (";", ";"), (None, None)],
)  # fmt: skip
def test_delimiter_names_stand_for_their_character(given: str | None, character: str) -> None:
    assert check_delimiter(given) == character


def test_validators_name_what_they_are_given() -> None:
    with pytest.raises(SettingError) as delimiter:
        check_delimiter(";;", "--delimiter")
    assert str(delimiter.value) == (
        "Delimiter ';;' for --delimiter is not one character: use one such as , ; | or tab."
    )
    with pytest.raises(SettingError) as encoding:
        check_encoding("klingon", '"encoding"')
    assert str(encoding.value).startswith("""Unknown encoding 'klingon' for "encoding": """)
    with pytest.raises(SettingError) as batch:
        check_batch_size(0, "--batch-size")
    assert str(batch.value) == "--batch-size must be a whole number from 1 to 1000, not 0."
    assert batch.value.must_be == "a whole number from 1 to 1000"


@pytest.mark.parametrize("value", [True, 1.0, "10", 0, 1001])
def test_a_batch_size_is_a_whole_number_in_range(value: object) -> None:
    with pytest.raises(SettingError):
        check_batch_size(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0.5, 601, False, "30"])
def test_a_timeout_is_a_finite_number_of_seconds_in_range(value: object) -> None:
    with pytest.raises(SettingError):
        check_timeout(value)


def test_send_settings_refuse_with_their_python_names_not_cli_flags() -> None:
    with pytest.raises(InputError) as batch:
        SendSettings(1234, batch_size=0)
    assert str(batch.value) == "batch_size must be a whole number from 1 to 1000, not 0."
    with pytest.raises(InputError) as concurrency:
        SendSettings(1234, concurrency=33)
    assert str(concurrency.value).startswith("concurrency must be a whole number from 1 to 32")
    with pytest.raises(InputError) as timeout:
        SendSettings(1234, timeout=float("nan"))
    assert str(timeout.value).startswith("timeout must be a number of seconds from ")
    with pytest.raises(InputError) as url:
        SendSettings(1234, api_url="ftp://example.org")
    assert "for api_url is not an http(s) address" in str(url.value)
    for error in (batch, concurrency, timeout, url):
        assert "--" not in str(error.value)


def test_send_settings_defaults_are_the_settings_defaults() -> None:
    sent = SendSettings(1234)
    assert (sent.api_url, sent.batch_size, sent.concurrency, sent.timeout) == (
        DEFAULT_API_URL,
        DEFAULT_BATCH_SIZE,
        DEFAULT_CONCURRENCY,
        DEFAULT_TIMEOUT,
    )
    assert sent.reuse is settings.DEFAULT_REUSE


def test_the_nightly_config_defaults_are_the_settings_defaults(tmp_path: Path) -> None:
    path = tmp_path / "import.toml"
    path.write_text('engagement = 1234\ninputs = "inbox/*.csv"\n', encoding="utf-8")
    config = load_config(path)
    assert config.send_settings() == SendSettings(1234)
    assert config.ledger == tmp_path.resolve() / settings.DEFAULT_LEDGER
    assert config.api_key_env == settings.API_KEY_ENV
    assert config.settle_seconds == settings.DEFAULT_SETTLE_SECONDS
    fields = {f.name: f.default for f in dataclasses.fields(NightlyConfig)}
    assert fields["batch_size"] == DEFAULT_BATCH_SIZE
    assert fields["timeout"] == DEFAULT_TIMEOUT


def test_the_cli_help_shows_the_settings_defaults() -> None:
    result = CliRunner().invoke(main, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert f"--batch-size 1-1000 Contacts per request ({DEFAULT_BATCH_SIZE})." in text
    assert f"--concurrency 1-32 Requests in flight at once ({DEFAULT_CONCURRENCY})." in text
    assert f"--timeout 1-600 Seconds to wait for an answer ({DEFAULT_TIMEOUT:g})." in text
    assert f"(default {DEFAULT_API_URL};" in text
    assert f"[default: {settings.DEFAULT_LEDGER}]" in text


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--batch-size", "0"), "--batch-size must be a whole number from 1 to 1000, not 0."),
        (("--concurrency", "33"), "--concurrency must be a whole number from 1 to 32, not 33."),
        (("--timeout", "nan"), "--timeout must be a number of seconds from 1 to 600, not nan."),
        (("--delimiter", ";;"), "Error: Delimiter ';;' for --delimiter is not one character"),
        (("--encoding", "klingon"), "Error: Unknown encoding 'klingon' for --encoding"),
        (("--api-url", "ftp://x"), "Error: The API URL 'ftp://x' for --api-url is not an http(s)"),
    ],
)  # fmt: skip
def test_the_cli_refuses_with_the_flag_before_reading_anything(
    tmp_path: Path, option: tuple[str, str], message: str
) -> None:
    result = CliRunner().invoke(
        main,
        ["run", str(tmp_path / "missing.csv"), "--engagement", "1", *option],
        env={"ENGAGESPARK_API_KEY": "k"},
    )
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_check_reads_a_delimiter_given_by_name(tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text("Name;Mobile\nAna, Uy;+63 917 123 4570\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(people), "--delimiter", "semicolon"])
    assert result.exit_code == 0, result.output


def test_the_library_face_reads_a_delimiter_given_by_name(tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text("Name|Mobile\nAna, Uy|+63 917 123 4570\n", encoding="utf-8")
    with open_source(people, ReadOptions(delimiter="pipe")) as table:
        assert table.header == ("Name", "Mobile")
        assert [row.cells for row in table.rows] == [("Ana, Uy", "+63 917 123 4570")]
