"""What `run --dry-run` tells to do next: a dry run records nothing, so there is no retry."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bulkimport.cli import main
from tests.conftest import write_csv

SENDS = (
    "Next: to send, run the same command without --dry-run. A dry run only shows what "
    "`bulkimport run` would send (the payloads above): it sends and records nothing, "
    "so there is nothing to retry."
)


def dry_run(path: Path, ledger: Path) -> tuple[int, str]:
    args = ["run", str(path), "--engagement", "1", "--country", "PH", "--dry-run"]
    # Nothing listens on port 9: a dry run must not need the API.
    args += ["--ledger", str(ledger), "--api-url", "http://127.0.0.1:9/"]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGAGESPARK_API_KEY", "not-used-by-a-dry-run")


def test_a_dry_run_says_how_to_send_and_not_to_retry(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "Name,Mobile", "Juan,09171234567")
    code, output = dry_run(path, tmp_path / "l.sqlite")
    assert '"fullPhoneNumber": "639171234567"' in output
    next_lines = [line.strip() for line in output.splitlines() if "Next:" in line]
    assert next_lines == [SENDS]
    assert "bulkimport retry`" not in output
    assert not (tmp_path / "l.sqlite").exists()
    assert code == 1


def test_a_dry_run_with_invalid_rows_points_to_check_not_to_results(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "Name,Mobile", "Juan,09171234567", "Ana,call me")
    _, output = dry_run(path, tmp_path / "l.sqlite")
    next_lines = [line.strip() for line in output.splitlines() if "Next:" in line]
    assert next_lines == [
        "Next: fix the invalid rows (`bulkimport check` with --report check.xlsx gives "
        "every row's reason) and run the file again.",
        SENDS,
    ]
