"""Tests of the benchmark's own parts: `.venv/bin/pytest bench/test_bench.py`."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import baselines
import findings
import probes
import profiles
import pytest
import reference
import report
import run
import workload
from ledgers import RowsInMemoryLedger

from bulkimport.jobs.importing import run_import
from bulkimport.jobs.sending import Sender
from bulkimport.ledger.store import Ledger
from bulkimport.rows.phones import PhonePolicy
from bulkimport.rows.prepare import ImportOptions
from bulkimport.sandbox import SANDBOX_TOKEN, Sandbox
from bulkimport.send.client import EngageSparkClient
from bulkimport.settings import SendSettings


def test_people_are_the_same_for_a_seed_and_differ_for_another() -> None:
    first = list(workload.people(300, seed=7))
    assert first == list(workload.people(300, seed=7))
    assert first != list(workload.people(300, seed=8))
    assert len(first) == 300


def test_people_mix_shapes_repeats_and_unusable_numbers() -> None:
    phones = [row[workload.PHONE_COLUMN] for row in workload.people(5000)]
    bad = sum(phone in workload.BAD_PHONES for phone in phones)
    assert 20 <= bad <= 80
    assert any(phone.startswith("+63 ") for phone in phones)
    assert any(phone.startswith("(0") for phone in phones)
    digits = Counter(phone[-7:].replace("-", "") for phone in phones if len(phone) > 9)
    assert any(count > 1 for count in digits.values())


def test_csv_file_is_written_once_with_header(tmp_path: Path) -> None:
    path = workload.csv_file(tmp_path, 50)
    with path.open(newline="", encoding="utf-8") as source:
        rows = list(csv.reader(source))
    assert tuple(rows[0]) == workload.HEADER
    assert len(rows) == 51
    stamp = path.stat().st_mtime_ns
    assert workload.csv_file(tmp_path, 50) == path
    assert path.stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    ("ratio", "limit", "at_most", "passed", "missed"),
    [
        (1.1, 1.2, True, True, ""),
        (1.5, 1.2, True, False, "25% over the limit"),
        (6.0, 5.0, False, True, ""),
        (4.0, 5.0, False, False, "20% short of the target"),
    ],
)
def test_verdict_says_pass_or_by_how_much_it_misses(
    ratio: float, limit: float, at_most: bool, passed: bool, missed: str
) -> None:
    verdict = report.Verdict("x", ratio, limit, at_most=at_most)
    assert verdict.passed is passed
    assert verdict.result == ("PASS" if passed else "MISS")
    assert verdict.missed_by() == missed


def _tiny_run(ledger: Ledger, path: Path, sandbox: Sandbox) -> Counter[str]:
    client = EngageSparkClient(SANDBOX_TOKEN, sandbox.url)
    settings = SendSettings(1234, api_url=sandbox.url, batch_size=10, concurrency=2)
    options = ImportOptions(phones=PhonePolicy(country=workload.COUNTRY))
    try:
        return run_import([path], options, settings, ledger, Sender(client)).counts
    finally:
        client.close()
        ledger.close()


def test_rows_in_memory_ledger_ends_a_run_like_the_real_one(tmp_path: Path) -> None:
    path = workload.csv_file(tmp_path, 120)
    with Sandbox() as first, Sandbox() as second:
        real = _tiny_run(Ledger.in_memory_copy(tmp_path / "none.sqlite"), path, first)
        skipped = _tiny_run(RowsInMemoryLedger(), path, second)
        assert skipped == real
        assert real["subscribed"] == len(second.subscriptions(1234))
    assert real["subscribed"] > 100


def test_every_miss_is_explained_without_a_profile() -> None:
    check = {"check": {"seconds": 12.0}, "floor": {"seconds": 8.0}, "rows": 100_000}
    explained: dict[int, dict[str, Any]] = {
        1: check,
        2: {**check, "openpyxl": {"seconds": 30.0}},
        3: {
            "run": {"seconds": 9.0, "before_first_post": 3.0, "sending": 6.0, "sandbox_cpu": 1.5},
            "bound": 4000.0,
            "rows": 20_000,
            "latency": 0.1,
        },
        4: {"small": {"peak_mb": 90.0}, "big": {"peak_mb": 260.0}, "rows": (100_000, 1_000_000)},
        5: {
            "file": {"seconds": 5.0},
            "memory": {"seconds": 4.8},
            "rows": {"seconds": 3.5},
            "rows_count": 20_000,
        },
    }
    for number, details in explained.items():
        lines = findings.explain(number, details, None)
        assert any(line.startswith("- **By how much.**") for line in lines)
        assert any("would close it" in line for line in lines)


def test_sampler_counts_where_the_time_goes() -> None:
    def busy() -> None:
        total = 0
        for n in range(3_000_000):
            total += n % 7

    result = profiles.sampled(busy)
    assert result["samples"] > 0
    assert abs(sum(share for _, share in result["areas"]) - 1) < 1e-9


def test_a_check_on_worker_processes_is_explained_by_its_cpu_split() -> None:
    details = {
        "check": {"seconds": 7.0, "cpu_main": 3.0, "cpu_workers": 6.0},
        "floor": {"seconds": 5.0, "cpu_main": 5.0, "cpu_workers": 0.0},
        "rows": 100_000,
    }
    lines = findings.explain(1, details, None)
    why = next(line for line in lines if line.startswith("- **Why.**"))
    assert "3.00 s of CPU in its main process" in why
    assert "6.00 s in its worker" in why


def test_a_memory_miss_names_the_file_that_holds_the_most() -> None:
    details = {"small": {"peak_mb": 90.0}, "big": {"peak_mb": 190.0}, "rows": (100_000, 1_000_000)}
    sites = {
        "rows": 100_000,
        "total_mb": 14.0,
        "sites": [
            {"site": "bulkimport/plan.py:33", "mb": 8.0, "blocks": 9},
            {"site": "bulkimport/plan.py:28", "mb": 3.0, "blocks": 9},
            {"site": "bulkimport/phones.py:158", "mb": 1.0, "blocks": 9},
        ],
    }
    lines = findings.explain(4, details, sites)
    assert any(
        "`bulkimport/plan.py` holds the most: 11.0 MB, 110 bytes per row" in line for line in lines
    )


def test_a_workbook_that_only_misses_openpyxl_says_the_floor_passes() -> None:
    details = {
        "check": {"seconds": 6.5, "cpu_main": 4.6, "cpu_workers": 5.4},
        "floor": {"seconds": 6.2, "cpu_main": 6.1},
        "openpyxl": {"seconds": 16.8},
        "rows": 100_000,
    }
    lines = findings.explain(2, details, None)
    assert "passes (1.05×)" in lines[0]
    assert not any("too many" in line for line in lines)
    assert any(line.startswith("- **Against openpyxl.**") for line in lines)


def test_reference_script_counts_rows_and_valid_numbers(tmp_path: Path) -> None:
    assert reference.COUNTRY == workload.COUNTRY
    assert workload.HEADER[workload.PHONE_COLUMN] == reference.PHONE_HEADER
    path = workload.csv_file(tmp_path, 200)
    found = run.timed_command(run.reference_argv("csv", path), ok=(0,))
    counted = json.loads(found["stdout"].strip().splitlines()[-1])
    assert counted["rows"] == 200
    assert 180 <= counted["valid"] <= 200
    assert counted["valid"] == baselines.csv_floor(path)
    assert reference.xlsx_reference(str(workload.xlsx_file(tmp_path, 30))) == {
        "rows": 30,
        "valid": 0,
    }


def test_whole_command_runner_returns_time_memory_and_exit_code(tmp_path: Path) -> None:
    path = workload.csv_file(tmp_path, 50)
    result = run.whole_check(path, tmp_path)
    assert result["code"] == 1  # the workload always holds some unusable numbers
    assert result["seconds"] > 0
    assert result["cpu"] > 0
    assert result["peak_mb"] > 10
    assert result["report_bytes"] > 0
    with pytest.raises(RuntimeError, match="failed"):
        run.timed_command(run.check_argv(tmp_path / "missing.csv"), cwd=tmp_path)


def test_whole_run_subscribes_against_a_sandbox_in_its_own_process(tmp_path: Path) -> None:
    path = workload.csv_file(tmp_path, 120)
    result = run.whole_run(path, tmp_path, 0.0, yes=run.run_has_yes_option())
    assert result["code"] in (0, 1)
    assert result["seconds"] > 0
    assert 100 < result["subscribed"] <= 120
    assert result["requests"] >= 2


def test_ledger_growth_gives_the_size_after_every_night(tmp_path: Path) -> None:
    grown = probes.ledger_growth(tmp_path, first=60, nightly=5, nights=3)
    sizes = grown["sizes"]
    assert len(sizes) == 3
    assert sizes[-1] > sizes[0] > 0
    assert grown["last_rows"] == 70
    section = report.growth_section(grown)
    assert section.verdicts[0].ratio == sizes[-1] / sizes[0]


def test_whole_command_misses_are_explained() -> None:
    check = {"seconds": 3.0, "cpu": 5.0, "peak_mb": 100.0}
    details = {
        "csv": {"check": check, "reference": {"seconds": 2.0, "cpu": 2.0}, "inside": check},
        "xlsx": {"check": check, "reference": {"seconds": 6.0, "cpu": 6.0}, "inside": check},
        "run": {"seconds": 9.0, "sandbox_cpu": 0.5},
        "run_inside": {
            "seconds": 7.0,
            "before_first_post": 1.0,
            "sending": 5.9,
            "after_last_answer": 0.1,
        },
        "startup": {"bare": 0.02, "version": 0.1},
        "rows": {"check": 100_000, "run": 20_000},
        "bound": 4000.0,
        "latency": 0.1,
    }
    lines = findings.explain(7, details, None)
    assert sum(line.startswith("- **Why.**") for line in lines) == 3
    assert any("`run`, by how much" in line for line in lines)
    growth = {"sizes": [1000, 2000], "nights": 30, "first": 100, "nightly": 10}
    assert any("too many" in line for line in findings.explain(8, growth, None))
