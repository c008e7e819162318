"""`make demo`: check and import sample_data/ into a local sandbox, and show the results.

Runs the real `bulkimport` commands as a user would type them, against a
sandbox started on a free port for the length of the demo. Running it twice
shows the ledger at work: the second import sends nothing.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import openpyxl

from bulkimport.sandbox import SANDBOX_TOKEN, Sandbox

SAMPLE = Path("sample_data/applicants.xlsx")
LEDGER = Path("demo-ledger.sqlite")
RESULTS = Path("demo-results.xlsx")
ENGAGEMENT = 1234


def _bulkimport(*args: str, env: dict[str, str]) -> int:
    print(f"\n$ bulkimport {shlex.join(args)}", flush=True)
    command = [sys.executable, "-m", "bulkimport", *args]
    return subprocess.call(command, env=env)  # noqa: S603 - our own CLI, fixed arguments


def _preview(path: Path) -> None:
    """Print a few rows of the results file of each kind: what a user finds in it."""
    if not path.exists():
        return
    sheet = openpyxl.load_workbook(path, read_only=True)["Rows"]
    shown: dict[str, int] = {}
    print(f"\nA few rows of {path}:")
    for line in sheet.iter_rows(max_col=7, values_only=True):
        _, _, row, status, contact_id, phone, reason = (str(v or "") for v in line)
        if shown.get(status, 0) < (1 if status == "status" else 2):
            shown[status] = shown.get(status, 0) + 1
            print(f"  {row:>4}  {status:<11} {contact_id:<10} {phone:<13} {reason[:70]}")


def main() -> int:
    """Run the demo; return the import's exit code."""
    env = {**os.environ, "ENGAGESPARK_API_KEY": SANDBOX_TOKEN}
    with Sandbox(engagements=(ENGAGEMENT,), latency_ms=80) as sandbox:
        print(f"Sandbox engageSPARK API at {sandbox.url} (key {SANDBOX_TOKEN!r})")
        _bulkimport("check", str(SAMPLE), "--country", "PH", env=env)
        code = _bulkimport(
            "run", str(SAMPLE),
            "--engagement", str(ENGAGEMENT),
            "--country", "PH",
            "--api-url", sandbox.url,
            "--ledger", str(LEDGER),
            "--results", str(RESULTS),
            "--yes",  # the demo sends to the sandbox: no question
            env=env,
        )  # fmt: skip
        _bulkimport("status", "--ledger", str(LEDGER), env=env)
        state = sandbox.state()
    print(
        f"\nThe sandbox now holds {state['contacts']} contacts and received "
        f"{state['requests']} subscription requests."
    )
    _preview(RESULTS)
    print(f"Open {RESULTS} for every row with its status, contact id and reason.")
    print(
        f"Run `make demo` again: the ledger ({LEDGER}) makes the second import send "
        "nothing: every row keeps its state."
    )
    return code


if __name__ == "__main__":
    main()
