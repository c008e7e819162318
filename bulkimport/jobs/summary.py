"""What a run or retry did: counts, why it stopped, and the exit code it ends with."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bulkimport.errors import ExitCode, RefusalCause, worst
from bulkimport.ledger.states import NEEDS_ATTENTION
from bulkimport.settings import SendSettings as SendSettings  # callers import it from here too


@dataclass
class RunSummary:
    """What a run or retry did, for the summary, the JSON line and the exit code."""

    command: str
    engagement_id: int
    run_id: int | None = None
    counts: Counter[str] = field(default_factory=Counter)
    source_ids: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    batches: int = 0
    attempts: int = 0
    retries: int = 0
    recovered: int = 0
    stopped: str = ""  # why sending stopped early, in a sentence
    incomplete: list[str] = field(default_factory=list)  # files not read to their end
    abandoned: int = 0  # batches left in flight by a stop at once (their rows: sending)
    problems: list[str] = field(default_factory=list)  # e.g. the results file failed
    touched: Counter[str] = field(default_factory=Counter)  # rows this run recorded or sent
    refused: bool = False
    refused_status: int | None = None  # 401 key, 402 funds, 403 organization, 404 engagement
    refused_cause: RefusalCause | None = None
    unavailable: bool = False
    exit_code: ExitCode = ExitCode.OK
    dry_run: bool = False
    duration: float = 0.0

    def decide_exit_code(self) -> None:
        """Set the exit code from what happened: the worst of refusal, outage, open rows."""
        attention = (
            any(self.counts[s] for s in NEEDS_ATTENTION)
            or self.stopped
            or self.incomplete
            or self.problems
        )
        self.exit_code = worst(
            code
            for code, happened in (
                (ExitCode.API_REFUSED, self.refused),
                (ExitCode.API_UNAVAILABLE, self.unavailable),
                (ExitCode.ROWS_NEED_ATTENTION, attention),
            )
            if happened
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "run": self.run_id,
            "engagement": self.engagement_id,
            "files": self.files,
            "rows": dict(self.counts),
            "batches": self.batches,
            "attempts": self.attempts,
            "retries": self.retries,
            "recovered": self.recovered,
            "stopped": self.stopped or None,
            "incomplete": self.incomplete,
            "problems": self.problems,
            "dry_run": self.dry_run,
            "duration_seconds": round(self.duration, 3),
            "exit_code": int(self.exit_code),
        }
