"""Send windows: nobody is messaged outside their window, in their own time zone.

Every test runs on an injected clock: waiting for a window, backing off and
pacing move the clock forward, never real time.
"""

from __future__ import annotations

import functools
import os
import signal
import sqlite3
import threading
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from time import monotonic

import pytest
from click.testing import CliRunner, Result

from bulkimport.cli import main
from bulkimport.errors import ExitCode, LedgerLocked, worst
from bulkimport.jobs import sending
from bulkimport.jobs.config import ConfigError, load_config
from bulkimport.jobs.nightly import run_night
from bulkimport.jobs.sending import Sender
from bulkimport.ledger.store import Ledger
from bulkimport.sandbox import SANDBOX_TOKEN, Faults, Sandbox
from bulkimport.send.client import EngageSparkClient
from bulkimport.send.retry import RetryPolicy
from bulkimport.send.windows import SendWindow
from tests.conftest import write_csv

NO_WAIT = RetryPolicy(backoff_base=0, sleep=lambda seconds: None)
# 02:00 in Manila (UTC+8), 18:00 the day before in Los Angeles (UTC-8).
MANILA_NIGHT = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)
MANILA_MORNING = datetime(2026, 12, 3, 0, 30, tzinfo=UTC)  # 08:30 in Manila
# 13:00 in Manila, 21:00 the day before in Los Angeles.
MANILA_NOON = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)

PH = [f"P{i},+63 917 000 {i:04d}" for i in range(4)]
US = [f"U{i},+1 415 555 {i:04d}" for i in range(3)]  # San Francisco: America/Los_Angeles


