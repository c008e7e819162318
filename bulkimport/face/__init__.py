"""The library face: what the commands do, called from Python, with DataFrames in and out.

``import bulkimport`` reaches these lazily (pandas and the stages are imported
when a function is first used). The CLI and this package sit side by side
above the jobs: neither imports the other.
"""

from __future__ import annotations

from bulkimport.face.importing import Engagement, Run, Status, results, status, subscribe
from bulkimport.face.reading import check, read_table

__all__ = [
    "Engagement",
    "Run",
    "Status",
    "check",
    "read_table",
    "results",
    "status",
    "subscribe",
]
