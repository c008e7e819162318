"""What a run or retry did: counts, why it stopped, and the exit code it ends with."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bulkimport.contacts import RowStatus
from bulkimport.errors import ExitCode, RefusalCause, worst
from bulkimport.ledger.states import NEEDS_ATTENTION
from bulkimport.send.windows import Opening
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
    # Rows outside their send window, by when it opens ("08:00 Asia/Manila"): they wait.
    waiting: Counter[str] = field(default_factory=Counter)
    opens: dict[str, datetime | None] = field(default_factory=dict)
    waiting_pending: int = 0  # of the waiting rows, those pending (the rest are unknown)
    resume_with: str = "`bulkimport retry` sends them once their window opens (or add --wait)"
    limited: int = 0  # rows left pending by --limit
    handed: int = 0  # rows handed to the API (what --limit counts)
    per_minute: int | None = None  # the pace, when one was set
    declined: bool = False  # the person answered no to the question before sending
    unknown_held: int = 0  # unknown rows of the engagement held for a person (--unknown hold)

    @property
    def waiting_rows(self) -> int:
        """Return how many rows wait for their send window."""
        return sum(self.waiting.values())

    def add_waiting(self, opening: Opening, *, pending: bool) -> None:
        """Count one row that waits for its window to open."""
        described = opening.describe()
        self.waiting[described] += 1
        self.opens[described] = opening.at
        self.waiting_pending += int(pending)

    def clear_waiting(self) -> None:
        """Forget the waiting rows before a wait's next round counts them again."""
        self.waiting.clear()
        self.opens.clear()
        self.waiting_pending = 0

    def hand_over_waiting(self) -> None:
        """Leave the waiting rows to a later part that waits for their window (a night's)."""
        self.waiting.clear()
        self.opens.clear()

    def next_opening(self) -> datetime | None:
        """Return the earliest moment a waiting row's window opens (None: none opens)."""
        return min((at for at in self.opens.values() if at is not None), default=None)

    def decide_exit_code(self) -> None:
        """Set the exit code from what happened: refusal, outage, open rows, waiting rows."""
        # Rows waiting for their window are pending, but nothing is wrong with them.
        pending = self.counts[RowStatus.PENDING] - self.waiting_pending
        attention = (
            any(self.counts[s] for s in NEEDS_ATTENTION if s is not RowStatus.PENDING)
            or pending > 0
            or self.unknown_held > 0
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
                (ExitCode.WAITING_FOR_WINDOW, self.waiting_rows > 0),
            )
            if happened
        )

    def waiting_json(self) -> dict[str, Any] | None:
        """Return the rows that wait, when each window opens, and the command that sends them."""
        if not self.waiting:
            return None
        return {
            "rows": self.waiting_rows,
            "windows": [
                {"opens": described, "at": _iso(self.opens[described]), "rows": rows}
                for described, rows in sorted(self.waiting.items())
            ],
            "command": "bulkimport retry",
        }

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
            "waiting": self.waiting_json(),
            "limited": self.limited,
            "per_minute": self.per_minute,
            "unknown_held": self.unknown_held,
            "dry_run": self.dry_run,
            "duration_seconds": round(self.duration, 3),
            "exit_code": int(self.exit_code),
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="minutes") if moment is not None else None
