"""`make bench`: measure bulkimport against its references and rewrite BENCHMARKS.md.

    .venv/bin/python bench/run.py [--reps N] [--out bench/out] [--markdown BENCHMARKS.md]

Every measurement runs in a fresh interpreter (``probe.py NAME ARGS``) and
a timed pair (contender, reference) alternates ``--reps`` times; the best
time of each counts, since on a shared machine noise only ever adds time.
Progress goes to stderr; the data lives in ``bench/out`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import report
import workload

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parent.parent
RUN_PY = Path(__file__).resolve()
LAUNCH_PY = RUN_PY.with_name("launch.py")
PROBE_PY = RUN_PY.with_name("probe.py")

LATENCY_MS = 100.0
BATCH_SIZE = 100
CONCURRENCY = 4

Result = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """Rows per input; ``--scale`` shrinks them all for a quick trial of the script."""

    check: int = 100_000
    big: int = 1_000_000
    run: int = 20_000
    naive: int = 200
    profile: int = 20_000

    def scaled(self, factor: float) -> Sizes:
        return Sizes(*(max(10, round(n * factor)) for n in astuple(self)))


@dataclass(frozen=True)
class Plan:
    """The inputs, their sizes and how often each timed contender runs."""

    sizes: Sizes
    reps: int
    csv: Path
    big_csv: Path
    xlsx: Path
    run_csv: Path
    profile_csv: Path
    profile_xlsx: Path


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="timed runs of each contender (3)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every row count (quick trial: 0.02)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="bench %(asctime)s %(message)s", stream=sys.stderr
    )
    return bench(Sizes().scaled(args.scale), max(args.reps, 1), args.out, args.markdown)


@dataclass(frozen=True)
class ChildRun:
    """What a child process printed, how it ended, and its peak resident memory."""

    stdout: str
    stderr: str
    code: int
    peak_mb: float


def probe(name: str, **arguments: Any) -> Result:
    """Run one probe in a fresh interpreter; add its peak RSS (MB) to the result."""
    encoded = {k: str(v) if isinstance(v, Path) else v for k, v in arguments.items()}
    child = _child([sys.executable, str(PROBE_PY), name, json.dumps(encoded)])
    if child.code != 0:
        raise RuntimeError(f"probe {name} failed ({child.code}):\n{child.stderr}")
    outcome: Result = json.loads(child.stdout.strip().splitlines()[-1])
    outcome["peak_mb"] = child.peak_mb
    return outcome


def _child(command: list[str]) -> ChildRun:
    """Run a command to its end through launch.py, which reads the command's own peak RSS."""
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder, "peak")
        errors = Path(folder, "stderr")
        with errors.open("w", encoding="utf-8") as stderr:
            finished = subprocess.run(
                [sys.executable, "-S", str(LAUNCH_PY), str(result), *command],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                check=False,
            )
        peak_kib, code = (int(field) for field in result.read_text().split())
        # ru_maxrss is in KiB on Linux.
        return ChildRun(
            finished.stdout, errors.read_text(encoding="utf-8"), code, peak_kib * 1024 / 1e6
        )


def best_of(reps: int, contenders: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Result]:
    """Alternate the contenders ``reps`` times; keep each one's fastest result."""
    best: dict[str, Result] = {}
    for rep in range(1, reps + 1):
        for label, (name, arguments) in contenders.items():
            log.info("  %s (%d/%d)", label, rep, reps)
            result = probe(name, **arguments)
            log.info("    %.2f s", result["seconds"])
            if label not in best or result["seconds"] < best[label]["seconds"]:
                best[label] = result
    return best


def make_plan(sizes: Sizes, reps: int, out: Path) -> Plan:
    """Write the inputs that are missing and return the plan."""
    out.mkdir(parents=True, exist_ok=True)
    log.info("data: generating what is missing in %s (seed %d)", out, workload.SEED)
    return Plan(
        sizes,
        reps,
        csv=workload.csv_file(out, sizes.check),
        big_csv=workload.csv_file(out, sizes.big),
        xlsx=workload.xlsx_file(out, sizes.check),
        run_csv=workload.csv_file(out, sizes.run),
        profile_csv=workload.csv_file(out, sizes.profile),
        profile_xlsx=workload.xlsx_file(out, sizes.profile),
    )


def measure_csv(plan: Plan) -> report.Section:
    rows = plan.sizes.check
    log.info("1/6 check on %s CSV rows vs pandas + phonenumbers", f"{rows:,}")
    best = best_of(
        plan.reps,
        {
            "check": ("check", {"path": plan.csv}),
            "floor": ("csv_floor", {"path": plan.csv}),
        },
    )
    section = report.csv_section(best, rows)
    if not section.passed:
        log.info("  profiling check on %s rows", f"{plan.sizes.profile:,}")
        section = section.with_profile(probe("profile_check", path=plan.profile_csv))
    return section


def measure_xlsx(plan: Plan) -> report.Section:
    rows = plan.sizes.check
    log.info("2/6 check on %s XLSX rows vs calamine floor and openpyxl", f"{rows:,}")
    best = best_of(
        plan.reps,
        {
            "check": ("check", {"path": plan.xlsx}),
            "floor": ("calamine_floor", {"path": plan.xlsx}),
        },
    )
    best |= best_of(1, {"openpyxl": ("openpyxl_read", {"path": plan.xlsx})})
    section = report.xlsx_section(best, rows)
    if not section.passed:
        log.info("  profiling check on %s rows", f"{plan.sizes.profile:,}")
        section = section.with_profile(probe("profile_check", path=plan.profile_xlsx))
    return section


