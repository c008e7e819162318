"""BENCHMARKS.md: the machine, each figure as a ratio to its reference, PASS or MISS, and why."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import findings

Result = dict[str, Any]
LIBRARIES = (
    "bulkimport",
    "pandas",
    "numpy",
    "pyarrow",
    "phonenumbers",
    "python-calamine",
    "openpyxl",
    "lxml",
    "requests",
    "urllib3",
)


@dataclass(frozen=True)
class Verdict:
    """One target: a measured ratio against its limit (at most, or at least)."""

    what: str
    ratio: float
    limit: float
    at_most: bool

    @property
    def passed(self) -> bool:
        return self.ratio <= self.limit if self.at_most else self.ratio >= self.limit

    @property
    def result(self) -> str:
        return "PASS" if self.passed else "MISS"

    @property
    def target(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {_num(self.limit)}"

    def missed_by(self) -> str:
        """Return how far the ratio is from its limit, in words ("" when it passes)."""
        if self.passed:
            return ""
        if self.at_most:
            return f"{(self.ratio / self.limit - 1) * 100:.0f}% over the limit"
        return f"{(1 - self.ratio / self.limit) * 100:.0f}% short of the target"

    def describe(self) -> str:
        miss = f", {self.missed_by()}" if not self.passed else ""
        return f"{self.what} = {_num(self.ratio)} (target {self.target}{miss})"


@dataclass(frozen=True)
class Section:
    """One measurement: its table, its verdicts and, when it misses, why."""

    number: int
    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    verdicts: list[Verdict]
    how: str
    details: Result = field(default_factory=dict)
    profile: Result | None = None

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    def with_profile(self, profile: Result) -> Section:
        return replace(self, profile=profile)


@dataclass
class Machine:
    """Where and when the benchmark ran."""

    facts: list[tuple[str, str]]
    load_before: tuple[float, float, float]
    total_seconds: float = 0.0
    reps: int = 0
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def finish(self, seconds: float, reps: int) -> None:
        self.total_seconds = seconds
        self.reps = reps
        self.load_after = os.getloadavg()


def machine() -> Machine:
    """Return the CPU, cores, memory, OS, Python and library versions of this machine."""
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    facts = [
        ("CPU", _cpu_model()),
        ("Cores", f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable by this process)"),
        ("RAM", _memory_total()),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {sys.version.split()[0]}"),
        ("SQLite", sqlite3.sqlite_version),
        ("Libraries", ", ".join(versions)),
        ("Commit", _commit()),
        ("Date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    return Machine(facts, os.getloadavg())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _commit() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{found.stdout.strip()} (plus any uncommitted changes in the working tree)"


# --- the sections -----------------------------------------------------------------------


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}x"
    return f"{value:.2f}x"


def _s(seconds: float) -> str:
    return f"{seconds:.2f} s"


def _cpu(result: Result) -> str:
    main, workers = result.get("cpu_main", 0.0), result.get("cpu_workers", 0.0)
    return f"{main:.2f} s" + (f" + {workers:.2f} s" if workers >= 0.01 else "")


def _rate(rows: float, seconds: float) -> str:
    return f"{rows / seconds:,.0f}"


def csv_section(best: dict[str, Result], rows: int) -> Section:
    check, floor = best["check"], best["floor"]
    ratio = check["seconds"] / floor["seconds"]
    return Section(
        1,
        f"`check` on {rows:,} CSV rows",
        ("contender", "time", "rows/s", "CPU: main + workers", "peak RSS", "ratio to floor"),
        [
            (
                "`check` (check_files, no report)",
                _s(check["seconds"]),
                _rate(rows, check["seconds"]),
                _cpu(check),
                f"{check['peak_mb']:.0f} MB",
                _num(ratio),
            ),
            (
                "floor: pandas `read_csv(dtype=str)` + parse/is_valid/format per number",
                _s(floor["seconds"]),
                _rate(rows, floor["seconds"]),
                _cpu(floor),
                f"{floor['peak_mb']:.0f} MB",
                "1.00x",
            ),
        ],
        [Verdict("check time / floor time", ratio, 1.2, at_most=True)],
        "Both read the same file; `check` also maps columns, validates names, emails and "
        "groups, finds duplicates and counts problems. Verdicts of `check`: " + _verdicts(check),
        details={"check": check, "floor": floor, "rows": rows},
    )


def xlsx_section(best: dict[str, Result], rows: int) -> Section:
    check, floor, openpyxl = best["check"], best["floor"], best["openpyxl"]
    ratio = check["seconds"] / floor["seconds"]
    speedup = openpyxl["seconds"] / check["seconds"]
    return Section(
        2,
        f"`check` on {rows:,} XLSX rows",
        ("contender", "time", "rows/s", "CPU: main + workers", "peak RSS", "ratio"),
        [
            (
                "`check` (check_files, no report)",
                _s(check["seconds"]),
                _rate(rows, check["seconds"]),
                _cpu(check),
                f"{check['peak_mb']:.0f} MB",
                f"{_num(ratio)} the floor",
            ),
            (
                "floor: python-calamine `iter_rows` + parse/is_valid/format per number",
                _s(floor["seconds"]),
                _rate(rows, floor["seconds"]),
                _cpu(floor),
                f"{floor['peak_mb']:.0f} MB",
                "1.00x",
            ),
            (
                "openpyxl `load_workbook(read_only=True)`, reading every row (no validation)",
                _s(openpyxl["seconds"]),
                _rate(rows, openpyxl["seconds"]),
                _cpu(openpyxl),
                f"{openpyxl['peak_mb']:.0f} MB",
                f"`check` is {_num(speedup)} faster",
            ),
        ],
        [
            Verdict("check time / calamine floor time", ratio, 1.2, at_most=True),
            Verdict("openpyxl read time / check time", speedup, 5.0, at_most=False),
        ],
        "The openpyxl reference only reads the cells; it does not validate a single "
        "number, so it is the cheapest possible openpyxl-based `check`. Verdicts of `check`: "
        + _verdicts(check),
        details={"check": check, "floor": floor, "openpyxl": openpyxl, "rows": rows},
    )


def run_section(best: dict[str, Result], rows: int, bound: float, latency: float) -> Section:
    run, naive = best["run"], best["naive"]
    rate = rows / run["seconds"]
    naive_rate = naive["rows"] / naive["seconds"]
    sending_rate = rows / run["sending"] if run["sending"] > 0 else 0.0
    return Section(
        3,
        f"`run` of {rows:,} rows against the sandbox (100 ms per request, batch 100, "
        "concurrency 4)",
        ("contender", "time", "rows/s", "ratio"),
        [
            (
                "`run` end to end (run_import, real ledger file)",
                _s(run["seconds"]),
                f"{rate:,.0f}",
                f"{rate / bound:.0%} of the bound",
            ),
            (
                "… of which: before the first request (read, check, record)",
                _s(run["before_first_post"]),
                "",
                "",
            ),
            (
                "… of which: first request to last answer",
                _s(run["sending"]),
                f"{sending_rate:,.0f}",
                f"{sending_rate / bound:.0%} of the bound",
            ),
            ("… of which: after the last answer", _s(run["after_last_answer"]), "", ""),
            (
                "CPU used by the sandbox process meanwhile",
                _s(run["sandbox_cpu"]),
                "",
                "on the same 2 cores",
            ),
            (
                "bound: concurrency × batch / latency",
                _s(rows / bound),
                f"{bound:,.0f}",
                "100%",
            ),
            (
                f"naive loop, one contact per POST (measured on {naive['rows']} rows, "
                f"extrapolated to {rows:,})",
                _s(rows / naive_rate),
                f"{naive_rate:,.1f}",
                f"`run` is {_num(rate / naive_rate)} faster",
            ),
        ],
        [
            Verdict("run rows/s / bound", rate / bound, 0.9, at_most=False),
            Verdict("run rows/s / naive rows/s", rate / naive_rate, 100, at_most=False),
        ],
        "The sandbox serves from its own process (as the real API is remote), so its "
        "work does not compete with the importer for the GIL. The naive loop reads the "
        "CSV, normalizes each number with phonenumbers and POSTs it with `requests.post` "
        "(no session, no batching); its rate is measured on "
        f"{naive['rows']} rows and extrapolated, as it is bound by latency alone. "
        f"Rows of `run`: {_counts(run)}; {run['posts']} requests.",
        details={"run": run, "naive": naive, "bound": bound, "rows": rows, "latency": latency},
    )


MEMORY_LIMIT_MB = 300.0


def memory_section(peaks: dict[int, Result], *, small: int, big: int) -> Section:
    small_mb, big_mb = peaks[small]["peak_mb"], peaks[big]["peak_mb"]
    return Section(
        4,
        f"Peak memory (RSS) of `check` on {small:,} and {big:,} CSV rows",
        ("input", "peak RSS", "time", "ratio"),
        [
            (f"{small:,} rows", f"{small_mb:.0f} MB", _s(peaks[small]["seconds"]), "1.00x"),
            (
                f"{big:,} rows",
                f"{big_mb:.0f} MB",
                _s(peaks[big]["seconds"]),
                f"{big_mb / small_mb:.2f}x the smaller file; {big_mb / MEMORY_LIMIT_MB:.0%} of "
                f"{MEMORY_LIMIT_MB:.0f} MB",
            ),
        ],
        [
            Verdict(f"{big:,}-row peak / 300 MB", big_mb / MEMORY_LIMIT_MB, 1.0, at_most=True),
            Verdict(f"{big:,}-row peak / {small:,}-row peak", big_mb / small_mb, 1.5, at_most=True),
        ],
        "Each figure is the peak resident set of a fresh "
        "`python -m bulkimport check FILE --country PH` process (interpreter and imports "
        "included), read from `os.wait4`'s `ru_maxrss`; MB are 10^6 bytes. Times include "
        "start-up and printing the summary.",
        details={"small": peaks[small], "big": peaks[big], "rows": (small, big)},
    )


def ledger_section(best: dict[str, Result], rows: int) -> Section:
    file, memory, rows_only = best["file"], best["memory"], best["rows"]
    added = file["seconds"] / rows_only["seconds"] - 1
    return Section(
        5,
        f"Ledger cost: `run` of {rows:,} rows at zero latency",
        ("ledger", "time", "rows/s", "ratio"),
        [
            (
                f"real ledger file ({file['ledger']})",
                _s(file["seconds"]),
                _rate(rows, file["seconds"]),
                f"{file['seconds'] / rows_only['seconds']:.2f}x",
            ),
            (
                "`Ledger.in_memory_copy` (same SQL, SQLite `:memory:`, nothing on disk)",
                _s(memory["seconds"]),
                _rate(rows, memory["seconds"]),
                f"{memory['seconds'] / rows_only['seconds']:.2f}x",
            ),
            (
                "row writes skipped (bench/ledgers.py `RowsInMemoryLedger`)",
                _s(rows_only["seconds"]),
                _rate(rows, rows_only["seconds"]),
                "1.00x",
            ),
        ],
        [Verdict("ledger time / no-write time", 1 + added, 1.1, at_most=True)],
        "The reference is the same `run_import` with a ledger subclass whose per-row "
        "methods (record_rows, already_handled, queued_rows, mark_sending, settle, counts) "
        "keep rows in a Python list and write nothing; runs and sources still go to "
        "SQLite `:memory:`. The middle line separates the cost of SQL from the cost of the "
        "disk. Each run gets a fresh sandbox process answering at once. Rows of the real "
        f"run: {_counts(file)}.",
        details={"file": file, "memory": memory, "rows": rows_only, "rows_count": rows},
    )


STARTUP_LIMIT = 5.0  # times a bare interpreter start


def startup_section(best: dict[str, float], commands: dict[str, str]) -> Section:
    """Whole `bulkimport` processes that do almost nothing, against `python -c pass`."""
    bare = best["bare"]
    rows = [("`python -c pass`", _s(bare), "1.00x")]
    verdicts = []
    for label, shown in commands.items():
        ratio = best[label] / bare
        rows.append((f"`{shown}`", _s(best[label]), f"{ratio:.2f}x"))
        verdicts.append(
            Verdict(f"`{shown}` / a bare interpreter", ratio, STARTUP_LIMIT, at_most=True)
        )
    return Section(
        6,
        "Start-up: commands that should answer at once",
        ("command", "time", "ratio"),
        rows,
        verdicts,
        "Each figure is the best wall-clock time of a fresh process (the installed "
        "`.venv/bin/bulkimport` entry point, as a user types it), the commands and the bare "
        "interpreter alternating; `status` reads a ledger of one finished run. Each command "
        "imports only what it uses when it runs, so `--help` and `--version` load click and "
        "the command modules, never requests, openpyxl, numpy or rich.",
        details={"seconds": best},
    )


CSV_GOAL = 1.0  # whole `check` of a CSV / the whole pandas + phonenumbers script
XLSX_GOAL = 0.3  # whole `check` of a workbook / the whole openpyxl read
RUN_GOAL = 0.9  # whole `run` rows/s / the bound


def whole_section(
    best: dict[str, Result],
    inside: dict[str, Result],
    startup: dict[str, float],
    commands: dict[str, str],
    *,
    rows: dict[str, int],
    bound: float,
    latency: float,
) -> Section:
    """Whole commands as a user runs them, each a fresh process, against whole references."""
    checked, sent = rows["check"], rows["run"]
    csv, csv_ref = best["check_csv"], best["reference_csv"]
    xlsx, xlsx_ref = best["check_xlsx"], best["reference_xlsx"]
    run = best["run"]
    csv_ratio = csv["seconds"] / csv_ref["seconds"]
    xlsx_ratio = xlsx["seconds"] / xlsx_ref["seconds"]
    rate = sent / run["seconds"]

    def line(what: str, result: Result, count: int, ratio: str) -> tuple[str, ...]:
        return (
            what,
            _s(result["seconds"]),
            _rate(count, result["seconds"]),
            _s(result["cpu"]),
            f"{result['peak_mb']:.0f} MB",
            ratio,
        )

    def within(what: str, result: Result, count: int, number: int) -> tuple[str, ...]:
        return (
            f"… the same work in one interpreter, after imports ({what}, measurement {number})",
            _s(result["seconds"]),
            _rate(count, result["seconds"]),
            _cpu(result),
            "",
            "",
        )

    bare = startup["bare"]
    table = [
        line(
            f"`check` of {checked:,} CSV rows, report written",
            csv,
            checked,
            f"{_num(csv_ratio)} the reference",
        ),
        within("no report", inside["csv"], checked, 1),
        line(
            "reference: pandas `read_csv(dtype=str)` + parse/is_valid/format",
            csv_ref,
            checked,
            "1.00x",
        ),
        line(
            f"`check` of {checked:,} XLSX rows, report written",
            xlsx,
            checked,
            f"{_num(xlsx_ratio)} the reference",
        ),
        within("no report", inside["xlsx"], checked, 2),
        line(
            "reference: openpyxl `load_workbook(read_only=True)`, every row read, none validated",
            xlsx_ref,
            checked,
            "1.00x",
        ),
        line(
            f"`run` of {sent:,} rows, fresh ledger, sandbox in its own process",
            run,
            sent,
            f"{rate / bound:.0%} of the bound",
        ),
        (*within("run_import", inside["run"], sent, 3)[:3], "", "", ""),
        ("bound: concurrency × batch / latency", _s(sent / bound), f"{bound:,.0f}", "", "", "100%"),
        ("CPU used by the sandbox process meanwhile", "", "", _s(run["sandbox_cpu"]), "", ""),
        ("`python -c pass` (measurement 6)", _s(bare), "", "", "", "1.00x"),
        *(
            (
                f"`bulkimport {shown}` (measurement 6)",
                _s(startup[label]),
                "",
                "",
                "",
                f"{startup[label] / bare:.2f}x `python -c pass`",
            )
            for label, shown in (("version", "--version"), ("help", "--help"), ("status", "status"))
            if label in startup
        ),
    ]
    how = (
        "Every figure is the best wall-clock time, from fork to exit, of a fresh process "
        "started exactly as a user types the command (`python` is `.venv/bin/python`), "
        "contenders and references alternating; CPU is the process's and its worker "
        "processes', user plus system. `check` writes its report into an empty folder; `run` "
        "starts with a new ledger and a new sandbox, which serves from its own process "
        "(`bulkimport sandbox`, started and answering before the clock starts, stopped after), "
        f"answering every request after {latency * 1000:.0f} ms. stdin is `/dev/null` and the "
        "output a pipe, so nothing ever waits for a keypress. The start-up figures are those "
        f"of measurement 6. `run` sent {run['requests']:,} requests and subscribed "
        f"{run['subscribed']:,} rows. The commands, as timed:\n\n"
        + "\n".join(
            f"- {what}: `{commands[key]}`"
            for what, key in (
                ("`check`, CSV", "check_csv"),
                ("its reference", "reference_csv"),
                ("`check`, XLSX", "check_xlsx"),
                ("its reference", "reference_xlsx"),
                ("the sandbox", "sandbox"),
                ("`run`", "run"),
            )
        )
    )
    return Section(
        7,
        "Whole commands, as a user runs them",
        ("command", "time", "rows/s", "CPU", "peak RSS", "ratio"),
        table,
        [
            Verdict(
                f"whole `check` of {checked:,} CSV rows / whole pandas + phonenumbers script",
                csv_ratio,
                CSV_GOAL,
                at_most=True,
            ),
            Verdict(
                f"whole `check` of {checked:,} XLSX rows / whole openpyxl read",
                xlsx_ratio,
                XLSX_GOAL,
                at_most=True,
            ),
            Verdict(
                f"whole `run` of {sent:,} rows: rows/s / the bound",
                rate / bound,
                RUN_GOAL,
                at_most=False,
            ),
        ],
        how,
        details={
            "csv": {"check": csv, "reference": csv_ref, "inside": inside["csv"]},
            "xlsx": {"check": xlsx, "reference": xlsx_ref, "inside": inside["xlsx"]},
            "run": run,
            "run_inside": inside["run"],
            "startup": startup,
            "rows": rows,
            "bound": bound,
            "latency": latency,
        },
    )


GROWTH_LIMIT = 1.3  # the ledger after the last night / after the first


def _rows(count: int, *, bare: bool = False) -> str:
    """Return "1 row" or "10 rows" (only the noun when ``bare``)."""
    noun = "row" if count == 1 else "rows"
    return noun if bare else f"{count:,} {noun}"


def growth_section(result: Result) -> Section:
    """The ledger's size after night 1 and after the last night of a growing export."""
    sizes, seconds = result["sizes"], result["seconds"]
    first, nightly, nights = result["first"], result["nightly"], result["nights"]
    ratio = sizes[-1] / sizes[0]
    later = seconds[1:] or [0.0]
    return Section(
        8,
        f"Ledger growth: {nights} nights of a {first:,}-row export that gains "
        f"{_rows(nightly)} a night",
        ("after", "rows in the file", "ledger size", "ratio", "time of the night's run"),
        [
            ("night 1", f"{first:,}", f"{sizes[0]:,} bytes", "1.00x", _s(seconds[0])),
            (
                f"night {nights}",
                f"{result['last_rows']:,}",
                f"{sizes[-1]:,} bytes",
                f"{ratio:.3f}x",
                f"{_s(sum(later) / len(later))} a night on average (nights 2–{nights})",
            ),
        ],
        [
            Verdict(
                f"ledger after night {nights} / after night 1", ratio, GROWTH_LIMIT, at_most=True
            )
        ],
        f"Night 1 runs `run_import` on a {first:,}-row CSV with a new ledger file; every "
        f"later night runs the same path again with {nightly:,} more "
        f"{_rows(nightly, bare=True)} appended (the same rows first, in the same order), as "
        "a cumulative export comes back. Each night opens the ledger afresh, as a new "
        "`bulkimport run` does, against one sandbox process answering at once (batch 100, "
        "concurrency 4). Sizes are the file's bytes after `PRAGMA wal_checkpoint(TRUNCATE)` "
        "(plus a write-ahead log, if any is left). Rows of night 1: "
        f"{_counts({'counts': result['counts'][0]})}; of night {nights}: "
        f"{_counts({'counts': result['counts'][-1]})}.",
        details=result,
    )


