"""The nightly job: its config, the inbox, and nights that build on each other."""

from __future__ import annotations

import io
import json
import logging
import re
import stat
import threading
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result

from bulkimport.cli import main
from bulkimport.errors import ExitCode
from bulkimport.jobs.config import KEYS, ConfigError, NightlyConfig, load_config
from bulkimport.jobs.nightly import FileOutcome, NightSummary, Redact, run_night, worst
from bulkimport.jobs.sending import Sender
from bulkimport.ledger.lock import LedgerLock
from bulkimport.ledger.store import Ledger
from bulkimport.output.progress import LogProgress, NoProgress, progress_for
from bulkimport.sandbox import NO_FAULTS, SANDBOX_TOKEN, Faults, Sandbox
from bulkimport.send.client import AttemptResult, EngageSparkClient
from bulkimport.send.retry import RetryPolicy
from bulkimport.settings import (
    API_KEY_ENV,
    DEFAULT_API_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_LEDGER,
    DEFAULT_SETTLE_SECONDS,
    DEFAULT_TIMEOUT,
    MAX_BATCH_SIZE,
    MAX_CONCURRENCY,
    MAX_TIMEOUT,
    MIN_BATCH_SIZE,
    MIN_CONCURRENCY,
    MIN_TIMEOUT,
)

SAMPLE = Path(__file__).parent.parent / "sample_data" / "nightly.toml"
NO_WAIT = RetryPolicy(max_attempts=3, backoff_base=0, sleep=lambda seconds: None)
NIGHT = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
BASE_CONFIG = """\
engagement = 1234
inputs = ["inbox/*.csv"]
api_url = "{url}"
country = "PH"
ledger = "ledger.sqlite"
settle_seconds = 0
"""


def phone(n: int) -> str:
    """Return a valid Philippine mobile number as people type it."""
    return f"0917 {n:03d} {n * 7 % 10000:04d}"


def full(n: int) -> str:
    """Return ``phone(n)`` as the API stores it."""
    return f"63917{n:03d}{n * 7 % 10000:04d}"