class FakeClock:
    """An aware clock that moves only when the code under test waits."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.waits: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def pause(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(MANILA_NIGHT)
    monkeypatch.setattr(
        sending, "Sender", functools.partial(Sender, policy=NO_WAIT, clock=fake, pause=fake.pause)
    )
    return fake


def invoke(sandbox: Sandbox, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--api-url", sandbox.url], catch_exceptions=False)


def run_args(source: Path, ledger: Path, *more: str) -> list[str]:
    return ["run", str(source), "--engagement", "1234", "--ledger", str(ledger), *more]


def rows(ledger: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(ledger) as db:
        return [tuple(r) for r in db.execute("SELECT status, reason FROM rows ORDER BY id")]


def test_the_window_is_read_in_the_numbers_zone_and_wraps_midnight() -> None:
    day = SendWindow(time(8), time(20))
    manila = SendWindow.zones_of(day, {"fullPhoneNumber": "639170000001"})
    assert manila == ("Asia/Manila",)
    assert not day.is_open(manila, MANILA_NIGHT)
    assert day.is_open(manila, MANILA_NOON)
    night = SendWindow(time(20), time(6))
    assert night.is_open(manila, MANILA_NIGHT)  # 02:00: inside 20:00-06:00
    assert not night.is_open(manila, MANILA_NOON)
    opening = night.next_opening(manila, MANILA_NOON)
    assert opening.describe() == "20:00 Asia/Manila"
    assert opening.at == datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_a_number_with_several_zones_is_inside_only_when_inside_in_all() -> None:
    window = SendWindow(time(8), time(20))
    both = ("Asia/Manila", "America/Los_Angeles")
    # 05:00 UTC: 13:00 in Manila (inside), 21:00 in Los Angeles (outside).
    assert window.is_open(both[:1], MANILA_NOON)
    assert not window.is_open(both, MANILA_NOON)
    # 08:00 in Manila is 16:00 in Los Angeles: the first moment inside in both.
    assert window.next_opening(both, MANILA_NOON).at == datetime(2026, 12, 3, 0, 0, tzinfo=UTC)
    # 09:00-12:00 in zones 16 hours apart never overlaps: no opening at all.
    assert SendWindow(time(9), time(12)).next_opening(both, MANILA_NOON).at is None
    # A contact named by id has no number: the fallback zone decides.
    fallback = SendWindow(time(8), time(20), fallback="Asia/Manila")
    assert fallback.zones_of({"id": 17}) == ("Asia/Manila",)
    assert SendWindow(time(8), time(20), for_all="UTC").zones_of(
        {"fullPhoneNumber": "639170000001"}
    ) == ("UTC",)


def test_waiting_ranks_between_attention_and_ok() -> None:
    assert worst([ExitCode.WAITING_FOR_WINDOW, ExitCode.OK]) is ExitCode.WAITING_FOR_WINDOW
    assert worst([ExitCode.WAITING_FOR_WINDOW, ExitCode.ROWS_NEED_ATTENTION]) == 1
    assert worst([ExitCode.API_UNAVAILABLE, ExitCode.WAITING_FOR_WINDOW]) == 5


@pytest.mark.usefixtures("api_env")
def test_a_closed_window_sends_nothing_until_it_opens(
    sandbox: Sandbox, tmp_path: Path, clock: FakeClock
) -> None:
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *PH)
    ledger = tmp_path / "l.sqlite"
    closed = invoke(sandbox, *run_args(source, ledger, "--send-window", "08:00-20:00"))
    assert closed.exit_code == ExitCode.WAITING_FOR_WINDOW, closed.output
    assert sandbox.request_count() == 0
    reason = "waits for the send window (opens 08:00 Asia/Manila)"
    assert rows(ledger) == [("pending", reason)] * 4
    assert "4 row(s) wait for their send window (opens: 4 at 08:00 Asia/Manila)" in closed.output
    assert "`bulkimport retry` sends them" in closed.output

    # retry inside the same window: the saved window still holds.
    again = invoke(sandbox, "retry", "--ledger", str(ledger), "--json")
    assert again.exit_code == ExitCode.WAITING_FOR_WINDOW, again.output
    assert sandbox.request_count() == 0
    assert '"waiting": {"rows": 4' in again.output
    assert '"command": "bulkimport retry"' in again.output

    clock.now = MANILA_MORNING
    opened = invoke(sandbox, "retry", "--ledger", str(ledger))
    assert opened.exit_code == ExitCode.OK, opened.output
    assert [status for status, _ in rows(ledger)] == ["subscribed"] * 4


@pytest.mark.usefixtures("api_env")
def test_only_the_zone_whose_window_is_open_is_sent(
    sandbox: Sandbox, tmp_path: Path, clock: FakeClock
) -> None:
    clock.now = MANILA_NOON  # 13:00 in Manila, 21:00 in Los Angeles
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *PH, *US)
    ledger = tmp_path / "l.sqlite"
    result = invoke(sandbox, *run_args(source, ledger, "--send-window", "08:00-20:00"))
    assert result.exit_code == ExitCode.WAITING_FOR_WINDOW, result.output
    states = rows(ledger)
    assert [s for s, _ in states[:4]] == ["subscribed"] * 4
    assert (
        states[4:]
        == [("pending", "waits for the send window (opens 08:00 America/Los_Angeles)")] * 3
    )
    assert sandbox.contact_count() == 4

    # One zone for everyone: 13:00 in Manila is inside for the Californians too.
    both = invoke(sandbox, "retry", "--ledger", str(ledger), "--timezone-for-all", "Asia/Manila")
    assert both.exit_code == ExitCode.OK, both.output
    assert sandbox.contact_count() == 7


@pytest.mark.usefixtures("api_env")
def test_a_wrapping_window_sends_at_night_only(
    sandbox: Sandbox, tmp_path: Path, clock: FakeClock
) -> None:
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *PH)
    ledger = tmp_path / "l.sqlite"
    clock.now = MANILA_NOON
    noon = invoke(sandbox, *run_args(source, ledger, "--send-window", "20:00-06:00"))
    assert noon.exit_code == ExitCode.WAITING_FOR_WINDOW
    assert sandbox.request_count() == 0
    clock.now = MANILA_NIGHT  # 02:00: inside
    night = invoke(sandbox, "retry", "--ledger", str(ledger))
    assert night.exit_code == ExitCode.OK, night.output
    assert sandbox.contact_count() == 4


@pytest.mark.usefixtures("api_env")
def test_wait_stays_and_sends_each_zone_as_its_window_opens(
    sandbox: Sandbox,
    tmp_path: Path,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *PH, *US)
    ledger = tmp_path / "l.sqlite"
    locked_out: list[bool] = []

    def pause(seconds: float) -> None:
        try:  # another run now: the waiting run still holds the ledger
            with Ledger.locked(ledger):
                locked_out.append(False)
        except LedgerLocked:
            locked_out.append(True)
        clock.pause(seconds)

    monkeypatch.setattr(
        sending, "Sender", functools.partial(Sender, policy=NO_WAIT, clock=clock, pause=pause)
    )
    args = run_args(source, ledger, "--send-window", "08:00-20:00", "--wait")
    result = invoke(sandbox, *args)
    assert result.exit_code == ExitCode.OK, result.output
    assert locked_out == [True]
    assert (
        "4 row(s) wait for their send window (opens 08:00 Asia/Manila): resuming at "
        "2026-12-03T00:00+00:00" in caplog.text
    )
    assert [s for s, _ in rows(ledger)] == ["subscribed"] * 7
    # 02:00 Manila / 10:00 LA: the Californians go at once, Manila at its 08:00.
    assert clock.now == datetime(2026, 12, 3, 0, 0, tzinfo=UTC)
    assert sum(clock.waits) == pytest.approx(6 * 3600)


@pytest.mark.usefixtures("api_env")
def test_sigterm_while_waiting_stops_the_wait_at_once_and_sends_nothing(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real wait (on the stop event, six hours long here) ends as soon as SIGTERM comes."""
    clock = FakeClock(MANILA_NIGHT)
    monkeypatch.setattr(sending, "Sender", functools.partial(Sender, policy=NO_WAIT, clock=clock))
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *PH)
    ledger = tmp_path / "l.sqlite"
    args = run_args(source, ledger, "--send-window", "08:00-20:00", "--wait")
    terminate = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    started = monotonic()
    terminate.start()
    try:
        result = invoke(sandbox, *args)
    finally:
        terminate.cancel()
    assert monotonic() - started < 10
    assert result.exit_code == ExitCode.ROWS_NEED_ATTENTION, result.output
    assert "Stopped on request while waiting for the send window" in result.output
    assert sandbox.request_count() == 0
    assert [s for s, _ in rows(ledger)] == ["pending"] * 4