def _verdicts(result: Result) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in sorted(result["verdicts"].items()))


def _counts(result: Result) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in sorted(result["counts"].items()))


# --- rendering --------------------------------------------------------------------------


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render(machine: Machine, sections: list[Section]) -> str:
    """Return BENCHMARKS.md."""
    load = " / ".join(f"{x:.2f}" for x in machine.load_before)
    load_after = " / ".join(f"{x:.2f}" for x in machine.load_after)
    lines = [
        "# Benchmarks",
        "",
        "Regenerated by `make bench` (which runs `.venv/bin/python bench/run.py`): it writes "
        "its own data to `bench/out/` from a fixed seed, measures, and rewrites this file. "
        f"This run took {machine.total_seconds / 60:.1f} minutes with `--reps {machine.reps}`.",
        "",
        "## Machine",
        "",
        *_table(
            ("", ""),
            [*machine.facts, ("Load average (1/5/15 min)", f"{load} before, {load_after} after")],
        ),
        "",
        "## Summary",
        "",
        *_table(
            ("#", "measurement", "target", "figure", "result"),
            [
                (str(s.number), f"{s.title}: {v.what}", v.target, _num(v.ratio), v.result)
                for s in sections
                for v in s.verdicts
            ],
        ),
        "",
        "## Method",
        "",
        findings.METHOD,
        "",
    ]
    for section in sections:
        lines += _render_section(section)
    return "\n".join(lines).rstrip() + "\n"


