"""The library face: read_table, check, subscribe, results and status from Python."""

from __future__ import annotations

import csv
import functools
import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import bulkimport
from bulkimport.cli import main
from bulkimport.jobs import sending
from bulkimport.jobs.sending import Sender
from bulkimport.ledger.lock import LedgerLock
from bulkimport.sandbox import SANDBOX_TOKEN, Faults, Sandbox
from bulkimport.send.retry import RetryPolicy
from tests.conftest import SAMPLES, write_csv

APPLICANTS = SAMPLES / "applicants.xlsx"


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def cli_error(*args: str) -> str:
    """Return the message of the one-line error a command ends with."""
    code, output = cli(*args)
    assert code != 0, output
    (line,) = [line for line in output.splitlines() if line.startswith("Error: ")]
    return line.removeprefix("Error: ")


def people() -> pd.DataFrame:
    """A frame as a notebook makes it: numbers, NaN, None and dates among the cells."""
    return pd.DataFrame(
        {
            "Name": ["Ana Reyes", "Ben Cruz", None, "Cy Lim"],
            "Mobile": [9171234567, 9181234567.0, float("nan"), "0919 123 4567"],
            "Applied": [date(2024, 1, 31), pd.NaT, datetime(2024, 2, 1, 9, 30), None],
        },
        index=pd.Index(["a", "b", "c", "d"], name="applicant"),
    )


# --- read_table -----------------------------------------------------------------------------


def test_read_table_gives_every_cell_as_text_indexed_by_spreadsheet_row() -> None:
    frame = bulkimport.read_table(APPLICANTS)
    assert frame.index.name == "row"
    assert frame.index[:3].tolist() == [2, 3, 4]
    assert list(frame.columns)[:4] == ["Applicant No.", "First Name", "Last Name", "Mobile No."]
    assert frame.loc[2, "Mobile No."] == "9160282260"  # a number cell, as its digits
    assert frame.loc[3, "Mobile No."] == "09260020404"  # a text cell keeps its leading zero
    assert frame.loc[2, "Date Applied"] == "2024-01-08"
    assert all(isinstance(cell, str) for cell in frame.to_numpy().ravel())


def test_read_table_finds_the_header_below_a_title_and_keeps_a_repeated_name(
    tmp_path: Path,
) -> None:
    path = write_csv(
        tmp_path / "staff.csv",
        "Staff list,,,",
        ",,,",
        "Name,Phone,Note,Note,",
        "Ana,+639171234567,first,second,",
        ",,,,",
        "Ben,09181234567,,,beyond",
    )
    frame = bulkimport.read_table(path)
    assert list(frame.columns) == ["Name", "Phone", "Note", "Note (again)", "column 5"]
    assert frame.index.tolist() == [4, 6]  # the blank row 5 is left out but counted
    assert frame.loc[4].tolist() == ["Ana", "+639171234567", "first", "second", ""]
    assert frame.loc[6, "column 5"] == "beyond"
    assert frame.attrs["bulkimport.header"] == ["Name", "Phone", "Note", "Note", ""]


def test_read_table_reads_a_file_that_names_no_phone_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cities.csv", "City,Region", "Cebu,VII", "Davao,XI")
    frame = bulkimport.read_table(path)
    assert frame.to_dict("index") == {
        2: {"City": "Cebu", "Region": "VII"},
        3: {"City": "Davao", "Region": "XI"},
    }


# --- check ----------------------------------------------------------------------------------


def test_check_of_a_sample_file_agrees_with_the_check_command() -> None:
    checked = bulkimport.check(APPLICANTS, country="PH")
    code, output = cli("check", str(APPLICANTS), "--country", "PH", "--json")
    summary = json.loads(output)
    assert code == 1
    assert checked["status"].value_counts().to_dict() == {
        verdict: summary[verdict]
        for verdict in ("valid", "invalid", "duplicate")
        if summary[verdict]
    }
    problems = checked.loc[checked["status"] != "valid", "problem"].value_counts().to_dict()
    assert problems == summary["problems"]
    first = summary["first_problems"][0]
    assert checked.loc[first["row"], "reason"] == first["message"]
    assert list(checked.columns)[:5] == ["status", "phone", "reason", "problem", "Applicant No."]
    assert checked.loc[2, "phone"] == "639160282260"
    assert checked.index.name == "row"


