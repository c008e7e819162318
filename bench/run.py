"""`make bench`: measure bulkimport against its references and rewrite BENCHMARKS.md.

    .venv/bin/python bench/run.py [--reps N] [--out bench/out] [--markdown BENCHMARKS.md]

Every measurement runs in a fresh interpreter (``probe.py NAME ARGS``, or
the whole command as a user types it, through ``launch.py``) and a timed
pair (contender, reference) alternates ``--reps`` times; the best time of
each counts, since on a shared machine noise only ever adds time.
Progress goes to stderr; the data lives in ``bench/out`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
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
REFERENCE_PY = RUN_PY.with_name("reference.py")

LATENCY_MS = 100.0
BATCH_SIZE = 100
CONCURRENCY = 4
ENGAGEMENT = 1234
NIGHTS = 30  # ledger growth: nights of one export
NIGHTLY_ROWS = 10  # rows the export gains each night

Result = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """Rows per input; ``--scale`` shrinks them all for a quick trial of the script."""

    check: int = 100_000
    big: int = 1_000_000
    run: int = 20_000
    naive: int = 200
    profile: int = 20_000
    growth: int = 10_000

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
    """What a child process printed, how it ended, its peak memory, wall and CPU time."""

    stdout: str
    stderr: str
    code: int
    peak_mb: float
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def probe(name: str, **arguments: Any) -> Result:
    """Run one probe in a fresh interpreter; add its peak RSS (MB) to the result."""
    encoded = {k: str(v) if isinstance(v, Path) else v for k, v in arguments.items()}
    child = _child([sys.executable, str(PROBE_PY), name, json.dumps(encoded)])
    if child.code != 0:
        raise RuntimeError(f"probe {name} failed ({child.code}):\n{child.stderr}")
    outcome: Result = json.loads(child.stdout.strip().splitlines()[-1])
    outcome["peak_mb"] = child.peak_mb
    return outcome


def _child(command: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> ChildRun:
    """Run a command to its end through launch.py, which reads the command's own peak RSS.

    Its stdin is /dev/null and its output goes to a pipe and a file, so a
    command that would ask a question at a terminal never does.
    """
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder, "peak")
        errors = Path(folder, "stderr")
        with errors.open("w", encoding="utf-8") as stderr:
            finished = subprocess.run(
                [sys.executable, "-S", str(LAUNCH_PY), str(result), *command],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                check=False,
            )
        fields = result.read_text().split()
        peak_kib, code = int(fields[0]), int(fields[1])
        # ru_maxrss is in KiB on Linux.
        return ChildRun(
            finished.stdout,
            errors.read_text(encoding="utf-8"),
            code,
            peak_kib * 1024 / 1e6,
            seconds=float(fields[2]),
            cpu_seconds=float(fields[3]),
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
    log.info("1/8 check on %s CSV rows vs pandas + phonenumbers", f"{rows:,}")
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
    log.info("2/8 check on %s XLSX rows vs calamine floor and openpyxl", f"{rows:,}")
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
    log.info("3/8 run of %s rows at %.0f ms latency vs the bound and a naive loop", rows, 100)
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
    log.info("4/8 peak RSS of `python -m bulkimport check` on two sizes of CSV")
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
    log.info("5/8 ledger cost: run of %s rows at zero latency, with and without writes", rows)
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
    log.info("6/8 start-up of --version, --help and status vs a bare interpreter")
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


# --- whole commands ---------------------------------------------------------------------


def _shown(path: Path) -> str:
    """Return a path as BENCHMARKS.md shows it: from the checkout when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def timed_command(
    command: list[str],
    *,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    ok: tuple[int, ...] = (0, 1),
) -> Result:
    """Run one whole command in a fresh process: its wall and CPU time, peak RSS, exit code."""
    child = _child(command, cwd=cwd, env=env)
    if child.code not in ok:
        raise RuntimeError(f"{' '.join(command)} failed ({child.code}):\n{child.stderr[-4000:]}")
    return {
        "seconds": child.seconds,
        "cpu": child.cpu_seconds,
        "peak_mb": child.peak_mb,
        "code": child.code,
        "stdout": child.stdout[-2000:],
    }


