"""Subscribe the people in a spreadsheet to an engageSPARK engagement.

From Python::

    import bulkimport

    frame = bulkimport.read_table("applicants.xlsx")      # every cell as text
    checked = bulkimport.check(frame, country="PH")       # status, phone, reason, problem
    results = bulkimport.subscribe(frame, engagement=1234, country="PH")

The functions do what the commands of the same names do, with the same
guarantees, and raise the errors below (each carries the sentence the CLI
prints). Importing the package stays light: pandas and the import stages are
imported when a function is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bulkimport.errors import (
    ApiRefused,
    ApiUnavailable,
    BulkImportError,
    InputError,
    LedgerBusy,
    LedgerError,
    LedgerLocked,
)

if TYPE_CHECKING:
    from bulkimport.face import (
        Engagement,
        Run,
        Status,
        check,
        read_table,
        results,
        status,
        subscribe,
    )

# The one place the version is written: pyproject.toml reads it from here.
__version__ = "0.1.0"

_FACE = (
    "Engagement",
    "Engagement",
    "Run",
    "Status",
    "Status",
    "check",
    "read_table",
    "results",
    "status",
    "subscribe",
)

__all__ = [
    "ApiRefused",
    "ApiUnavailable",
    "BulkImportError",
    "Engagement",
    "InputError",
    "LedgerBusy",
    "LedgerError",
    "LedgerLocked",
    "Run",
    "Status",
    "__version__",
    "check",
    "read_table",
    "results",
    "status",
    "subscribe",
]


def __getattr__(name: str) -> Any:
    """Import the library face (and with it pandas) when one of its names is first used."""
    if name in _FACE:
        value = getattr(importlib.import_module("bulkimport.face"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
