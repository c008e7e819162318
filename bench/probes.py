"""One measurement each, run in a fresh interpreter by probe.py: each returns a JSON-able dict.

A fresh process per measurement keeps one measurement's heap, caches and
garbage from slowing the next, and lets the parent read its peak memory.
"""

from __future__ import annotations

import csv
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import baselines
import profiles
from ledgers import open_ledger
from workload import COUNTRY, HEADER, people

from bulkimport.jobs.check import check_files
from bulkimport.jobs.importing import run_import
from bulkimport.jobs.sending import Sender
from bulkimport.ledger.store import Ledger
from bulkimport.rows.phones import PhonePolicy
from bulkimport.rows.prepare import ImportOptions, checked_rows, open_sources
from bulkimport.sandbox import SANDBOX_TOKEN, Sandbox
from bulkimport.send.client import AttemptResult, EngageSparkClient
from bulkimport.settings import SendSettings

PROBE_PY = Path(__file__).with_name("probe.py")
ENGAGEMENT = 1234
OPTIONS = ImportOptions(phones=PhonePolicy(country=COUNTRY))

Result = dict[str, Any]


def _warm_up() -> None:
    """Load phonenumbers' metadata for the country, which every contender needs once."""
    baselines.phone_floor(["0917 123 4567", "+63 917 123 4567"])