@dataclass
class SandboxCommand:
    """`bulkimport sandbox` serving in its own process: its address, then what it served."""

    port: int
    url: str
    process: subprocess.Popen[bytes]
    cpu_seconds: float = 0.0

    def state(self) -> Result:
        """Return the sandbox's own summary (``GET /_sandbox/state``)."""
        address = f"http://127.0.0.1:{self.port}/_sandbox/state"
        with urllib.request.urlopen(address, timeout=5) as answer:
            state: Result = json.load(answer)
        return state


def _free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port: int = probe_socket.getsockname()[1]
        return port


def _cpu_of(pid: int) -> float:
    """Return a live process's CPU seconds (user + system) from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sandbox_argv(port: int, latency_ms: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bulkimport",
        "sandbox",
        "--port",
        str(port),
        "--latency-ms",
        f"{latency_ms:g}",
        "--engagement",
        str(ENGAGEMENT),
    ]


@contextmanager
def sandbox_command(latency_ms: float, *, attempts: int = 3) -> Iterator[SandboxCommand]:
    """Start `python -m bulkimport sandbox` on a free port, wait until it answers, stop it after."""
    for attempt in range(1, attempts + 1):
        port = _free_port()
        process = subprocess.Popen(
            sandbox_argv(port, latency_ms),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        served = SandboxCommand(port, f"http://127.0.0.1:{port}/api/v1", process)
        if _answers(served):
            break
        _stop(process)
        if attempt == attempts:
            raise RuntimeError("`bulkimport sandbox` did not answer")
    try:
        yield served
    finally:
        served.cpu_seconds = _cpu_of(process.pid)
        _stop(process)


def _answers(served: SandboxCommand, within: float = 30.0) -> bool:
    """Wait until the sandbox answers its state page; False when it exits first or never does."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            return False
        try:
            served.state()
        except OSError:
            time.sleep(0.05)
            continue
        return True
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_has_yes_option() -> bool:
    """Tell whether this `bulkimport run` has a ``--yes`` option (read from its --help)."""
    shown = subprocess.run(
        [sys.executable, "-m", "bulkimport", "run", "--help"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    )
    return re.search(r"(^|[\s,/])--yes(?![\w-])", shown.stdout) is not None


def run_argv(path: Path, url: str, *, ledger: str = "fresh.sqlite", yes: bool = False) -> list[str]:
    """`bulkimport run` as the issue times it: batch 100, concurrency 4, a fresh ledger."""
    return [
        sys.executable,
        "-m",
        "bulkimport",
        "run",
        str(path),
        "--engagement",
        str(ENGAGEMENT),
        "--country",
        workload.COUNTRY,
        "--batch-size",
        str(BATCH_SIZE),
        "--concurrency",
        str(CONCURRENCY),
        "--api-url",
        url,
        "--ledger",
        ledger,
        *(["--yes"] if yes else []),
    ]


def check_argv(path: Path, report_name: str = "r.csv") -> list[str]:
    """`bulkimport check FILE --country PH --report r.csv`, as a user types it."""
    return [
        sys.executable,
        "-m",
        "bulkimport",
        "check",
        str(path),
        "--country",
        workload.COUNTRY,
        "--report",
        report_name,
    ]


def reference_argv(kind: str, path: Path) -> list[str]:
    return [sys.executable, str(REFERENCE_PY), kind, str(path)]


def whole_check(path: Path, scratch: Path) -> Result:
    """Time `bulkimport check FILE --country PH --report r.csv` in a fresh folder."""
    with tempfile.TemporaryDirectory(dir=scratch, prefix="check-") as folder:
        result = timed_command(check_argv(path), cwd=Path(folder))
        report_file = Path(folder, "r.csv")
        result["report_bytes"] = report_file.stat().st_size if report_file.exists() else 0
    return result


def whole_reference(kind: str, path: Path) -> Result:
    """Time the bare script that reads ``path`` with one library (bench/reference.py)."""
    result = timed_command(reference_argv(kind, path), ok=(0,))
    result |= json.loads(result["stdout"].strip().splitlines()[-1])
    return result


def whole_run(path: Path, scratch: Path, latency_ms: float, *, yes: bool) -> Result:
    """Time `bulkimport run` with a fresh ledger against a sandbox in its own process."""
    from bulkimport.sandbox import SANDBOX_TOKEN

    env = {**os.environ, "ENGAGESPARK_API_KEY": SANDBOX_TOKEN}
    with (
        tempfile.TemporaryDirectory(dir=scratch, prefix="run-") as folder,
        sandbox_command(latency_ms) as sandbox,
    ):
        cpu_before = _cpu_of(sandbox.process.pid)
        result = timed_command(run_argv(path, sandbox.url, yes=yes), cwd=Path(folder), env=env)
        state = sandbox.state()
    subscriptions = state.get("subscriptions", {}).get(str(ENGAGEMENT), {})
    result["requests"] = state.get("requests", 0)
    result["subscribed"] = subscriptions.get("total", 0)
    result["sandbox_cpu"] = sandbox.cpu_seconds - cpu_before
    return result


def best_of_commands(reps: int, contenders: dict[str, Any]) -> dict[str, Result]:
    """Alternate whole commands ``reps`` times; keep each one's fastest run."""
    best: dict[str, Result] = {}
    for rep in range(1, reps + 1):
        for label, timed in contenders.items():
            log.info("  %s (%d/%d)", label, rep, reps)
            result = timed()
            log.info("    %.2f s (exit %d)", result["seconds"], result["code"])
            if label not in best or result["seconds"] < best[label]["seconds"]:
                best[label] = result
    return best


def measure_whole(
    plan: Plan, out: Path, inside: dict[str, Result], startup: report.Section
) -> report.Section:
    log.info("7/8 whole commands, each a fresh process: check (CSV, XLSX) and run vs references")
    yes = run_has_yes_option()
    scratch = out / "whole"
    scratch.mkdir(parents=True, exist_ok=True)
    best = best_of_commands(
        plan.reps,
        {
            "check_csv": lambda: whole_check(plan.csv, scratch),
            "reference_csv": lambda: whole_reference("csv", plan.csv),
            "check_xlsx": lambda: whole_check(plan.xlsx, scratch),
            "reference_xlsx": lambda: whole_reference("xlsx", plan.xlsx),
            "run": lambda: whole_run(plan.run_csv, scratch, LATENCY_MS, yes=yes),
        },
    )
    url = "http://127.0.0.1:PORT/api/v1"
    commands = {
        "check_csv": _line(check_argv(plan.csv)),
        "reference_csv": _line(reference_argv("csv", plan.csv)),
        "check_xlsx": _line(check_argv(plan.xlsx)),
        "reference_xlsx": _line(reference_argv("xlsx", plan.xlsx)),
        "sandbox": _line(sandbox_argv(0, LATENCY_MS)).replace("--port 0", "--port PORT"),
        "run": "ENGAGESPARK_API_KEY=sandbox-token "
        + _line(run_argv(plan.run_csv, url, yes=yes))
        + " < /dev/null",
    }
    return report.whole_section(
        best,
        inside,
        startup.details["seconds"],
        commands,
        rows={"check": plan.sizes.check, "run": plan.sizes.run},
        bound=CONCURRENCY * BATCH_SIZE / (LATENCY_MS / 1000),
        latency=LATENCY_MS / 1000,
    )


def _line(command: list[str]) -> str:
    """Return a command as a user would type it in the checkout (``python`` is the venv's)."""
    words = ["python" if command[0] == sys.executable else command[0]]
    for word in command[1:]:
        words.append(_shown(Path(word)) if word.startswith("/") else word)
    return " ".join(words)


def measure_growth(plan: Plan, out: Path) -> report.Section:
    first = plan.sizes.growth
    # A trial at --scale keeps the export's growth in proportion: 10 rows a night per 10,000.
    nightly = max(1, round(NIGHTLY_ROWS * first / Sizes().growth))
    log.info(
        "8/8 ledger growth: %d nights of a %s-row export gaining %d rows a night",
        NIGHTS,
        f"{first:,}",
        nightly,
    )
    result = probe("ledger_growth", folder=out, first=first, nightly=nightly, nights=NIGHTS)
    log.info(
        "  night 1: %s bytes, night %d: %s bytes",
        f"{result['sizes'][0]:,}",
        NIGHTS,
        f"{result['sizes'][-1]:,}",
    )
    return report.growth_section(result)


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
    inside = {
        "csv": sections[0].details["check"],
        "xlsx": sections[1].details["check"],
        "run": sections[2].details["run"],
    }
    sections += [measure_whole(plan, out, inside, sections[5]), measure_growth(plan, out)]
    machine.finish(time.perf_counter() - started, reps)
    markdown.write_text(report.render(machine, sections), encoding="utf-8")
    log.info("wrote %s in %.0f s", markdown, time.perf_counter() - started)
    for section in sections:
        for verdict in section.verdicts:
            log.info("%s %d. %s", verdict.result, section.number, verdict.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