def _render_section(section: Section) -> list[str]:
    lines = [f"## {section.number}. {section.title}", "", *_table(section.header, section.rows)]
    lines += ["", section.how, ""]
    for verdict in section.verdicts:
        lines.append(f"- **{verdict.result}** {verdict.describe()}")
    lines.append("")
    if section.passed:
        return lines
    lines += ["### Why it misses and what would close it", ""]
    lines += findings.explain(section.number, section.details, section.profile)
    if section.profile is not None and "cprofile" in section.profile:
        lines += ["", *_render_profile(section.profile)]
    return [*lines, ""]


def _render_profile(profile: Result) -> list[str]:
    lines: list[str] = []
    sampled, cprofile = profile.get("sampled"), profile["cprofile"]
    if sampled is not None:
        lines += [
            f"Sampled profile ({sampled['samples']:,} samples of the main process over "
            f"{sampled['seconds']:.1f} s of work), by library or module:",
            "",
            *_table(
                ("where", "share of CPU"), [(f"`{a}`", f"{s:.0%}") for a, s in sampled["areas"]]
            ),
            "",
        ]
    lines += [
        f"cProfile ({cprofile['seconds']:.1f} s under the profiler), top functions by own time:",
        "",
        *_table(
            ("function", "calls", "own", "cumulative"),
            [
                (
                    f"`{f['function']}`",
                    f"{f['calls']:,}",
                    f"{f['own']:.1%}",
                    f"{f['cumulative']:.1%}",
                )
                for f in cprofile["functions"]
            ],
        ),
    ]
    return lines