def measure_run(plan: Plan) -> report.Section:
    rows = plan.sizes.run
    log.info("3/6 run of %s rows at %.0f ms latency vs the bound and a naive loop", rows, 100)
    sending = {"path": plan.run_csv, "latency_ms": LATENCY_MS}
    best = best_of(plan.reps, {"run": ("run", {**sending, "ledger_kind": "file"})})
    best |= best_of(1, {"naive": ("naive", {**sending, "rows": plan.sizes.naive})})
    bound = CONCURRENCY * BATCH_SIZE / (LATENCY_MS / 1000)
    section = report.run_section(best, rows, bound=bound, latency=LATENCY_MS / 1000)
    if not section.passed:
        log.info("  profiling run (main thread) on %s rows", f"{rows:,}")
        section = section.with_profile(probe("profile_run", **sending, ledger_kind="file"))
    return section


def measure_memory(plan: Plan) -> report.Section:
    log.info("4/6 peak RSS of `python -m bulkimport check` on two sizes of CSV")
    peaks: dict[int, Result] = {}
    for rows, path in ((plan.sizes.check, plan.csv), (plan.sizes.big, plan.big_csv)):
        command = [sys.executable, "-m", "bulkimport", "check", str(path), "--country", "PH"]
        log.info("  %s rows: %s", f"{rows:,}", " ".join(["python", *command[1:]]))
        started = time.perf_counter()
        child = _child(command)
        seconds = time.perf_counter() - started
        if child.code not in (0, 1):
            raise RuntimeError(f"check failed ({child.code}):\n{child.stderr}")
        log.info("    %.0f MB in %.1f s", child.peak_mb, seconds)
        peaks[rows] = {"peak_mb": child.peak_mb, "seconds": seconds}
    section = report.memory_section(peaks, small=plan.sizes.check, big=plan.sizes.big)
    if not section.passed:
        log.info("  tracing what stays alive through a %s-row check", f"{plan.sizes.check:,}")
        section = section.with_profile(probe("memory_sites", path=plan.csv))
    return section


def measure_ledger(plan: Plan) -> report.Section:
    rows = plan.sizes.run
    log.info("5/6 ledger cost: run of %s rows at zero latency, with and without writes", rows)
    sending = {"path": plan.run_csv, "latency_ms": 0.0}
    # Short, noisy runs: one more repetition keeps a single slow run from deciding.
    best = best_of(
        plan.reps + 1,
        {kind: ("run", {**sending, "ledger_kind": kind}) for kind in ("file", "memory", "rows")},
    )
    section = report.ledger_section(best, rows)
    if not section.passed:
        log.info("  profiling run (main thread) at zero latency")
        section = section.with_profile(probe("profile_run", **sending, ledger_kind="file"))
    return section


def measure_startup(plan: Plan, out: Path) -> report.Section:
    log.info("6/6 start-up of --version, --help and status vs a bare interpreter")
    entry = Path(sys.executable).with_name("bulkimport")
    ledger = out / "startup-ledger.sqlite"
    if not ledger.exists():
        _make_startup_ledger(ledger, plan.csv)
    commands = {
        "version": [str(entry), "--version"],
        "help": [str(entry), "--help"],
        "status": [str(entry), "status", "--ledger", str(ledger)],
    }
    contenders = {"bare": [sys.executable, "-c", "pass"], **commands}
    best: dict[str, float] = {}
    for _ in range(max(plan.reps, 5)):
        for label, command in contenders.items():
            started = time.perf_counter()
            subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
            seconds = time.perf_counter() - started
            best[label] = min(best.get(label, seconds), seconds)
    for label, seconds in best.items():
        log.info("  %s: %.3f s", label, seconds)
    shown = {label: "bulkimport " + " ".join(c[1:2]) for label, c in commands.items()}
    shown["status"] = "bulkimport status"
    return report.startup_section(best, shown)


def _make_startup_ledger(ledger: Path, source: Path) -> None:
    """A ledger holding one finished run, for `status` to read."""
    from bulkimport.ledger.store import Ledger

    with Ledger.open(ledger) as book:
        run = book.start_run("run", 1234, {"batch_size": BATCH_SIZE})
        book.add_source(run, 1234, str(source), "0" * 64, "", ["Name", "Mobile"])
        book.finish_run(run, 0)


def bench(sizes: Sizes, reps: int, out: Path, markdown: Path) -> int:
    """Measure everything, write ``markdown`` and log each verdict."""
    started = time.perf_counter()
    machine = report.machine()
    plan = make_plan(sizes, reps, out)
    sections = [
        measure_csv(plan),
        measure_xlsx(plan),
        measure_run(plan),
        measure_memory(plan),
        measure_ledger(plan),
        measure_startup(plan, out),
    ]
    machine.finish(time.perf_counter() - started, reps)
    markdown.write_text(report.render(machine, sections), encoding="utf-8")
    log.info("wrote %s in %.0f s", markdown, time.perf_counter() - started)
    for section in sections:
        for verdict in section.verdicts:
            log.info("%s %d. %s", verdict.result, section.number, verdict.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
