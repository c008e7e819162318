"""Subscribe the people in a spreadsheet to an engageSPARK engagement.

``bulkimport.__version__`` is read from the installed package's metadata when
first asked for, so that importing the package stays instant.
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("bulkimport")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'bulkimport' has no attribute {name!r}")
