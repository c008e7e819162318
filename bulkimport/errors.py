"""Typed errors and the exit codes they map to.

Core code raises these; only :mod:`bulkimport.cli` turns them into a message
and an exit code. Every message is one sentence that says what to do.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    """Exit codes a scheduler can act on (documented in the README)."""

    OK = 0  # everything subscribed or skipped
    ROWS_NEED_ATTENTION = 1  # finished; some rows invalid, duplicate, failed or unknown
    USAGE = 2  # usage or input error: nothing was sent
    API_REFUSED = 3  # the API refused the run: key, funds, organization, engagement
    LOCKED = 4  # another run holds the ledger
    API_UNAVAILABLE = 5  # the API stayed unavailable; `bulkimport retry` later
    WAITING_FOR_WINDOW = 6  # nothing is wrong: the rest waits for its send window


# Worst first: a command or night made of several parts exits with the worst of
# their codes. 2 (usage) and 4 (locked) mean the work never started.
SEVERITY = (
    ExitCode.API_REFUSED,
    ExitCode.API_UNAVAILABLE,
    ExitCode.ROWS_NEED_ATTENTION,
    ExitCode.WAITING_FOR_WINDOW,
    ExitCode.OK,
)


def worst(codes: Iterable[ExitCode]) -> ExitCode:
    """Return the most serious of some exit codes: 3 > 5 > 1 > 6 > 0 (OK when there are none)."""
    return min(codes, key=SEVERITY.index, default=ExitCode.OK)


class BulkImportError(Exception):
    """Base of every error the user can act on."""

    exit_code: ExitCode = ExitCode.USAGE


class InputError(BulkImportError):
    """A file, option or configuration that cannot be used as given."""

    exit_code = ExitCode.USAGE


class LedgerError(InputError):
    """The ledger file cannot be used (not a ledger, newer schema, unreadable)."""


class LedgerLocked(BulkImportError):
    """Another process holds the ledger's lock."""

    exit_code = ExitCode.LOCKED


class LedgerBusy(LedgerError):
    """Another program holds a write transaction on the ledger (SQLite is busy)."""

    exit_code = ExitCode.LOCKED


class RefusalCause(StrEnum):
    """Why a run cannot go on until a person fixes something."""

    KEY = "key"  # 401: the API key was refused
    FUNDS = "funds"  # 402: no balance left
    ACCESS = "access"  # 403: wrong organization or no permission
    ENGAGEMENT = "engagement"  # the API's own 404: no such engagement
    SETTING = "setting"  # wrong API URL, a TLS failure, a 3xx or a 404 that is not the API's


class ApiRefused(BulkImportError):
    """The API (or the way to it) refused the whole run: retrying will not help."""

    exit_code = ExitCode.API_REFUSED

    def __init__(
        self, message: str, status: int | None = None, cause: RefusalCause | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.cause = cause


class ApiUnavailable(BulkImportError):
    """The API kept failing after retries; the run stopped cleanly."""

    exit_code = ExitCode.API_UNAVAILABLE