def write_export(path: Path, people: range, *, invalid: int = 0) -> Path:
    lines = ["Name,Mobile No."]
    lines += [f"Person {n},{phone(n)}" for n in people]
    lines += [f"Nobody {i},12345" for i in range(invalid)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path.resolve()


@pytest.fixture
def api() -> Iterator[Sandbox]:
    with Sandbox() as server:
        yield server


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A folder holding the config, an inbox and a results folder."""
    (tmp_path / "inbox").mkdir()
    (tmp_path / "results").mkdir()
    return tmp_path


def write_config(home: Path, url: str, extra: str = "", *, base: str = BASE_CONFIG) -> Path:
    config = home / "import.toml"
    config.write_text(base.format(url=url) + extra, encoding="utf-8")
    return config


def nightly(config: Path, *more: str, key: str = SANDBOX_TOKEN) -> Result:
    return CliRunner().invoke(
        main, ["nightly", "--config", str(config), *more], env={"ENGAGESPARK_API_KEY": key}
    )


def json_line(result: Result) -> dict[str, Any]:
    lines = result.stdout.strip().splitlines()
    assert lines, result.output
    line: dict[str, Any] = json.loads(lines[-1])
    return line


def night(
    config: NightlyConfig,
    client: EngageSparkClient,
    *,
    sleep: Any = None,
) -> NightSummary:
    return run_night(
        config,
        Sender(client, policy=NO_WAIT),
        sleep=sleep or (lambda seconds: None),
        now=lambda: NIGHT,
    )


def client_for(api: Sandbox) -> EngageSparkClient:
    return EngageSparkClient(SANDBOX_TOKEN, api.url)


def ledger_counts(path: Path) -> dict[str, int]:
    book = Ledger.open(path)
    try:
        return dict(book.counts())
    finally:
        book.close()


# --- three nights -------------------------------------------------------------------------


def results_rows(workbook: Path) -> list[dict[str, object]]:
    sheet = openpyxl.load_workbook(workbook, read_only=True)["Rows"]
    lines = [[cell.value for cell in line] for line in sheet.iter_rows()]
    return [dict(zip(lines[0], line, strict=False)) for line in lines[1:]]


def test_three_nights_over_a_growing_export_send_only_what_is_new(api: Sandbox, home: Path) -> None:
    config = write_config(home, api.url, 'results_dir = "results"\n')
    export = write_export(home / "inbox" / "export.csv", range(100, 130), invalid=2)

    first = nightly(config)
    assert first.exit_code == 1, first.output  # the two invalid rows need attention
    line = json_line(first)
    assert line["rows"] == {"subscribed": 30, "invalid": 2}
    assert line["files"]["seen"] == 1
    assert line["files"]["processed"] == 1
    assert line["exit_code"] == 1
    assert api.contact_count() == 30
    assert api.request_count() == 1
    assert len(list((home / "results").glob("export-*.xlsx"))) == 1

    write_export(export, range(100, 140), invalid=2)  # the tracker adds 10 people
    second = nightly(config)
    assert second.exit_code == 1, second.output
    line = json_line(second)
    assert line["rows"] == {"subscribed": 10}  # tonight's own rows: the rest is kept as it was
    assert line["batches"] == 1
    assert api.contact_count() == 40
    assert api.request_count() == 2
    assert len(api.subscriptions(1234)) == 40
    for workbook in (home / "results").glob("export-*.xlsx"):
        rows = results_rows(workbook)
        assert len(rows) == {32: 32, 42: 42}[len(rows)]  # every row of that night's file
        for row in rows:
            if row["status"] in ("subscribed", "skipped"):
                (contact,) = api.contacts_for(str(row["phone"]))
                assert row["contact_id"] == contact["id"]
    assert sorted(len(results_rows(w)) for w in (home / "results").glob("export-*.xlsx")) == [
        32,
        42,
    ]

    third = nightly(config)
    assert third.exit_code == 0, third.output
    line = json_line(third)
    assert line["files"] == {
        "seen": 1,
        "processed": 0,
        "skipped": 1,
        "still_writing": 0,
        "deferred": 0,
        "unreadable": 0,
    }
    assert line["rows"] == {}
    assert line["runs"] == []
    assert api.request_count() == 2
    for n in range(100, 140):
        assert len(api.contacts_for(full(n))) == 1


# --- interrupted nights -------------------------------------------------------------------


def test_a_night_the_api_was_down_is_finished_the_next_night(api: Sandbox, home: Path) -> None:
    config = load_config(write_config(home, api.url, "batch_size = 5\nconcurrency = 1\n"))
    export = write_export(home / "inbox" / "export.csv", range(100, 120))
    api.set_faults(Faults(rate_503=1.0, retry_after=0))

    down = night(config, client_for(api))
    assert down.exit_code is ExitCode.API_UNAVAILABLE
    assert down.to_json()["stopped"]
    assert ledger_counts(config.ledger) == {"pending": 20}
    assert api.contact_count() == 0

    api.set_faults(NO_FAULTS)
    back = night(config, client_for(api))
    assert back.exit_code is ExitCode.OK
    assert back.files[export].outcome is FileOutcome.SKIPPED
    assert [part.command for part in back.parts] == ["retry"]
    assert dict(back.rows) == {"subscribed": 20}
    for n in range(100, 120):
        assert len(api.contacts_for(full(n))) == 1


class Killed(BaseException):
    """The process dying right after the API processed a batch."""


class DiesAfterFirstBatch(EngageSparkClient):
    def post_subscription(
        self, engagement_id: int, contacts: Sequence[Mapping[str, Any]], *, reuse: bool
    ) -> AttemptResult:
        super().post_subscription(engagement_id, contacts, reuse=reuse)
        raise Killed


def test_a_night_killed_mid_send_is_completed_without_duplicate_contacts(
    api: Sandbox, home: Path
) -> None:
    # reuse = false: only the unknown rows' resend with reuse can prevent duplicates.
    extra = "batch_size = 5\nconcurrency = 1\nreuse = false\n"
    config = load_config(write_config(home, api.url, extra))
    write_export(home / "inbox" / "export.csv", range(100, 120))

    with pytest.raises(Killed):
        night(config, DiesAfterFirstBatch(SANDBOX_TOKEN, api.url))
    # The lost batch, and the next one, marked `sending` while it waited for the slot.
    assert ledger_counts(config.ledger) == {"sending": 10, "pending": 10}
    assert api.contact_count() == 5  # the lost batch reached the API

    finished = night(config, client_for(api))
    assert finished.exit_code is ExitCode.OK
    assert finished.recovered == 10
    assert ledger_counts(config.ledger) == {"subscribed": 20}
    for n in range(100, 120):
        assert len(api.contacts_for(full(n))) == 1, full(n)
    assert api.contact_count() == 20


# --- files ----------------------------------------------------------------------------------


def test_a_file_still_being_written_is_left_for_the_next_run(api: Sandbox, home: Path) -> None:
    config = load_config(write_config(home, api.url, base=BASE_CONFIG.replace("= 0", "= 5")))
    done = write_export(home / "inbox" / "a.csv", range(100, 105))
    growing = write_export(home / "inbox" / "b.csv", range(200, 203))
    waits: list[float] = []

    def exporter_still_writing(seconds: float) -> None:
        waits.append(seconds)
        write_export(growing, range(200, 206))

    first = night(config, client_for(api), sleep=exporter_still_writing)
    assert waits == [5.0]
    assert first.files[done].outcome is FileOutcome.PROCESSED
    assert first.files[growing].outcome is FileOutcome.STILL_WRITING
    assert api.contact_count() == 5

    second = night(config, client_for(api), sleep=waits.append)
    assert second.files[done].outcome is FileOutcome.SKIPPED
    assert second.files[growing].outcome is FileOutcome.PROCESSED
    assert api.contact_count() == 11


def test_an_unusable_file_needs_attention_and_the_others_are_imported(
    api: Sandbox, home: Path
) -> None:
    config = load_config(write_config(home, api.url))
    good = write_export(home / "inbox" / "good.csv", range(100, 104))
    bad = (home / "inbox" / "bad.csv").resolve()
    bad.write_text("Name,Notes\nAna,hello\n", encoding="utf-8")

    summary = night(config, client_for(api))
    assert summary.files[good].outcome is FileOutcome.PROCESSED
    assert summary.files[bad].outcome is FileOutcome.UNREADABLE
    assert "No phone or contact id column" in summary.files[bad].reason
    assert summary.exit_code is ExitCode.ROWS_NEED_ATTENTION
    assert summary.to_json()["problems"] == [summary.files[bad].reason]
    assert api.contact_count() == 4


def test_a_bad_inbox_entry_is_a_problem_and_the_night_goes_on(api: Sandbox, home: Path) -> None:
    config = write_config(home, api.url, "batch_size = 5\nconcurrency = 1\n")
    write_export(home / "inbox" / "a.csv", range(100, 110))
    api.set_faults(Faults(rate_503=1.0, retry_after=0))
    night(load_config(config), client_for(api))  # the API is down: the rows wait
    assert ledger_counts(home / "ledger.sqlite") == {"pending": 10}
    api.set_faults(NO_FAULTS)
    loop = home / "inbox" / "loop.csv"
    loop.symlink_to("loop.csv")
    dangling = home / "inbox" / "gone.csv"
    dangling.symlink_to("moved-away.csv")
    write_export(home / "inbox" / "b.csv", range(200, 204))

    planned = nightly(config, "--check-config")
    assert planned.exit_code == 0, planned.output
    assert "inbox/loop.csv: cannot be read" in planned.stdout

    result = nightly(config)
    assert result.exit_code == 1, result.output
    line = json_line(result)
    assert line["files"] == {
        "seen": 4,
        "processed": 1,
        "skipped": 1,
        "still_writing": 0,
        "deferred": 0,
        "unreadable": 2,
    }
    assert line["paths"]["unreadable"] == [str(dangling), str(loop)]
    assert line["problems"] == [
        f"{dangling} is a symbolic link to a file that does not exist: "
        "remove the link or put the file back.",
        f"{loop} is a symbolic link that loops (it points back to itself): "
        "remove it from the inbox or point it at a file.",
    ]
    assert line["rows"] == {"subscribed": 14}  # the earlier rows, then b.csv
    assert api.contact_count() == 14
    assert "Traceback" not in result.output


def test_archive_results_and_log_file(api: Sandbox, home: Path) -> None:
    (home / "archive").mkdir()
    extra = (
        'results_dir = "results"\nafter = "archive"\narchive_dir = "archive"\n'
        'log_file = "nightly.log"\ninputs = ["inbox/*.csv", "archive/*.csv"]\n'
    )
    config = write_config(home, api.url, extra, base=BASE_CONFIG.replace("inputs", "# inputs"))
    write_export(home / "inbox" / "export.csv", range(100, 110))

    result = nightly(config)
    assert result.exit_code == 0, result.output
    line = json_line(result)
    (archived,) = (home / "archive").glob("export-*.csv")
    (results,) = (home / "results").glob("export-*.xlsx")
    assert line["archived"] == [str(archived)]
    assert line["results"] == [str(results)]
    assert not (home / "inbox" / "export.csv").exists()

    log = home / "nightly.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text(encoding="utf-8")
    assert "importing inbox/export.csv" in text
    assert "archived inbox/export.csv" in text
    assert '"exit_code": 0' in text.splitlines()[-1]  # the summary ends the log too
    assert SANDBOX_TOKEN not in text
    assert not any(full(n) in text for n in range(100, 110))

    again = nightly(config)  # the archive folder matches a pattern but is never imported
    assert json_line(again)["files"]["seen"] == 0
    assert again.exit_code == 0


def test_a_refused_key_stops_the_night_with_exit_3(api: Sandbox, home: Path) -> None:
    config = write_config(home, api.url)
    write_export(home / "inbox" / "a.csv", range(100, 103))
    write_export(home / "inbox" / "b.csv", range(200, 203))

    result = nightly(config, key="wrong-key")
    assert result.exit_code == 3, result.output
    line = json_line(result)
    assert line["exit_code"] == 3
    assert line["files"]["processed"] == 1
    assert line["files"]["deferred"] == 1
    assert "wrong-key" not in result.output


# --- lock, config, plan -------------------------------------------------------------------


def test_a_held_lock_exits_4_at_once(api: Sandbox, home: Path) -> None:
    config = write_config(home, api.url, 'log_file = "nightly.log"\n')
    write_export(home / "inbox" / "export.csv", range(100, 105))
    with LedgerLock(home / "ledger.sqlite"):
        result = nightly(config)
    assert result.exit_code == 4, result.output
    line = json_line(result)
    assert line["exit_code"] == 4
    assert "Another bulkimport run" in line["error"]
    assert "Another bulkimport run" in (home / "nightly.log").read_text(encoding="utf-8")
    assert api.request_count() == 0
    assert nightly(config).exit_code == 0  # the lock is free again: the next night runs
    assert api.contact_count() == 5


PASTED_KEY = "es-live-Zq7vT3xP9kW2mR4-key"
HEX_KEY = "a3f9c2e8b7d14f6a9e0c5b2d8f7a1c3e"  # looks like a name, and is a key


def test_a_key_pasted_into_api_key_env_is_refused_and_never_echoed(home: Path) -> None:
    config = write_config(home, "http://127.0.0.1:9/api/v1", f'api_key_env = "{PASTED_KEY}"\n')
    result = nightly(config, key=PASTED_KEY)
    assert result.exit_code == 2, result.output
    assert json_line(result) == {
        "command": "nightly",
        "config": str(config),
        "error": "import.toml line 7: api_key_env must name an environment variable such as "
        "ENGAGESPARK_API_KEY, not hold the key itself: put the key in that variable (or in a "
        "file named by api_key_file) and write only the variable's name here, in letters, "
        "digits and _.",
        "exit_code": 2,
    }
    for text in (result.stdout, result.stderr, result.output):
        for fragment in (PASTED_KEY, "Zq7vT3xP9kW2mR4"):
            assert fragment not in text


def test_a_key_that_looks_like_a_name_is_not_echoed_either(api: Sandbox, home: Path) -> None:
    config = write_config(home, api.url, f'api_key_env = "{HEX_KEY}"\n')
    write_export(home / "inbox" / "export.csv", range(100, 103))
    result = nightly(config)
    assert result.exit_code == 2, result.output
    assert json_line(result)["error"] == (
        "No API key: set the environment variable named by api_key_env or name a key file "
        "with api_key_file in import.toml (find the key in engageSPARK under Account "
        "Settings > API Key)."
    )
    assert HEX_KEY not in result.output
    assert HEX_KEY[:12] not in result.stdout + result.stderr
    assert api.request_count() == 0


def test_a_plain_variable_name_is_named_in_the_message(home: Path) -> None:
    config = write_config(home, "http://127.0.0.1:9/api/v1", 'api_key_env = "ORG_ES_KEY"\n')
    result = nightly(config)
    assert result.exit_code == 2, result.output
    assert json_line(result)["error"] == (
        "No API key: set ORG_ES_KEY or name a key file with api_key_file in import.toml "
        "(find the key in engageSPARK under Account Settings > API Key)."
    )
    assert "--api-key-file" not in result.output


def test_a_refused_key_names_the_variable_the_config_names(api: Sandbox, home: Path) -> None:
    config = write_config(home, api.url, 'api_key_env = "ORG_ES_KEY"\n')
    write_export(home / "inbox" / "a.csv", range(100, 103))
    result = CliRunner().invoke(
        main, ["nightly", "--config", str(config)], env={"ORG_ES_KEY": "wrong-key"}
    )
    assert result.exit_code == 3, result.output
    assert "The API key was refused" in result.output
    assert "check the environment variable ORG_ES_KEY." in result.output
    assert "ENGAGESPARK_API_KEY" not in result.output
    assert "wrong-key" not in result.output


def test_a_refused_key_names_the_key_file_the_config_names(api: Sandbox, home: Path) -> None:
    key_file = home / "api-key"
    key_file.write_text("wrong-key\n", encoding="utf-8")
    key_file.chmod(0o600)
    config = write_config(home, api.url, 'api_key_file = "api-key"\n')
    write_export(home / "inbox" / "a.csv", range(100, 103))
    result = nightly(config, key=SANDBOX_TOKEN)  # the file wins over the default variable
    assert result.exit_code == 3, result.output
    assert f"check the key file {key_file}." in result.output
    assert "ENGAGESPARK_API_KEY" not in result.output


def test_a_ledger_that_is_a_symlink_loop_is_a_short_json_line(home: Path) -> None:
    config = write_config(home, "http://127.0.0.1:9/api/v1")
    (home / "ledger.sqlite").symlink_to("ledger.sqlite")
    result = nightly(config)
    assert result.exit_code == 2, result.output
    assert json_line(result)["error"] == (
        f"The ledger {home / 'ledger.sqlite'} is a symbolic link that loops (it points back "
        "to itself): point it at the ledger file, or give the file itself with --ledger."
    )


def test_a_held_lock_through_a_symlink_exits_4(api: Sandbox, home: Path) -> None:
    base = BASE_CONFIG.replace("ledger.sqlite", "current.sqlite")
    config = write_config(home, api.url, base=base)
    (home / "current.sqlite").symlink_to("ledger.sqlite")
    write_export(home / "inbox" / "export.csv", range(100, 105))
    with LedgerLock(home / "ledger.sqlite"):
        result = nightly(config)
    assert result.exit_code == 4, result.output
    assert json_line(result)["error"].startswith("Another bulkimport run (pid ")
    assert api.request_count() == 0


_APPENDED = len(BASE_CONFIG.splitlines()) + 1

CONFIG_ERRORS = [
    ("engagement", "", "engagement = 1234\n", None),
    ("inputs", "", 'inputs = ["inbox/*.csv"]\n', None),
    ("bach_size", "bach_size = 10\n", "", _APPENDED),
    ("api_key", 'api_key = "s3cr3t-value"\n', "", _APPENDED),
    ("engagement", 'engagement = "1234"\n', "engagement = 1234\n", _APPENDED - 1),
    ("inputs", "inputs = []\n", 'inputs = ["inbox/*.csv"]\n', _APPENDED - 1),
    ("batch_size", "batch_size = 0\n", "", _APPENDED),
    ("batch_size", "batch_size = true\n", "", _APPENDED),
    ("concurrency", "concurrency = 33\n", "", _APPENDED),
    ("timeout", 'timeout = "30"\n', "", _APPENDED),
    ("reuse", 'reuse = "yes"\n', "", _APPENDED),
    ("groups", 'groups = [1, "a"]\n', "", _APPENDED),
    ("organization", "organization = 1.5\n", "", _APPENDED),
    ("api_url", 'api_url = "ftp://example.org"\n', 'api_url = "{url}"\n', _APPENDED - 1),
    ("api_key_env", 'api_key_env = "MY KEY"\n', "", _APPENDED),
    ("api_key_file", 'api_key_env = "K"\napi_key_file = "key.txt"\n', "", _APPENDED + 1),
    ("country", 'country = "XX"\n', 'country = "PH"\n', _APPENDED - 1),
    ("sheet", "sheet = 0\n", "", _APPENDED),
    ("encoding", 'encoding = "klingon"\n', "", _APPENDED),
    ("delimiter", 'delimiter = ";;"\n', "", _APPENDED),
    ("allow_possible", "allow_possible = 1\n", "", _APPENDED),
    ("mobile_only", 'mobile_only = "no"\n', "", _APPENDED),
    ("allow_duplicates", "allow_duplicates = []\n", "", _APPENDED),
    ("after", 'after = "delete"\n', "", _APPENDED),
    ("archive_dir", 'after = "archive"\n', "", _APPENDED),
    ("archive_dir", 'archive_dir = "archive"\n', "", _APPENDED),
    ("settle_seconds", "settle_seconds = -1\n", "settle_seconds = 0\n", _APPENDED - 1),
    ("results_dir", 'results_dir = "no-such-folder"\n', "", _APPENDED),
    ("log_file", 'log_file = "no-such-folder/n.log"\n', "", _APPENDED),
    ("ledger", 'ledger = "no-such-folder/l.sqlite"\n', 'ledger = "ledger.sqlite"\n', _APPENDED - 1),
    ("results_dir", "results_dir = 5\n", "", _APPENDED),
    ('map."Mobile No."', '[map]\n"Mobile No." = "phonee"\n', "", _APPENDED + 1),
    ('map."Mobile No."', '[map]\n"Mobile No." = 5\n', "", _APPENDED + 1),
    ("extras", "[extras]\nname = 1\n", "", _APPENDED),
]


@pytest.mark.parametrize(
    ("key", "added", "removed", "line"),
    CONFIG_ERRORS,
    ids=[f"{case[0]}-{i}" for i, case in enumerate(CONFIG_ERRORS)],
)
def test_every_config_error_exits_2_naming_the_key(
    home: Path, key: str, added: str, removed: str, line: int | None
) -> None:
    url = "http://127.0.0.1:9/api/v1"
    base = BASE_CONFIG.replace(removed, "") if removed else BASE_CONFIG
    config = write_config(home, url, added, base=base)
    write_export(home / "inbox" / "export.csv", range(100, 105))

    result = nightly(config)
    assert result.exit_code == 2, result.output
    error = json_line(result)["error"]
    assert f'"{key}"' in error or key in error
    assert "Error:" in result.stderr
    if line is not None:
        assert error.startswith(f"import.toml line {line}: "), error
    assert "s3cr3t-value" not in result.output
    assert not (home / "ledger.sqlite").exists()  # refused before anything was read or sent


def test_a_toml_syntax_error_exits_2_with_the_line(home: Path) -> None:
    config = write_config(home, "http://127.0.0.1:9/api/v1", "batch_size = \n")
    result = nightly(config)
    assert result.exit_code == 2
    assert re.search(r"is not valid TOML \(.*line 7", json_line(result)["error"])


def test_a_missing_config_file_exits_2(home: Path) -> None:
    result = nightly(home / "nowhere.toml")
    assert result.exit_code == 2
    assert "Cannot read the config file" in json_line(result)["error"]


def test_unknown_key_suggests_the_close_one(home: Path) -> None:
    config = write_config(home, "http://127.0.0.1:9/api/v1", "concurency = 2\n")
    with pytest.raises(ConfigError, match='did you mean "concurrency"'):
        load_config(config)


def test_check_config_prints_the_plan_and_sends_nothing(api: Sandbox, home: Path) -> None:
    extra = 'inputs = ["inbox/*.csv", "drop/*.xlsx"]\n'
    config = write_config(home, api.url, extra, base=BASE_CONFIG.replace("inputs", "# inputs"))
    write_export(home / "inbox" / "old.csv", range(100, 103))
    night(load_config(config), client_for(api))
    requests = api.request_count()
    write_export(home / "inbox" / "new.csv", range(200, 203))
    (home / "inbox" / "notes.csv").write_text("Name,Notes\nAna,hi\n", encoding="utf-8")

    result = nightly(config, "--check-config", key="")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "the config is valid" in out
    assert "inputs 'inbox/*.csv': 3 file(s) now" in out
    assert "inputs 'drop/*.xlsx': no file now" in out
    assert "inbox/new.csv: new: would be imported" in out
    assert "inbox/old.csv: would be skipped (identical to a file already imported)" in out
    assert "inbox/notes.csv: cannot be read" in out
    assert "NOT available in this shell" in out
    assert api.request_count() == requests


# --- pieces -------------------------------------------------------------------------------


# Keys the sample sets as an example of what a night looks like, not to their default.
SAMPLE_EXAMPLES = {"engagement", "inputs", "country", "results_dir", "after", "archive_dir",
                   "log_file", "map", "send_window", "timezone"}  # fmt: skip


def test_the_sample_config_sets_every_other_key_to_the_code_default() -> None:
    raw = tomllib.loads(SAMPLE.read_text(encoding="utf-8"))
    config = load_config(SAMPLE)
    defaults = NightlyConfig(SAMPLE, 1, ("x",), DEFAULT_LEDGER)
    checked = set(raw) - SAMPLE_EXAMPLES
    assert checked  # the sample shows some defaults
    for key in checked:
        if key == "ledger":
            assert config.ledger == SAMPLE.parent.resolve() / DEFAULT_LEDGER
        else:
            assert getattr(config, key) == getattr(defaults, key), key


def test_the_sample_config_names_the_real_defaults_in_its_comments() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    urls = set(re.findall(r"https://[^\s\"),]+", text))
    assert urls == {DEFAULT_API_URL}
    assert f"({MIN_BATCH_SIZE} to {MAX_BATCH_SIZE}, default {DEFAULT_BATCH_SIZE})" in text
    assert f"({MIN_CONCURRENCY} to {MAX_CONCURRENCY}, default {DEFAULT_CONCURRENCY})" in text
    assert f"({MIN_TIMEOUT:g} to {MAX_TIMEOUT:g}, default {DEFAULT_TIMEOUT:g})" in text
    assert f"default {DEFAULT_SETTLE_SECONDS:g}, 0 turns" in text
    assert f"(default {API_KEY_ENV})" in text
    assert f"Default: {DEFAULT_LEDGER} next to this file" in text


@pytest.mark.parametrize(("name", "character"), [("semicolon", ";"), ("TAB", "\t"), ("|", "|")])
def test_a_delimiter_name_the_cli_takes_is_taken_by_the_config(
    home: Path, name: str, character: str
) -> None:
    config = load_config(write_config(home, "http://127.0.0.1:9/api/v1", f'delimiter = "{name}"\n'))
    assert config.delimiter == character
    assert config.import_options().read.delimiter == character


def test_a_night_reads_a_semicolon_file_with_the_delimiter_named(api: Sandbox, home: Path) -> None:
    lines = ["Name;Mobile No."] + [f"Uy, Person {n};{phone(n)}" for n in range(100, 103)]
    (home / "inbox" / "export.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = write_config(home, api.url, 'delimiter = "semicolon"\n')
    result = nightly(config)
    assert result.exit_code == 0, result.output
    assert api.contact_count() == 3


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("batch_size = 0", '"batch_size" must be a whole number from 1 to 1000, not 0'),
        ("concurrency = 33", '"concurrency" must be a whole number from 1 to 32, not 33'),
        ("timeout = 0.5", '"timeout" must be a number of seconds from 1 to 600, not 0.5'),
        ('delimiter = ";;"', '"delimiter" must be one character such as ";" or a name'),
        ('encoding = "klingon"', '"encoding" must be an encoding name such as "utf-8"'),
    ],
)
def test_a_config_value_is_refused_by_its_key_and_line_not_a_cli_flag(
    home: Path, setting: str, expected: str
) -> None:
    config = write_config(home, "http://127.0.0.1:9/api/v1", setting + "\n")
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    line = len(BASE_CONFIG.splitlines()) + 1
    assert str(refused.value).startswith(f"import.toml line {line}: {expected}")
    assert "--" not in str(refused.value)


def test_the_sample_config_is_valid_and_documents_every_key() -> None:
    config = load_config(SAMPLE)
    assert config.engagement == 1234
    assert config.folder == SAMPLE.parent.resolve()
    text = SAMPLE.read_text(encoding="utf-8")
    for key in KEYS:
        if key == "map":
            assert "\n[map]\n" in text
        else:
            assert re.search(rf"^(# )?{key} = ", text, re.MULTILINE), key


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([], ExitCode.OK),
        ([ExitCode.OK, ExitCode.ROWS_NEED_ATTENTION], ExitCode.ROWS_NEED_ATTENTION),
        ([ExitCode.ROWS_NEED_ATTENTION, ExitCode.API_UNAVAILABLE], ExitCode.API_UNAVAILABLE),
        ([ExitCode.API_UNAVAILABLE, ExitCode.API_REFUSED, ExitCode.OK], ExitCode.API_REFUSED),
    ],
)
def test_the_night_exits_with_the_worst_code_of_its_parts(
    codes: list[ExitCode], expected: ExitCode
) -> None:
    assert worst(codes) is expected


def test_log_lines_never_hold_the_key_or_a_full_number() -> None:
    record = logging.LogRecord(
        "bulkimport.x", logging.INFO, __file__, 1, "key %s sent %s", ("k-123", "639171234567"), None
    )
    assert Redact(["k-123"]).filter(record)
    assert record.getMessage() == "key *** sent 63917*****67"


# --- progress without a terminal ----------------------------------------------------------


@pytest.fixture
def default_verbosity() -> Iterator[io.StringIO]:
    """Logging as `bulkimport` sets it up without -v: the root shows warnings, on stderr."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root, progress = logging.getLogger(), logging.getLogger("bulkimport.output.progress")
    levels = root.level, progress.level
    root.setLevel(logging.WARNING)
    progress.setLevel(logging.NOTSET)
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)
    root.setLevel(levels[0])
    progress.setLevel(levels[1])


