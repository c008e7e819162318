from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import Future

import pytest

from bulkimport.contacts import Problem, Rejected, SourceRow
from bulkimport.rows.phones import PhoneNormalizer, PhonePolicy
from bulkimport.rows.workers import PhonePrefetch, _start_method

CELLS = ["0917 123 4567", "n/a", "", "+1 415 555 2671", "0918 765 4321", "0917 123 4567", "12"]


def rows(count: int) -> list[SourceRow]:
    return [SourceRow("a.csv", "", n + 2, (CELLS[n % len(CELLS)],)) for n in range(count)]


def phone_cell(row: SourceRow) -> str:
    return row.cells[0].strip()


def test_worker_processes_give_the_same_answers_in_the_same_order() -> None:
    phones = PhoneNormalizer(PhonePolicy(country="PH"))
    serial = PhoneNormalizer(PhonePolicy(country="PH"))
    source = rows(130)
    with PhonePrefetch(phones, workers=2, start_after=10, chunk_rows=25) as prefetch:
        seen = []
        for row in prefetch.rows(iter(source), phone_cell):
            seen.append((row.row, phones.normalize(phone_cell(row))))
    assert [number for number, _ in seen] == [row.row for row in source]
    assert [answer for _, answer in seen] == [serial.normalize(phone_cell(r)) for r in source]
    assert isinstance(seen[1][1], Rejected)
    assert seen[1][1].code is Problem.PHONE_NOT_A_NUMBER
    assert prefetch._pool is None  # closed on the way out


def test_the_workers_do_the_work_once_they_are_up() -> None:
    """With the workers started, every chunk's answers come from them, none is redone here."""
    phones = PhoneNormalizer(PhonePolicy(country="PH"))
    learned: list[int] = []
    original = phones.learn

    def spy(raws: list[str], results: list[str | Rejected]) -> None:
        learned.append(len(raws))
        original(raws, results)

    phones.learn = spy  # type: ignore[method-assign]
    source = rows(200)
    with PhonePrefetch(phones, workers=2, start_after=0, chunk_rows=25) as prefetch:
        warm_up = prefetch._submit(["0917 123 4567"])
        assert warm_up is not None
        assert warm_up.result(timeout=60) == ["639171234567"]  # a worker answered
        answers = [phones.normalize(phone_cell(r)) for r in prefetch.rows(iter(source), phone_cell)]
    assert sum(learned) == 200  # all eight chunks of 25 were normalized by the workers
    serial = PhoneNormalizer(PhonePolicy(country="PH"))
    assert answers == [serial.normalize(phone_cell(r)) for r in source]


def test_a_finished_chunk_is_learned_and_an_unfinished_one_is_done_here() -> None:
    phones = PhoneNormalizer(PhonePolicy(country="PH"))
    chunk = rows(3)
    raws = [phone_cell(row) for row in chunk]
    with PhonePrefetch(phones, workers=2) as prefetch:
        future = prefetch._submit(raws)
        assert future is not None
        future.result(timeout=60)
        assert [r.row for r in prefetch._release((chunk, raws, future))] == [2, 3, 4]
        assert phones._learned["0917 123 4567"] == "639171234567"
    with PhonePrefetch(phones, workers=2) as starting:  # no worker has answered yet
        slow: Future[list[str | Rejected]] = Future()  # no worker has started it
        assert len(list(starting._release((chunk, raws, slow)))) == 3
        assert slow.cancelled()
        assert phones.normalize("0917 123 4567") == "639171234567"


def test_small_inputs_and_one_worker_start_no_process() -> None:
    phones = PhoneNormalizer(PhonePolicy(country="PH"))
    with PhonePrefetch(phones, workers=1, start_after=0) as prefetch:
        assert [r.row for r in prefetch.rows(iter(rows(5)), phone_cell)] == [2, 3, 4, 5, 6]
        assert prefetch._pool is None
    with PhonePrefetch(phones, workers=2, start_after=100) as prefetch:
        assert len(list(prefetch.rows(iter(rows(50)), phone_cell))) == 50
        assert prefetch._pool is None
    with PhonePrefetch(phones, workers=2, start_after=100) as prefetch:
        assert len(list(prefetch.rows(iter(rows(50)), phone_cell, large=True))) == 50
        assert prefetch._pool is not None  # a large input starts the workers at once


WORKER_MODULES = """
import json
from bulkimport.rows.phones import PhoneNormalizer, PhonePolicy
from bulkimport.rows.workers import PhonePrefetch, _start_method

with PhonePrefetch(PhoneNormalizer(PhonePolicy(country="PH")), workers=1 + 1) as prefetch:
    prefetch._submit(["0917 123 4567"]).result(60)
    loaded = prefetch._pool.submit(eval, "sorted(__import__('sys').modules)").result(60)
print(json.dumps(loaded))
"""


def test_a_phone_worker_imports_no_heavy_library() -> None:
    """Workers start fast: they import phonenumbers, not numpy, openpyxl, rich or click."""
    found = subprocess.run(
        [sys.executable, "-c", WORKER_MODULES], capture_output=True, text=True, timeout=120
    )
    assert found.returncode == 0, found.stderr
    loaded = set(json.loads(found.stdout))
    assert "phonenumbers" in loaded
    heavy = {"numpy", "openpyxl", "rich", "click", "pandas", "requests", "python_calamine"}
    assert heavy.isdisjoint(loaded), heavy & loaded


def test_workers_are_forked_only_from_a_single_threaded_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    assert _start_method() == "fork"  # at once, with the parent's modules loaded
    monkeypatch.setattr(threading, "active_count", lambda: 2)
    assert _start_method() == "spawn"  # a fork could copy a lock the other thread holds


def test_spawned_workers_give_the_same_answers_as_forked_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {}
    for method in ("fork", "spawn"):
        monkeypatch.setattr("bulkimport.rows.workers._start_method", lambda m=method: m)
        phones = PhoneNormalizer(PhonePolicy(country="PH"))
        with PhonePrefetch(phones, workers=2, start_after=0, chunk_rows=20) as prefetch:
            answers[method] = [
                phones.normalize(phone_cell(row))
                for row in prefetch.rows(iter(rows(100)), phone_cell)
            ]
            assert prefetch._warm  # a worker answered
    assert answers["fork"] == answers["spawn"]
    assert "639171234567" in answers["fork"]