def test_check_of_a_frame_reads_numbers_nan_and_dates_as_text_and_keeps_its_index() -> None:
    frame = people()
    checked = bulkimport.check(frame, country="PH")
    assert checked.index.tolist() == ["a", "b", "c", "d"]
    assert checked.index.name == "applicant"
    assert checked["status"].tolist() == ["valid", "valid", "invalid", "valid"]
    assert checked["phone"].tolist() == ["639171234567", "639181234567", "", "639191234567"]
    assert checked.loc["c", "problem"] == "phone_missing"
    # The frame's own columns come back as they were given, beside the verdicts.
    assert checked.loc["a", "Mobile"] == 9171234567
    pd.testing.assert_series_equal(checked["Applied"], frame["Applied"])


def test_a_frame_column_named_like_a_result_column_is_kept_as_again() -> None:
    frame = pd.DataFrame({"phone": ["09171234567"], "status": ["new"]})
    checked = bulkimport.check(frame, country="PH")
    assert list(checked.columns) == [
        "status", "phone", "reason", "problem", "phone (again)", "status (again)",
    ]  # fmt: skip
    assert checked.iloc[0].tolist() == ["valid", "639171234567", "", "", "09171234567", "new"]
    numbered = bulkimport.check(pd.DataFrame({0: ["x"], "Mobile": ["+639171234567"]}))
    assert list(numbered.columns)[4:] == [0, "Mobile"]  # labels that do not clash stay as given


def test_a_frame_read_from_a_file_checks_like_the_file() -> None:
    frame = bulkimport.read_table(APPLICANTS)
    from_file = bulkimport.check(APPLICANTS, country="PH")
    from_frame = bulkimport.check(frame.loc[10:30], country="PH")
    pd.testing.assert_frame_equal(from_frame, from_file.loc[10:30], check_like=False)


def test_a_cell_that_is_not_text_a_number_or_a_date_is_refused_naming_its_column() -> None:
    frame = pd.DataFrame({"Mobile": ["09171234567", "09181234567"], "Tags": ["a", ["b", "c"]]})
    with pytest.raises(bulkimport.InputError, match=r"Column 'Tags' .* holds a list at index 1"):
        bulkimport.check(frame, country="PH")


def test_options_that_say_how_to_read_a_file_are_refused_for_a_frame() -> None:
    with pytest.raises(bulkimport.InputError, match="sheet, header_row say how to read a file"):
        bulkimport.check(people(), sheet="People", header_row=3)


def test_check_refuses_a_bad_option_as_the_command_does(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "phone", "09171234567")
    with pytest.raises(bulkimport.InputError) as error:
        bulkimport.check(path, country="Philippines")
    assert str(error.value) == cli_error("check", str(path), "--country", "Philippines")


