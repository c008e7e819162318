"""`make demo`: check and import sample_data/ into a local sandbox, and show the results.

Runs the real `bulkimport` commands as a user would type them, against a
sandbox started on a free port for the length of the demo. Running it twice
shows the ledger at work: the second import skips everyone.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from bulkimport.sandbox import SANDBOX_TOKEN, Sandbox

SAMPLE = Path("sample_data/applicants.xlsx")
LEDGER = Path("demo-ledger.sqlite")
RESULTS = Path("demo-results.xlsx")
ENGAGEMENT = 1234


def _bulkimport(*args: str, env: dict[str, str]) -> int:
    print(f"\n$ bulkimport {shlex.join(args)}", flush=True)
    command = [sys.executable, "-m", "bulkimport", *args]
    return subprocess.call(command, env=env)  # noqa: S603 - our own CLI, fixed arguments


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
            env=env,
        )  # fmt: skip
        _bulkimport("status", "--ledger", str(LEDGER), env=env)
        state = sandbox.state()
    print(
        f"\nThe sandbox now holds {state['contacts']} contacts and received "
        f"{state['requests']} subscription requests."
    )
    print(f"Open {RESULTS} for every row with its status, contact id and reason.")
    print(f"Run `make demo` again: the ledger ({LEDGER}) makes the second import skip everyone.")
    return code


if __name__ == "__main__":
    main()