def _timed(work: Callable[[], Result]) -> Result:
    """Run ``work``; add its wall time and the CPU time of this process and of its workers."""
    _warm_up()
    own, workers = _cpu_seconds(), _cpu_seconds(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = work()
    result["seconds"] = time.perf_counter() - started
    result["cpu_main"] = _cpu_seconds() - own
    # Children count once they are reaped: bulkimport's pool has shut down by now.
    result["cpu_workers"] = _cpu_seconds(resource.RUSAGE_CHILDREN) - workers
    return result


def check(path: Path) -> Result:
    """`check` through check_files, as the CLI calls it, without a report file."""

    def work() -> Result:
        summary = check_files([path], OPTIONS)
        return {"rows": summary.tally.rows, "verdicts": dict(summary.tally.verdicts)}

    return _timed(work)


def csv_floor(path: Path) -> Result:
    return _timed(lambda: {"valid": baselines.csv_floor(path)})


def calamine_floor(path: Path) -> Result:
    return _timed(lambda: {"valid": baselines.calamine_floor(path)})


def openpyxl_read(path: Path) -> Result:
    return _timed(lambda: {"rows": baselines.openpyxl_read(path)})


# --- sending ----------------------------------------------------------------------------


def serve_sandbox(latency_ms: float) -> None:
    """Serve a sandbox until stdin closes: print its URL, then the CPU seconds it served for."""
    with Sandbox(latency_ms=latency_ms, engagements=(ENGAGEMENT,)) as sandbox:
        ready = _cpu_seconds()
        print(sandbox.url, flush=True)
        sys.stdin.read()
    print(_cpu_seconds() - ready, flush=True)


def _cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


@dataclass
class ServedSandbox:
    """A sandbox process: its URL, and the CPU time it spent serving once it has stopped."""

    url: str
    cpu_seconds: float = 0.0


@contextmanager
def sandbox_process(latency_ms: float) -> Iterator[ServedSandbox]:
    """Yield a sandbox serving in its own process, as a remote API would."""
    process = subprocess.Popen(
        [sys.executable, str(PROBE_PY), "sandbox", str(latency_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    served = ServedSandbox(process.stdout.readline().strip())
    try:
        if not served.url.startswith("http"):
            raise RuntimeError("the sandbox process did not start")
        yield served
    finally:
        process.stdin.close()
        try:
            served.cpu_seconds = float(process.stdout.readline() or 0)
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


class TimedClient(EngageSparkClient):
    """The real client, noting when the first subscription left and the last one returned."""

    first_sent: float | None = None
    last_answered: float = 0.0
    posts: int = 0

    def post_subscription(
        self, engagement_id: int, contacts: Sequence[Mapping[str, Any]], *, reuse: bool
    ) -> AttemptResult:
        now = time.perf_counter()
        if self.first_sent is None:
            self.first_sent = now
        result = super().post_subscription(engagement_id, contacts, reuse=reuse)
        self.last_answered = max(self.last_answered, time.perf_counter())
        self.posts += 1
        return result


def run(
    path: Path, latency_ms: float, ledger_kind: str, *, batch_size: int = 100, concurrency: int = 4
) -> Result:
    """`run` through run_import against a sandbox process, timed end to end and by phase."""
    _warm_up()
    with (
        sandbox_process(latency_ms) as sandbox,
        tempfile.TemporaryDirectory(dir=path.parent) as folder,
    ):
        url = sandbox.url
        client = TimedClient(SANDBOX_TOKEN, url)
        ledger = open_ledger(ledger_kind, Path(folder))
        settings = SendSettings(
            ENGAGEMENT, api_url=url, batch_size=batch_size, concurrency=concurrency
        )
        started = time.perf_counter()
        summary = run_import([path], OPTIONS, settings, ledger, Sender(client))
        ended = time.perf_counter()
        pragmas = _pragmas(ledger)
        ledger.close()
        client.close()
    first = client.first_sent or ended
    return {
        "seconds": ended - started,
        "before_first_post": first - started,
        "sending": client.last_answered - first,
        "after_last_answer": ended - client.last_answered,
        "posts": client.posts,
        "counts": dict(summary.counts),
        "sandbox_cpu": sandbox.cpu_seconds,
        "ledger": pragmas,
    }


SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def _pragmas(ledger: Ledger) -> str:
    """Return the ledger connection's journal mode and sync level, as the run left them."""
    db = ledger._db
    journal = str(db.execute("PRAGMA journal_mode").fetchone()[0]).upper()
    synchronous = SYNCHRONOUS.get(int(db.execute("PRAGMA synchronous").fetchone()[0]), "?")
    return f"{journal}, synchronous={synchronous}"


def naive(path: Path, latency_ms: float, rows: int) -> Result:
    """The naive one-contact-per-request loop against a sandbox process."""
    _warm_up()
    with sandbox_process(latency_ms) as sandbox:
        started = time.perf_counter()
        sent = baselines.naive_send(path, sandbox.url, SANDBOX_TOKEN, ENGAGEMENT, rows)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": sent}


def ledger_growth(folder: Path, first: int, nightly: int, nights: int) -> Result:
    """Import a growing export night after night; return the ledger's size after each night.

    Night 1 runs `first` rows; every later night runs the same file with
    ``nightly`` more rows appended (the same rows first, in the same order), as
    a cumulative export comes back. Each night opens the ledger afresh, as a
    new `bulkimport run` does, against one sandbox process answering at once.
    Sizes are taken with the write-ahead log checkpointed into the file.
    """
    _warm_up()
    rows = list(people(first + nightly * (nights - 1)))
    with (
        sandbox_process(0.0) as sandbox,
        tempfile.TemporaryDirectory(dir=Path(folder)) as top,
    ):
        export, ledger_path = Path(top, "export.csv"), Path(top, "ledger.sqlite")
        settings = SendSettings(ENGAGEMENT, api_url=sandbox.url, batch_size=100, concurrency=4)
        sizes: list[int] = []
        seconds: list[float] = []
        counts: list[dict[str, int]] = []
        for night in range(1, nights + 1):
            with export.open("w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(HEADER)
                writer.writerows(rows[: first + nightly * (night - 1)])
            client = EngageSparkClient(SANDBOX_TOKEN, sandbox.url)
            started = time.perf_counter()
            with Ledger.open(ledger_path) as ledger:
                summary = run_import([export], OPTIONS, settings, ledger, Sender(client))
            seconds.append(time.perf_counter() - started)
            client.close()
            counts.append(dict(summary.counts))
            sizes.append(_checkpointed_size(ledger_path))
    return {
        "first": first,
        "nightly": nightly,
        "nights": nights,
        "sizes": sizes,
        "seconds": seconds,
        "counts": [counts[0], counts[-1]],
        "last_rows": first + nightly * (nights - 1),
    }


def _checkpointed_size(path: Path) -> int:
    """Return the ledger's bytes on disk once its write-ahead log is folded into the file."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


# --- profiles ---------------------------------------------------------------------------


def profile_check(path: Path) -> Result:
    """Where `check` spends its time: sampled, then under cProfile."""
    _warm_up()
    return {
        "sampled": profiles.sampled(lambda: check_files([path], OPTIONS)),
        "cprofile": profiles.profiled(lambda: check_files([path], OPTIONS)),
    }


def profile_run(path: Path, latency_ms: float, ledger_kind: str) -> Result:
    """Where run_import's calling thread spends its wall time (checking, ledger, waiting).

    cProfile only: a CPU sampler would charge the send threads' CPU to wherever the
    calling thread happens to be. The sandbox starts before the profiled work.
    """
    _warm_up()
    with (
        sandbox_process(latency_ms) as sandbox,
        tempfile.TemporaryDirectory(dir=path.parent) as top,
    ):
        url = sandbox.url
        settings = SendSettings(ENGAGEMENT, api_url=url, batch_size=100, concurrency=4)

        def once(folder: str) -> None:
            client = EngageSparkClient(SANDBOX_TOKEN, url)
            ledger = open_ledger(ledger_kind, Path(top, folder))
            try:
                run_import([path], OPTIONS, settings, ledger, Sender(client))
            finally:
                ledger.close()
                client.close()

        Path(top, "cprofile").mkdir()
        return {"cprofile": profiles.profiled(lambda: once("cprofile"))}


def memory_sites(path: Path, top: int = 8) -> Result:
    """Return what is alive when `check` has just checked the last row of a CSV (tracemalloc).

    The snapshot is taken while the row generator still holds everything it
    keeps across rows, which is what grows with the file.
    """
    with path.open(encoding="utf-8") as source:
        expected = sum(1 for _ in source) - 1
    tracemalloc.start()
    snapshot = None
    with open_sources([path], OPTIONS) as sources:
        for index, _ in enumerate(checked_rows(sources, OPTIONS), start=1):
            if index == expected:
                snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    if snapshot is None:
        return {"rows": expected, "total_mb": 0.0, "sites": []}
    statistics = snapshot.statistics("lineno")
    root = str(Path(__file__).resolve().parent.parent)
    return {
        "rows": expected,
        "total_mb": sum(stat.size for stat in statistics) / 1e6,
        "sites": [
            {
                "site": f"{str(stat.traceback[0].filename).removeprefix(root + '/')}:"
                f"{stat.traceback[0].lineno}",
                "mb": stat.size / 1e6,
                "blocks": stat.count,
            }
            for stat in statistics[:top]
        ],
    }
