"""Typed errors and the exit codes they map to.

Core code raises these; only :mod:`bulkimport.cli` turns them into a message
and an exit code. Every message is one sentence that says what to do.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes a scheduler can act on (documented in the README)."""

    OK = 0  # everything subscribed or skipped
    ROWS_NEED_ATTENTION = 1  # finished; some rows invalid, duplicate, failed or unknown
    USAGE = 2  # usage or input error: nothing was sent
    API_REFUSED = 3  # the API refused the run: key, funds, organization, engagement
    LOCKED = 4  # another run holds the ledger
    API_UNAVAILABLE = 5  # the API stayed unavailable; `bulkimport retry` later


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


class ApiRefused(BulkImportError):
    """The API refused the whole run (401, 402, 403, 404): retrying will not help."""

    exit_code = ExitCode.API_REFUSED

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ApiUnavailable(BulkImportError):
    """The API kept failing after retries; the run stopped cleanly."""

    exit_code = ExitCode.API_UNAVAILABLE