@pytest.mark.usefixtures("api_env")
def test_a_retry_after_a_backoff_that_crossed_the_windows_end_is_not_sent(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(datetime(2026, 12, 2, 11, 50, tzinfo=UTC))  # 19:50 in Manila
    # Each backoff lasts half an hour on the injected clock: past 20:00 after the first.
    policy = RetryPolicy(backoff_base=0, sleep=lambda seconds: clock.pause(1800))
    monkeypatch.setattr(
        sending, "Sender", functools.partial(Sender, policy=policy, clock=clock, pause=clock.pause)
    )
    sandbox.set_faults(Faults(rate_503=1.0, retry_after=0))
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *PH)
    ledger = tmp_path / "l.sqlite"
    result = invoke(sandbox, *run_args(source, ledger, "--send-window", "08:00-20:00"))
    assert result.exit_code == ExitCode.WAITING_FOR_WINDOW, result.output
    assert sandbox.request_count() == 1  # the first attempt only: its retry waits
    assert rows(ledger) == [("pending", "waits for the send window (opens 08:00 Asia/Manila)")] * 4


def test_a_night_records_its_files_then_waits_for_the_window_and_sends(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    clock = FakeClock(MANILA_NIGHT)
    (tmp_path / "inbox").mkdir()
    write_csv(tmp_path / "inbox" / "a.csv", "Name,Mobile", *PH)
    config = tmp_path / "import.toml"
    base = (
        f'engagement = 1234\ninputs = ["inbox/*.csv"]\napi_url = "{sandbox.url}"\n'
        'ledger = "l.sqlite"\nsettle_seconds = 0\nsend_window = "08:00-20:00"\n'
    )
    config.write_text(base + "wait_for_window = false\n", encoding="utf-8")
    client = EngageSparkClient(SANDBOX_TOKEN, sandbox.url)

    def sender() -> Sender:
        return Sender(client, policy=NO_WAIT, clock=clock, pause=clock.pause)

    first = run_night(load_config(config), sender())
    assert first.exit_code == ExitCode.WAITING_FOR_WINDOW
    assert sandbox.request_count() == 0
    waiting = first.to_json()["waiting"]
    assert waiting["rows"] == 4
    assert waiting["windows"] == [
        {"opens": "08:00 Asia/Manila", "at": "2026-12-03T00:00+00:00", "rows": 4}
    ]

    config.write_text(base, encoding="utf-8")  # wait_for_window: true by default
    second = run_night(load_config(config), sender())
    assert second.exit_code == ExitCode.OK, second.to_json()
    assert [s for s, _ in rows(tmp_path / "l.sqlite")] == ["subscribed"] * 4
    assert clock.now == datetime(2026, 12, 3, 0, 0, tzinfo=UTC)
    assert second.to_json()["waiting"] is None


@pytest.mark.usefixtures("api_env")
def test_a_resumed_run_keeps_the_window_an_earlier_run_set(
    sandbox: Sandbox, tmp_path: Path, clock: FakeClock
) -> None:
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *PH)
    ledger = tmp_path / "l.sqlite"
    invoke(sandbox, *run_args(source, ledger, "--send-window", "08:00-20:00"))
    again = invoke(sandbox, *run_args(source, ledger))  # the same file, no window named
    assert again.exit_code == ExitCode.WAITING_FOR_WINDOW, again.output
    assert sandbox.request_count() == 0
    anyway = invoke(sandbox, "retry", "--ledger", str(ledger), "--send-window", "any")
    assert anyway.exit_code == ExitCode.OK, anyway.output
    assert sandbox.contact_count() == 4


@pytest.mark.parametrize("window", ["8-20", "08:00-08:00", "25:00-06:00", "08:00"])
def test_a_window_that_is_no_window_is_refused_naming_the_flag(tmp_path: Path, window: str) -> None:
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *PH)
    result = CliRunner().invoke(
        main, [*run_args(source, tmp_path / "l.sqlite", "--send-window", window)]
    )
    assert result.exit_code == ExitCode.USAGE
    assert '--send-window must be a window like "08:00-20:00"' in result.output


def test_the_nightly_config_refuses_a_bad_window_or_zone_by_its_key(tmp_path: Path) -> None:
    for line, expected in (
        ('send_window = "20-06"', '"send_window" must be a window like'),
        ('timezone = "Asia/Atlantis"', '"timezone" must be an IANA time zone'),
        ('unknown = "maybe"', '"unknown" must be "resend" or "hold"'),
    ):
        config = tmp_path / "import.toml"
        config.write_text(f'engagement = 1\ninputs = "*.csv"\n{line}\n', encoding="utf-8")
        with pytest.raises(ConfigError, match=expected):
            load_config(config)