def test_without_a_terminal_a_progress_line_shows_every_ten_seconds(
    default_verbosity: io.StringIO,
) -> None:
    now = [100.0]
    sink = progress_for(io.StringIO(), clock=lambda: now[0])  # not a terminal
    assert isinstance(sink, LogProgress)
    sink.begin(0)
    for second in range(1, 26):
        now[0] = 100.0 + second
        sink.advance(40)
    sink.end()
    assert default_verbosity.getvalue().splitlines() == [
        "INFO sending rows as they are read",
        "INFO sent 400 rows (40 rows/s)",  # at 10 s
        "INFO sent 800 rows (40 rows/s)",  # at 20 s
        "INFO sent 1000 rows",
    ]
    assert not re.search(r"\d{9}", default_verbosity.getvalue())  # counts, never a number


def test_json_output_keeps_progress_quiet(default_verbosity: io.StringIO) -> None:
    sink = progress_for(io.StringIO(), quiet=True, clock=lambda: 0.0)
    assert isinstance(sink, NoProgress)
    sink.begin(10)
    sink.advance(10)
    sink.end()
    assert default_verbosity.getvalue() == ""
    assert logging.getLogger("bulkimport.output.progress").level == logging.NOTSET


def test_a_night_counts_only_its_own_rows_after_a_night_stopped_while_reading(
    api: Sandbox, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Night 1 stops after recording 1,000 of 3,000 rows; night 2 reports each row once."""
    config = load_config(write_config(home, api.url))
    lines = [f"P{n},0917 {n // 10000:03d} {n % 10000:04d}" for n in range(3000)]
    (home / "inbox" / "export.csv").write_text("\n".join(["Name,Mobile", *lines]) + "\n")
    stop = threading.Event()
    original = Ledger.record_rows

    def stop_after_first_chunk(self: Ledger, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        stop.set()

    monkeypatch.setattr(Ledger, "record_rows", stop_after_first_chunk)
    first = run_night(config, Sender(client_for(api), policy=NO_WAIT, stop=stop), now=lambda: NIGHT)
    monkeypatch.setattr(Ledger, "record_rows", original)
    assert first.exit_code is ExitCode.ROWS_NEED_ATTENTION
    assert first.to_json()["rows"] == {"pending": 1000}
    assert api.request_count() == 0

    second = night(config, client_for(api))
    assert second.exit_code is ExitCode.OK
    # The retry part sends the 1,000 recorded rows, the import part records and sends
    # the other 2,000: 3,000 in all, not 1,000 counted twice.
    assert second.to_json()["rows"] == {"subscribed": 3000}
    assert ledger_counts(config.ledger) == {"subscribed": 3000}