def test_a_missing_file_raises_the_message_the_command_prints(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.xlsx"
    with pytest.raises(bulkimport.InputError) as error:
        bulkimport.check(missing)
    assert str(error.value) == cli_error("check", str(missing))
    with pytest.raises(bulkimport.InputError) as error:
        bulkimport.read_table(missing)
    assert str(error.value) == cli_error("check", str(missing))


# --- subscribe, results, status -------------------------------------------------------------


@pytest.mark.usefixtures("api_env")
def test_subscribe_a_sample_file_gives_what_the_results_command_writes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.sqlite"
    frame = bulkimport.subscribe(
        APPLICANTS, engagement=1234, country="PH", ledger=ledger, api_url=sandbox.url
    )
    subscribed = frame[frame["status"] == "subscribed"]
    assert len(subscribed) > 150
    for line in subscribed.head(5).itertuples():
        (contact,) = sandbox.contacts_for(str(line.phone))
        assert line.contact_id == contact["id"]
    assert frame["contact_id"].dtype == "Int64"
    assert sorted(sandbox.subscriptions(1234)) == sorted(subscribed["contact_id"].tolist())

    code, _ = cli("results", "--ledger", str(ledger), "-o", str(tmp_path / "r.csv"))
    assert code == 0
    with (tmp_path / "r.csv").open(encoding="utf-8-sig", newline="") as written:
        header, *lines = list(csv.reader(written))
    assert list(frame.columns) == header
    assert [line[3] for line in lines] == frame["status"].tolist()
    assert [int(line[2]) for line in lines] == frame["row"].tolist()
    pd.testing.assert_frame_equal(bulkimport.results(ledger, run=frame.attrs["run"]), frame)


@pytest.mark.usefixtures("api_env")
def test_subscribing_the_same_frame_twice_sends_nothing_the_second_time(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.sqlite"
    first = bulkimport.subscribe(
        people(), engagement=1234, country="PH", ledger=ledger, api_url=sandbox.url
    )
    assert first["status"].tolist() == ["subscribed", "subscribed", "invalid", "subscribed"]
    assert first["row"].tolist() == [2, 3, 4, 5]
    assert first.loc[0, "Mobile"] == "9171234567"
    assert first["Applied"].tolist() == ["2024-01-31", "", "2024-02-01T09:30:00", ""]
    assert first.loc[2, "Name"] == ""  # None is an empty cell, as NaN and NaT are
    requests = sandbox.request_count()

    # The same cells in other types are the same source: nothing is sent again.
    same = people().astype({"Mobile": str}).replace({"Mobile": {"9181234567.0": "9181234567"}})
    again = bulkimport.subscribe(
        same, engagement=1234, country="PH", ledger=ledger, api_url=sandbox.url
    )
    assert sandbox.request_count() == requests
    assert again["status"].tolist() == ["subscribed", "subscribed", "invalid", "subscribed"]
    (name,) = set(first["source"])
    assert name.startswith("DataFrame ")
    assert set(again["source"]) == {name}

    found = bulkimport.status(ledger)
    runs = found.runs
    assert [run.id for run in runs] == [again.attrs["run"], first.attrs["run"]]
    assert runs[0].files == [name]
    assert runs[0].rows == {"subscribed": 3, "invalid": 1}  # the frame's rows, kept as they were
    assert runs[1].exit_code == 1  # one invalid row needs attention
    (engagement,) = found.engagements
    assert (engagement.engagement, engagement.people_subscribed, engagement.rows_open) == (
        1234,
        3,
        0,
    )
    code, output = cli("status", "--ledger", str(ledger), "--json")
    assert code == 0
    shown = json.loads(output)
    assert [(r["run"], r["rows"], r["files"]) for r in shown["runs"]] == [
        (run.id, run.rows, run.files) for run in runs
    ]
    assert shown["engagements"][0]["people_subscribed"] == engagement.people_subscribed


@pytest.mark.usefixtures("api_env")
def test_a_frame_is_recorded_under_the_source_name_given(sandbox: Sandbox, tmp_path: Path) -> None:
    frame = pd.DataFrame({"phone": ["+639171234567"]})
    results = bulkimport.subscribe(
        frame, engagement=1234, ledger=tmp_path / "l.sqlite", api_url=sandbox.url, source="hr"
    )
    assert results[["source", "row", "status"]].values.tolist() == [["hr", 2, "subscribed"]]


def test_a_refused_key_raises_api_refused_with_the_sentence_the_command_prints(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGAGESPARK_API_KEY", "wrong-key")
    frame = pd.DataFrame({"phone": ["+639171234567"]})
    with pytest.raises(bulkimport.ApiRefused) as error:
        bulkimport.subscribe(
            frame, engagement=1234, ledger=tmp_path / "a.sqlite", api_url=sandbox.url
        )
    assert error.value.status == 401
    assert "API key was refused" in str(error.value)
    path = write_csv(tmp_path / "p.csv", "phone", "+639171234567")
    code, output = cli(
        "run", str(path), "--engagement", "1234", "--api-url", sandbox.url,
        "--ledger", str(tmp_path / "b.sqlite"),
    )  # fmt: skip
    assert code == 3
    assert f"  {error.value}\n" in output
    assert sandbox.contact_count() == 0
    # The rows stay pending in the ledger, for `retry` with the right key.
    assert bulkimport.results(tmp_path / "a.sqlite")["status"].tolist() == ["pending"]


def test_without_a_key_nothing_is_read_or_sent(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENGAGESPARK_API_KEY", raising=False)
    with pytest.raises(bulkimport.InputError, match="No API key: set ENGAGESPARK_API_KEY or pass"):
        bulkimport.subscribe(people(), engagement=1234, ledger=tmp_path / "l.sqlite")
    assert not (tmp_path / "l.sqlite").exists()
    key_file = tmp_path / "key"
    key_file.write_text(SANDBOX_TOKEN)
    key_file.chmod(0o600)
    frame = bulkimport.subscribe(
        pd.DataFrame({"phone": ["+639171234567"]}),
        engagement=1234,
        ledger=tmp_path / "l.sqlite",
        api_url=sandbox.url,
        api_key_file=key_file,
    )
    assert frame["status"].tolist() == ["subscribed"]
    again = bulkimport.subscribe(
        pd.DataFrame({"phone": ["+639181234567"]}),
        engagement=1234,
        ledger=tmp_path / "l.sqlite",
        api_url=sandbox.url,
        api_key=SANDBOX_TOKEN,
    )
    assert again["status"].tolist() == ["subscribed"]


@pytest.mark.usefixtures("api_env")
def test_an_api_that_stays_down_raises_api_unavailable_with_the_commands_sentence(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []  # retries wait here instead of sleeping
    no_sleep = RetryPolicy(backoff_base=0.01, sleep=waits.append)
    monkeypatch.setattr(sending, "Sender", functools.partial(Sender, policy=no_sleep))
    sandbox.set_faults(Faults(rate_503=1.0, retry_after=0))
    # Three batches failing in a row stop the run (Sender.failures_to_stop).
    phones = [f"+63917123456{n}" for n in range(4)]
    path = write_csv(tmp_path / "p.csv", "phone", *phones)
    with pytest.raises(bulkimport.ApiUnavailable) as error:
        bulkimport.subscribe(
            path, engagement=1234, ledger=tmp_path / "a.sqlite", api_url=sandbox.url, batch_size=1
        )
    assert waits  # it did retry before giving up
    code, output = cli(
        "run", str(path), "--engagement", "1234", "--api-url", sandbox.url,
        "--ledger", str(tmp_path / "b.sqlite"), "--batch-size", "1",
    )  # fmt: skip
    assert code == 5
    assert f"  {error.value}\n" in output
    assert "bulkimport retry" in str(error.value)
    assert set(bulkimport.results(tmp_path / "a.sqlite")["status"]) == {"pending"}


@pytest.mark.usefixtures("api_env")
def test_a_locked_ledger_raises_ledger_locked_with_the_commands_message(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.sqlite"
    path = write_csv(tmp_path / "p.csv", "phone", "+639171234567")
    with LedgerLock(ledger):
        with pytest.raises(bulkimport.LedgerLocked) as error:
            bulkimport.subscribe(path, engagement=1234, ledger=ledger, api_url=sandbox.url)
        message = cli_error(
            "run", str(path), "--engagement", "1234", "--api-url", sandbox.url,
            "--ledger", str(ledger),
        )  # fmt: skip
    assert str(error.value) == message
    assert sandbox.request_count() == 0


def test_results_and_status_of_a_missing_ledger_or_run_raise_the_commands_message(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "none.sqlite"
    with pytest.raises(bulkimport.LedgerError) as error:
        bulkimport.results(missing)
    assert str(error.value) == cli_error("results", "--ledger", str(missing), "-o", "r.csv")
    with pytest.raises(bulkimport.LedgerError) as error:
        bulkimport.status(missing)
    assert str(error.value) == cli_error("status", "--ledger", str(missing))


def test_results_of_an_unknown_run_raise_the_commands_message(
    sandbox: Sandbox, tmp_path: Path, api_env: str
) -> None:
    ledger = tmp_path / "l.sqlite"
    bulkimport.subscribe(
        pd.DataFrame({"phone": ["+639171234567"]}), engagement=1234, ledger=ledger,
        api_url=sandbox.url,
    )  # fmt: skip
    with pytest.raises(bulkimport.LedgerError) as error:
        bulkimport.results(ledger, run=99)
    assert str(error.value) == cli_error(
        "results", "--ledger", str(ledger), "--run", "99", "-o", str(tmp_path / "r.csv")
    )


def test_a_bad_setting_is_refused_under_its_argument_name_before_anything_is_read(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "l.sqlite"
    with pytest.raises(bulkimport.InputError) as error:
        bulkimport.subscribe(APPLICANTS, engagement=1234, ledger=ledger, batch_size=0)
    # The command's message names its flag; the library's names the argument.
    code, output = cli("run", str(APPLICANTS), "--engagement", "1234", "--batch-size", "0")
    assert code == 2
    assert str(error.value) == "batch_size must be a whole number from 1 to 1000, not 0."
    assert "--batch-size must be a whole number from 1 to 1000, not 0." in output
    with pytest.raises(bulkimport.InputError, match="engagement must be an engagement id"):
        bulkimport.subscribe(APPLICANTS, engagement="1234", ledger=ledger)  # type: ignore[arg-type]
    assert not ledger.exists()


# --- the package ----------------------------------------------------------------------------


def test_importing_the_package_and_starting_the_cli_import_no_pandas() -> None:
    probe = (
        "import sys, bulkimport, bulkimport.cli; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'pandas' "
        "or m.startswith(('bulkimport.face', 'bulkimport.jobs', 'bulkimport.read'))); "
        "print(heavy); bulkimport.read_table; print('pandas' in sys.modules)"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert output == "[]\nTrue\n"


def test_the_package_lists_its_face_and_its_errors() -> None:
    names = dir(bulkimport)
    for name in ("read_table", "check", "subscribe", "results", "status", "InputError"):
        assert name in names
        assert name in bulkimport.__all__
    assert issubclass(bulkimport.LedgerBusy, bulkimport.BulkImportError)
    with pytest.raises(AttributeError, match="no attribute 'run'"):
        _ = bulkimport.run  # type: ignore[attr-defined]


@pytest.mark.usefixtures("api_env")
def test_subscribe_takes_the_send_window_and_the_canary_and_never_asks(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    frame = pd.DataFrame({"phone": [f"+63917123{n:04d}" for n in range(6)]})
    hour = datetime.now(UTC).hour
    closed = f"{(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"  # two hours from now, UTC
    ledger = tmp_path / "l.sqlite"
    waiting = bulkimport.subscribe(
        frame, engagement=1234, ledger=ledger, api_url=sandbox.url,
        send_window=closed, timezone_for_all="UTC",
    )  # fmt: skip
    assert sandbox.request_count() == 0
    assert waiting.attrs["waiting"] == 6
    assert set(waiting["status"]) == {"pending"}
    assert waiting["reason"].str.startswith("waits for the send window (opens ").all()

    canary = bulkimport.subscribe(
        frame, engagement=1234, ledger=ledger, api_url=sandbox.url, send_window="any", limit=2
    )
    assert canary["status"].tolist() == ["subscribed"] * 2 + ["pending"] * 4
    assert sandbox.contact_count() == 2
