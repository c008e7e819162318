"""Two views of where a piece of work spends its time, for the misses in BENCHMARKS.md.

The sampler reads the main thread's stack every millisecond of CPU time (the
``ITIMER_PROF`` signal), so it adds almost nothing and its shares are true;
cProfile counts every call, which slows small Python functions far more than C
code, but it names every function with its number of calls.
"""

from __future__ import annotations

import cProfile
import pstats
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

Result = dict[str, Any]
INTERVAL = 0.001
TOP = 12


def _place(filename: str) -> str | None:
    """Return a library's name, or ``bulkimport/<module>``, or None for the stdlib and C."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    if "bulkimport" in parts:
        return "bulkimport/" + parts[-1]
    return None


class Sampler:
    """Counts, per sample, the innermost library or module and the innermost bulkimport step."""

    def __init__(self) -> None:
        self.samples = 0
        self.areas: Counter[str] = Counter()
        self.steps: Counter[str] = Counter()

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        self.samples += 1
        area = step = None
        while frame is not None and step is None:
            place = _place(frame.f_code.co_filename)
            if place is not None:
                area = area or place
                if place.startswith("bulkimport/"):
                    step = f"{place}:{frame.f_code.co_name}"
            frame = frame.f_back
        # Time in C code and the stdlib counts for the nearest caller that is ours or a library's.
        self.areas[area or "other (stdlib, interpreter)"] += 1
        self.steps[step or "outside bulkimport"] += 1

    def run(self, work: Callable[[], object]) -> float:
        """Run ``work`` while sampling; return its wall time."""
        previous = signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, INTERVAL, INTERVAL)
        started = time.perf_counter()
        try:
            work()
        finally:
            seconds = time.perf_counter() - started
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            signal.signal(signal.SIGPROF, previous)
        return seconds

    def shares(self, counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, n / max(self.samples, 1)) for name, n in counter.most_common(TOP)]


def sampled(work: Callable[[], object]) -> Result:
    """Return the sampled shares of CPU time by library/module and by bulkimport step."""
    sampler = Sampler()
    seconds = sampler.run(work)
    return {
        "seconds": seconds,
        "samples": sampler.samples,
        "areas": sampler.shares(sampler.areas),
        "steps": sampler.shares(sampler.steps),
    }


def _short(filename: str) -> str:
    if filename == "~":
        return ""
    parts = Path(filename).parts
    for marker in ("site-packages", "bulkimport"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + (marker == "site-packages") :])
    return Path(filename).name


def profiled(work: Callable[[], object]) -> Result:
    """Return cProfile's view of ``work`` on the calling thread.

    ``functions``: the top functions by own time. ``steps``: bulkimport's
    functions by cumulative time, i.e. the calling thread's wall time inside
    each, waits included (cProfile's clock is the wall clock), which is what
    a pipeline whose other threads do the sending needs.
    """
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.runcall(work)
    seconds = time.perf_counter() - started
    entries: dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
    entries = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = float(sum(entry[2] for entry in entries.values())) or 1.0
    ranked = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:TOP]
    ours = sorted(
        (
            (f"bulkimport/{Path(filename).name}:{name}", calls, cumulative)
            for (filename, _, name), (_, calls, _, cumulative, _) in entries.items()
            if str(_place(filename)).startswith("bulkimport/")
        ),
        key=lambda step: step[2],
        reverse=True,
    )
    return {
        "seconds": seconds,
        "functions": [
            {
                "function": f"{_short(filename)}:{line}({name})",
                "calls": calls,
                "own": own / total,
                "cumulative": cumulative / total,
            }
            for (filename, line, name), (_, calls, own, cumulative, _) in ranked
        ],
        "steps": [
            {"step": step, "calls": calls, "cumulative": cumulative / total}
            for step, calls, cumulative in ours[: TOP * 2]
        ],
    }
