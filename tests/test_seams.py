"""Seams that keep the CLI and the send loop testable, and the tests that use them.

The send loop takes its client through a small protocol and its retry policy
from the caller; the CLI builds every Sender in one place (``sender_for``).
"""

from __future__ import annotations

import functools
import io
import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bulkimport.cli import main
from bulkimport.jobs import sending
from bulkimport.jobs.importing import run_import
from bulkimport.jobs.sending import Sender
from bulkimport.ledger.store import Ledger
from bulkimport.output.progress import BarProgress
from bulkimport.rows.phones import PhonePolicy
from bulkimport.rows.prepare import ImportOptions
from bulkimport.sandbox import SANDBOX_TOKEN, Faults, Sandbox
from bulkimport.send.client import AttemptKind, AttemptResult
from bulkimport.send.retry import RetryPolicy
from bulkimport.settings import SendSettings
from tests.conftest import write_csv

NO_WAIT = RetryPolicy(backoff_base=0, sleep=lambda seconds: None)


class ReversedAnswers:
    """A client that holds every batch until ``expected`` arrived, then answers newest first."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrived = 0
        self.lock = threading.Condition()
        self.answered: list[int] = []

    def post_subscription(
        self, engagement_id: int, contacts: Sequence[Mapping[str, Any]], *, reuse: bool
    ) -> AttemptResult:
        with self.lock:
            self.arrived += 1
            mine = self.arrived
            self.lock.notify_all()
            self.lock.wait_for(lambda: self.arrived == self.expected, timeout=10)
            # Newest first: batch N answers, then N-1, ...
            self.lock.wait_for(lambda: len(self.answered) == self.expected - mine, timeout=10)
            self.answered.append(mine)
            self.lock.notify_all()
        data = [{"id": 1000 + int(c["fullPhoneNumber"][-4:]), **c} for c in contacts]
        return AttemptResult(AttemptKind.CREATED, 201, data, "", None, None, 0.0, 0.0)

    def resolve_custom_field(self, name: str) -> int:
        raise AssertionError("no custom fields here")

    def close(self) -> None:
        pass


def test_batches_are_recorded_in_the_order_they_left_not_in_string_order(
    tmp_path: Path,
) -> None:
    """Twelve batches answered all at once, newest first: 1.9 is recorded before 1.10."""
    lines = [f"P{i},0917 000 {i:04d}" for i in range(12)]
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *lines)
    client = ReversedAnswers(expected=12)
    settings = SendSettings(1234, batch_size=1, concurrency=12)
    recorded: list[str] = []
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        original = ledger.settle

        def spy(settlements: Any, attempts: Any, run_id: int) -> None:
            recorded.extend(a.batch for a in attempts)
            original(settlements, attempts, run_id)

        ledger.settle = spy  # type: ignore[method-assign]
        summary = run_import(
            [source],
            ImportOptions(phones=PhonePolicy(country="PH")),
            settings,
            ledger,
            Sender(client, policy=NO_WAIT),
        )
    assert client.answered == list(range(12, 0, -1))  # the answers really came newest first
    assert summary.counts == {"subscribed": 12}
    assert recorded == [f"1.{n}" for n in range(1, 13)]


@pytest.mark.usefixtures("api_env")
def test_the_cli_runs_with_a_zero_sleep_policy_through_its_one_seam(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API down for a whole run: exit 5 after every retry, without sleeping through them."""
    waits: list[float] = []
    policy = RetryPolicy(backoff_base=0.5, sleep=waits.append)
    monkeypatch.setattr(sending, "Sender", functools.partial(Sender, policy=policy))
    lines = [f"P{i},0917 000 000{i}" for i in range(5)]
    source = write_csv(tmp_path / "p.csv", "Name,Mobile", *lines)
    sandbox.set_faults(Faults(rate_503=1.0, retry_after=0))
    ledger = tmp_path / "l.sqlite"
    args = ["--engagement", "1234", "--country", "PH", "--api-url", sandbox.url]
    batches = ["--batch-size", "1", "--concurrency", "1"]
    result = CliRunner().invoke(
        main, ["run", str(source), *args, *batches, "--ledger", str(ledger)]
    )
    assert result.exit_code == 5, result.output  # three batches in a row stayed unavailable
    assert sandbox.request_count() == 3 * policy.max_attempts
    assert len(waits) == 3 * (policy.max_attempts - 1)  # every backoff was asked for, none slept
    sandbox.set_faults(Faults())
    retry = CliRunner().invoke(main, ["retry", "--ledger", str(ledger), "--api-url", sandbox.url])
    assert retry.exit_code == 0, retry.output


@pytest.mark.usefixtures("api_env")
def test_run_maps_a_column_to_a_custom_field_by_name_end_to_end(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "p.csv",
        "Name,Mobile,Job",
        "Ana Cruz,0917 000 0001,Driver",
        "Ben Uy,0917 000 0002,Cook",
    )
    args = ["--engagement", "1234", "--country", "PH", "--api-url", sandbox.url]
    result = CliRunner().invoke(
        main,
        ["run", str(source), *args, "--ledger", str(tmp_path / "l.sqlite"),
         "--map", "Job=custom:position", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["rows"] == {"subscribed": 2}
    (ana,) = sandbox.contacts_for("639170000001")
    assert ana["customFields"] == {"1": "Driver"}  # "Position" is field 1, found case-blind
    (ben,) = sandbox.contacts_for("639170000002")
    assert ben["customFields"] == {"1": "Cook"}


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_draws_rows_done_of_the_total() -> None:
    terminal = FakeTerminal()
    bar = BarProgress(terminal)
    bar.begin(200)
    bar.advance(50)
    bar.advance(50)
    bar._bar.refresh()
    drawn = terminal.getvalue()
    bar.end()
    assert "sending" in drawn
    assert "100/200" in drawn
    assert SANDBOX_TOKEN not in drawn


def test_the_version_is_written_once_and_every_reader_agrees() -> None:
    from importlib.metadata import version

    import bulkimport
    from bulkimport.send.client import USER_AGENT

    result = CliRunner().invoke(main, ["--version"])
    assert result.output == f"bulkimport, version {bulkimport.__version__}\n"
    assert version("bulkimport") == bulkimport.__version__  # pyproject reads it from the package
    assert f"bulkimport/{bulkimport.__version__}" == USER_AGENT
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert '\nversion = "' not in pyproject
