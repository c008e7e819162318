"""Secrets and personal data: the key never leaks, files are private, logs mask numbers.

One realistic session (check, run under faults so retries log, a refused key,
an outage and its retry, a dry run, results, status and a night) runs at DEBUG
with a distinctive key; afterwards every artifact is searched for that key:
what each command printed, every log record (urllib3's included), the text of
every exception, and every byte of every file the session left behind,
ledger WAL included.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sqlite3
import stat
import traceback
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner, Result

from bulkimport.cli import main
from bulkimport.credentials import check_api_key, load_api_key
from bulkimport.errors import InputError
from bulkimport.jobs import sending
from bulkimport.jobs.sending import Sender
from bulkimport.output.tables import FORMULA_PREFIXES
from bulkimport.sandbox import NO_FAULTS, Faults, Sandbox
from bulkimport.send.retry import RetryPolicy

KEY = "es-live-Zq7vT3xP9kW2mR4-key"
WRONG_KEY = "es-live-Hh5m8Jc1Lp6Qx0-not-the-key"
FRAGMENTS = (KEY, "Zq7vT3xP9kW2mR4", WRONG_KEY, "Hh5m8Jc1Lp6Qx0")  # whole or in part
ENGAGEMENT = "1234"
PEOPLE = [(f"Person {n}", f"0917 {n:03d} {n * 7 % 10000:04d}") for n in range(100, 130)]


def international(national: str) -> str:
    return "63" + national.replace(" ", "")[1:]


def write_people(path: Path, people: list[tuple[str, str]]) -> Path:
    lines = ["Name,Mobile"] + [f"{name},{phone}" for name, phone in people]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Session:
    """Runs commands like a user would and keeps everything they printed or raised."""

    def __init__(self, folder: Path, sandbox: Sandbox) -> None:
        self.folder = folder
        self.sandbox = sandbox
        self.ledger = folder / "ledger.sqlite"
        self.printed: list[str] = []

    def __call__(self, *args: str, key: str = KEY) -> Result:
        result = CliRunner().invoke(main, ["-vv", *args], env={"ENGAGESPARK_API_KEY": key})
        self.printed += [result.output, result.stdout, result.stderr]
        if result.exception is not None:
            self.printed.append(str(result.exception))
            self.printed.append("".join(traceback.format_exception(result.exception)))
        return result

    def run(self, source: Path, *extra: str, key: str = KEY) -> Result:
        return self(
            "run", str(source), "--engagement", ENGAGEMENT, "--country", "PH",
            "--api-url", self.sandbox.url, "--ledger", str(self.ledger), *extra, key=key,
        )  # fmt: skip


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture every logger at DEBUG, urllib3's connection and request lines included."""
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "requests", "bulkimport"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield caplog
    for name in ("urllib3", "requests", "bulkimport"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def readable_bytes(path: Path) -> bytes:
    """Return a file's bytes, a workbook's members inflated (their text is compressed)."""
    data = path.read_bytes()
    if not zipfile.is_zipfile(path):
        return data
    with zipfile.ZipFile(path) as archive:
        return data + b"".join(archive.read(member) for member in archive.namelist())


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    """Return every captured record as written, with the exception texts they carry."""
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            parts.append("".join(traceback.format_exception(record.exc_info[1])))
    return "\n".join(parts)


def test_a_whole_session_never_reveals_the_key(
    tmp_path: Path, debug_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []  # retries wait here instead of sleeping
    no_sleep = RetryPolicy(backoff_base=0.01, sleep=waits.append)
    monkeypatch.setattr(sending, "Sender", functools.partial(Sender, policy=no_sleep))
    people = write_people(tmp_path / "people.csv", [*PEOPLE[:20], ("Nobody", "12345")])
    later = write_people(tmp_path / "later.csv", PEOPLE[20:])
    key_file = tmp_path / "secret" / "api-key"
    key_file.parent.mkdir()
    key_file.write_text(KEY + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    faults = Faults(rate_429=0.2, rate_500=0.2, rate_reset=0.1, retry_after=0)

    with Sandbox(token=KEY, engagements=(1234,), faults=faults, seed=5) as sandbox:
        session = Session(tmp_path, sandbox)
        assert session("check", str(people), "--country", "PH", "--report",
                       str(tmp_path / "check.xlsx")).exit_code == 1  # fmt: skip
        assert session("check", str(people), "--country", "PH", "--json", "--report",
                       str(tmp_path / "check.csv")).exit_code == 1  # fmt: skip

        ran = session.run(people, "--batch-size", "3", "--results", str(tmp_path / "run.xlsx"))
        assert ran.exit_code == 1, ran.output  # "12345" is not a phone number
        # Hold the ledger open, as a second reader would, so its -wal and -shm stay on disk.
        holder = sqlite3.connect(session.ledger)
        holder.execute("SELECT count(*) FROM rows").fetchone()

        refused = session.run(later, "--dry-run", key=WRONG_KEY)
        assert refused.exit_code == 1, refused.output  # a dry run sends nothing, key or not
        refused = session.run(later, key=WRONG_KEY)
        assert refused.exit_code == 3, refused.output
        assert "API key was refused" in refused.output

        sandbox.set_faults(Faults(rate_503=1.0, retry_after=0))
        down = session("retry", "--ledger", str(session.ledger), "--api-url", sandbox.url)
        assert down.exit_code == 1, down.output  # the batch gave up: its rows wait
        assert "rows: pending" in down.output
        sandbox.set_faults(NO_FAULTS)
        back = session(
            "retry", "--ledger", str(session.ledger), "--api-url", sandbox.url,
            "--api-key-file", str(key_file), "--results", str(tmp_path / "retry.csv"),
        )  # fmt: skip
        assert back.exit_code == 0, back.output

        assert session("results", "--ledger", str(session.ledger), "-o",
                       str(tmp_path / "all.xlsx")).exit_code == 0  # fmt: skip
        assert session("results", "--ledger", str(session.ledger), "-o",
                       str(tmp_path / "all.csv")).exit_code == 0  # fmt: skip
        assert session("status", "--ledger", str(session.ledger)).exit_code == 0
        assert session("status", "--ledger", str(session.ledger), "--json").exit_code == 0

        night = tmp_path / "night"
        (night / "inbox").mkdir(parents=True)
        (night / "results").mkdir()
        write_people(night / "inbox" / "export.csv", PEOPLE[:25])
        config = night / "import.toml"
        config.write_text(
            f'engagement = 1234\ninputs = ["inbox/*.csv"]\napi_url = "{sandbox.url}"\n'
            f'country = "PH"\nledger = "night.sqlite"\nsettle_seconds = 0\n'
            f'api_key_file = "{key_file}"\nresults_dir = "results"\nlog_file = "night.log"\n',
            encoding="utf-8",
        )
        nightly = session("nightly", "--config", str(config), key="")
        assert nightly.exit_code == 0, nightly.output
        assert json.loads(nightly.stdout.strip().splitlines()[-1])["rows"] == {"subscribed": 25}

        assert sandbox.request_count() > 10
        wal = Path(f"{session.ledger}-wal")
        assert wal.stat().st_size > 0  # the WAL holds the latest writes

        logs = logged_text(debug_logs)
        assert waits
        assert "retrying in" in logs  # the faults made retries log
        assert "urllib3.connectionpool" in debug_logs.text  # HTTP debug lines were on
        said = "\n".join(session.printed)
        for fragment in FRAGMENTS:
            assert fragment not in logs, fragment
            assert fragment not in said, fragment
        files = [path for path in tmp_path.rglob("*") if path.is_file() and path != key_file]
        assert len(files) >= 15
        for path in files:
            data = readable_bytes(path)
            for fragment in FRAGMENTS:
                assert fragment.encode() not in data, (fragment, path)
                assert fragment.encode("utf-16-le") not in data, (fragment, path)
        holder.close()

    # The logs name files and counts, never a person's number.
    numbers = [phone for _, phone in PEOPLE] + [international(p) for _, p in PEOPLE]
    night_log = (night / "night.log").read_text(encoding="utf-8")
    for number in numbers:
        assert number not in logs, number
        assert number.replace(" ", "") not in logs, number
        assert number not in night_log, number


# --- file modes -----------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Let files be created as widely as their creator asks, so only an explicit 0600 holds."""
    previous = os.umask(0)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_ledger_lock_results_reports_and_logs_are_private(tmp_path: Path) -> None:
    people = write_people(tmp_path / "people.csv", PEOPLE[:5])
    ledger = tmp_path / "ledger.sqlite"
    env = {"ENGAGESPARK_API_KEY": KEY}
    runner = CliRunner()
    with Sandbox(token=KEY) as sandbox:
        for report in ("check.xlsx", "check.csv"):
            runner.invoke(main, ["check", str(people), "--report", str(tmp_path / report)])
        ran = runner.invoke(
            main,
            ["run", str(people), "--engagement", "1234", "--country", "PH", "--api-url",
             sandbox.url, "--ledger", str(ledger), "--results", str(tmp_path / "run.xlsx")],
            env=env,
        )  # fmt: skip
        assert ran.exit_code == 0, ran.output
        holder = sqlite3.connect(ledger)  # keeps -wal and -shm for the look below
        holder.execute("SELECT count(*) FROM rows").fetchone()
        runner.invoke(main, ["results", "--ledger", str(ledger), "-o", str(tmp_path / "r.csv")])
        night = tmp_path / "night"
        (night / "inbox").mkdir(parents=True)
        (night / "results").mkdir()
        write_people(night / "inbox" / "export.csv", PEOPLE[5:8])
        config = night / "import.toml"
        config.write_text(
            f'engagement = 1234\ninputs = ["inbox/*.csv"]\napi_url = "{sandbox.url}"\n'
            'country = "PH"\nledger = "night.sqlite"\nsettle_seconds = 0\n'
            'results_dir = "results"\nlog_file = "night.log"\n',
            encoding="utf-8",
        )
        nightly = runner.invoke(main, ["nightly", "--config", str(config)], env=env)
        assert nightly.exit_code == 0, nightly.output
        private = [
            ledger, Path(f"{ledger}-wal"), Path(f"{ledger}-shm"), Path(f"{ledger}.lock"),
            tmp_path / "check.xlsx", tmp_path / "check.csv", tmp_path / "run.xlsx",
            tmp_path / "r.csv", night / "night.sqlite", night / "night.sqlite.lock",
            night / "night.log", *(night / "results").glob("*.xlsx"),
        ]  # fmt: skip
        modes = {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in private}
        holder.close()
    assert len(modes) == len(private) == 12
    assert set(modes.values()) == {"0o600"}, modes


@pytest.mark.parametrize(("mode", "warned"), [(0o600, False), (0o640, True), (0o604, True)])
def test_a_key_file_others_can_read_gets_a_warning(
    mode: int, warned: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text(KEY, encoding="utf-8")
    key_file.chmod(mode)
    people = write_people(tmp_path / "people.csv", PEOPLE[:2])
    with Sandbox(token=KEY) as sandbox, caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(
            main,
            ["run", str(people), "--engagement", "1234", "--country", "PH", "--api-url",
             sandbox.url, "--ledger", str(tmp_path / "l.sqlite"), "--api-key-file",
             str(key_file)],
            env={"ENGAGESPARK_API_KEY": ""},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert sandbox.contact_count() == 2  # the key was read and used all the same
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    expected = [f"key file {key_file} can be read by other users: run `chmod 600 {key_file}`"]
    assert warnings == (expected if warned else [])
    assert KEY not in caplog.text


# --- formula-safe results -------------------------------------------------------------------------


DANGEROUS = ['=HYPERLINK("http://x","y")', "+1+2", "-1+2", "@SUM(A1)", "\tTAB=1", "\rCR=1"]


def test_results_and_reports_never_hold_a_formula(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert set(FORMULA_PREFIXES) == {"=", "+", "-", "@", "\t", "\r"}
    monkeypatch.chdir(tmp_path)
    source = Path("=people.csv")  # a relative name is the `source` column as given
    lines = ['Name,Mobile,"=Notes"']
    for n, value in enumerate(DANGEROUS):
        escaped = value.replace('"', '""')
        lines.append(f'"{escaped}",0917 {100 + n:03d} 0000,"{escaped}"')
    lines.append('Bad Phone,"=0917 199 0000",ok')
    source.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8", newline="")
    with Sandbox(token=KEY) as sandbox:
        ran = CliRunner().invoke(
            main,
            ["run", str(source), "--engagement", "1234", "--country", "PH", "--api-url",
             sandbox.url, "--ledger", "l.sqlite", "--results", "run.xlsx"],
            env={"ENGAGESPARK_API_KEY": KEY},
        )  # fmt: skip
    assert ran.exit_code == 1, ran.output  # the "=0917..." phone is invalid
    checked = CliRunner().invoke(main, ["check", str(source), "--report", "check.xlsx"])
    assert checked.exit_code == 1, checked.output
    exported = CliRunner().invoke(main, ["results", "--ledger", "l.sqlite", "-o", "all.csv"])
    assert exported.exit_code == 0, exported.output

    for name in ("run.xlsx", "check.xlsx"):
        book = openpyxl.load_workbook(tmp_path / name)
        cells = [cell for sheet in book for row in sheet.iter_rows() for cell in row]
        assert [cell.coordinate for cell in cells if cell.data_type == "f"] == [], name
        texts = [str(cell.value) for cell in cells if isinstance(cell.value, str)]
        assert not [text for text in texts if text.startswith(FORMULA_PREFIXES)], name
        assert "'=people.csv" in texts, name
        assert "'=Notes" in texts, name
        for value in DANGEROUS:
            assert sum(text == "'" + value for text in texts) >= 2, value
    exported_text = (tmp_path / "all.csv").read_text(encoding="utf-8-sig")
    assert "'=people.csv" in exported_text
    assert "\n=" not in exported_text
    assert ",=" not in exported_text
    assert ",+" not in exported_text
    assert ",@" not in exported_text


# --- the key is read strictly -------------------------------------------------------------


@pytest.mark.parametrize("raw", [KEY, KEY + "\n", KEY + "\r\n"], ids=["bare", "LF", "CRLF"])
def test_one_trailing_line_break_is_dropped_from_either_source(raw: str, tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_bytes(raw.encode())
    key_file.chmod(0o600)
    assert load_api_key({}, key_file) == KEY
    assert load_api_key({"ENGAGESPARK_API_KEY": raw}) == KEY
    assert check_api_key(KEY, "the API key") == KEY  # checking twice changes nothing


BAD_KEYS = [
    (
        KEY + "\n# the live key, from Ana\n",
        "has 2 lines (line 1 ends after character 27): keep only the key, on one line, "
        "and remove comments and blank lines.",
    ),
    (
        "# engageSPARK key\r\n" + KEY + "\r\n",
        "has 2 lines (line 1 ends after character 17): keep only the key, on one line, "
        "and remove comments and blank lines.",
    ),
    (
        KEY + "\n\n",
        "has 2 lines (line 1 ends after character 27): keep only the key, on one line, "
        "and remove comments and blank lines.",
    ),
    (" " + KEY, "has a space at character 1: remove the spaces and tabs around the key."),
    (KEY + "\t\n", "has a tab at character 28: remove the spaces and tabs around the key."),
    (
        KEY[:7] + " " + KEY[7:],
        "has a space at character 8: an API key has no spaces inside; copy the key again "
        "from engageSPARK (Account Settings > API Key).",
    ),
    (
        "\u201c" + KEY + "\u201d",
        "has a non-ASCII character (U+201C left double quotation mark) at character 1: "
        "a document or chat changed quotes or spaces, so copy the key again from "
        "engageSPARK (Account Settings > API Key) and paste it as plain text.",
    ),
    (
        KEY + "\u00a0",
        "has a non-ASCII character (U+00A0 no-break space) at character 28: a document or "
        "chat changed quotes or spaces, so copy the key again from engageSPARK "
        "(Account Settings > API Key) and paste it as plain text.",
    ),
    (
        KEY[:3] + "\x00" + KEY[3:],
        "has a control character (U+0000) at character 4: copy the key again from "
        "engageSPARK (Account Settings > API Key).",
    ),
    (
        KEY + "\r",
        "has a carriage return (U+000D) at character 28: save the key on one line with a "
        "plain text editor.",
    ),
]


@pytest.mark.parametrize(("raw", "problem"), BAD_KEYS, ids=[str(i) for i in range(len(BAD_KEYS))])
def test_a_key_with_anything_else_is_refused_without_showing_it(
    raw: str, problem: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_bytes(raw.encode())
    key_file.chmod(0o600)
    with pytest.raises(InputError) as from_file:
        load_api_key({}, key_file)
    with pytest.raises(InputError) as from_env:
        load_api_key({"ENGAGESPARK_API_KEY": raw})
    assert str(from_file.value) == f"The key file {key_file} {problem}"
    assert str(from_env.value) == f"The environment variable ENGAGESPARK_API_KEY {problem}"
    for message in (str(from_file.value), str(from_env.value)):
        assert "\n" not in message
        for fragment in (KEY, "Zq7vT3xP9kW2mR4", "es-live", "the live", "Ana", "#"):
            assert fragment not in message, fragment


def test_a_key_file_that_is_not_utf8_or_has_a_bom_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_bytes(b"\x93" + KEY.encode() + b"\x94\n")  # cp1252 curly quotes
    with pytest.raises(InputError) as caught:
        load_api_key({}, key_file)
    assert str(caught.value) == (
        f"The key file {key_file} has a byte that is not UTF-8 text (0x93) at character 1: "
        "save the file as plain text (UTF-8) holding only the key, or copy the key again "
        "from engageSPARK (Account Settings > API Key)."
    )
    key_file.write_bytes(b"\xef\xbb\xbf" + KEY.encode() + b"\r\n")  # Notepad's UTF-8 with BOM
    with pytest.raises(InputError) as caught:
        load_api_key({}, key_file)
    assert str(caught.value) == (
        f"The key file {key_file} has a byte order mark (U+FEFF) at character 1: save the "
        "file as UTF-8 without a byte order mark (BOM), holding only the key."
    )


def test_a_key_file_with_a_comment_line_stops_the_run_before_anything_runs(
    tmp_path: Path,
) -> None:
    people = write_people(tmp_path / "people.csv", PEOPLE[:3])
    key_file = tmp_path / "api-key"
    key_file.write_text(f"{KEY}\n# rotated 2025-03, ask Ana\n", encoding="utf-8")
    key_file.chmod(0o600)
    ledger = tmp_path / "l.sqlite"
    with Sandbox(token=KEY) as sandbox:
        result = CliRunner().invoke(
            main,
            ["run", str(people), "--engagement", "1234", "--country", "PH", "--api-url",
             sandbox.url, "--ledger", str(ledger), "--api-key-file", str(key_file)],
            env={"ENGAGESPARK_API_KEY": ""},
        )  # fmt: skip
        assert sandbox.request_count() == 0
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"Error: The key file {key_file} has 2 lines (line 1 ends after character 27): "
        "keep only the key, on one line, and remove comments and blank lines.\n"
    )
    assert not ledger.exists()
    for fragment in FRAGMENTS:
        assert fragment not in result.output


def test_curly_quotes_around_the_key_in_the_environment_stop_the_run(tmp_path: Path) -> None:
    people = write_people(tmp_path / "people.csv", PEOPLE[:3])
    with Sandbox(token=KEY) as sandbox:
        result = CliRunner().invoke(
            main,
            ["run", str(people), "--engagement", "1234", "--country", "PH", "--api-url",
             sandbox.url, "--ledger", str(tmp_path / "l.sqlite")],
            env={"ENGAGESPARK_API_KEY": f"\u201c{KEY}\u201d"},
        )  # fmt: skip
        assert sandbox.request_count() == 0
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        "Error: The environment variable ENGAGESPARK_API_KEY has a non-ASCII character "
        "(U+201C left double quotation mark) at character 1: "
    )
    assert not (tmp_path / "l.sqlite").exists()
    for fragment in FRAGMENTS:
        assert fragment not in result.output


# --- messages name where the key came from ---------------------------------------------------


def test_a_loaded_key_knows_its_source_and_never_shows_itself(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    from_file = load_api_key({}, key_file)
    from_env = load_api_key({"ORG_ES_KEY": KEY}, env_name="ORG_ES_KEY")
    assert (from_file, from_env) == (KEY, KEY)
    assert from_file.source == f"the key file {key_file}"
    assert from_env.source == "the environment variable ORG_ES_KEY"
    for key in (from_file, from_env):
        assert KEY not in repr(key)
        assert KEY not in repr([key])


def test_a_refused_key_file_is_named_by_run(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text(WRONG_KEY, encoding="utf-8")
    key_file.chmod(0o600)
    people = write_people(tmp_path / "people.csv", PEOPLE[:2])
    with Sandbox(token=KEY) as sandbox:
        result = CliRunner().invoke(
            main,
            ["run", str(people), "--engagement", "1234", "--country", "PH", "--api-url",
             sandbox.url, "--ledger", str(tmp_path / "l.sqlite"), "--api-key-file",
             str(key_file)],
            env={"ENGAGESPARK_API_KEY": KEY},
        )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert f"check the key file {key_file}." in result.output
    assert "ENGAGESPARK_API_KEY" not in result.output
    for fragment in FRAGMENTS:
        assert fragment not in result.output


def test_a_missing_key_names_the_flag_on_the_command_line() -> None:
    with pytest.raises(InputError) as missing:
        load_api_key({})
    assert str(missing.value).startswith(
        "No API key: set ENGAGESPARK_API_KEY or pass --api-key-file "
    )
