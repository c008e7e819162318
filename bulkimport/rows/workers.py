"""Normalize phone numbers on the other cores, ahead of the rows that need them.

Parsing phone numbers is most of the local work of a large import, and each
number is independent of the others. For large inputs the phone cells of the
next chunks of rows go to worker processes while this process maps,
validates and records the rows before them; the answers wait in the
normalizer (:meth:`PhoneNormalizer.learn`) for their row. Rows come out in
their original order, and small files never start a worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType

from bulkimport.contacts import Rejected, SourceRow
from bulkimport.rows.chunks import batched
from bulkimport.rows.phones import PhoneNormalizer, PhonePolicy

log = logging.getLogger(__name__)

START_AFTER_ROWS = 5_000  # below this a worker's start-up costs more than it saves
CHUNK_ROWS = 2_000
CHUNKS_AHEAD = 4
PARENT_CHECK_SECONDS = 0.5

_worker_phones: PhoneNormalizer | None = None


def _start_worker(policy: PhonePolicy, parent: int) -> None:
    global _worker_phones
    # Stopping is the main process's business: it finishes cleanly and stops us.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    # ``parent`` comes from the parent itself: one killed while we started up is noticed too.
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
    _worker_phones = PhoneNormalizer(policy)


def _end_with(parent: int) -> None:
    """End this worker as soon as its parent is gone, however the parent ended.

    Otherwise a worker of a killed run would live on, holding the caller's
    stdout open (``bulkimport run big.csv | cat`` would never end).
    """
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _start_method() -> str:
    """Fork when this process runs one thread: the workers start at once, metadata loaded.

    With other threads (a sandbox, a progress bar) a fork could copy a lock
    another thread holds, so the workers are spawned as fresh interpreters.
    """
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


def _normalize_many(raws: list[str]) -> list[str | Rejected]:
    assert _worker_phones is not None
    return [_worker_phones.normalize(raw) for raw in raws]


_Chunk = tuple[list[SourceRow], list[str], "Future[list[str | Rejected]] | None"]


class PhonePrefetch:
    """Feeds a PhoneNormalizer with results computed by worker processes."""

    def __init__(
        self,
        phones: PhoneNormalizer,
        *,
        workers: int | None = None,
        start_after: int = START_AFTER_ROWS,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        self._phones = phones
        self._workers = (os.cpu_count() or 1) if workers is None else workers
        self._start_after = start_after
        self._chunk_rows = chunk_rows
        self._seen = 0
        self._pool: ProcessPoolExecutor | None = None
        self._broken = False
        self._warm = False  # a worker has answered: wait for chunks instead of redoing them

    def rows(
        self,
        rows: Iterator[SourceRow],
        phone_cell: Callable[[SourceRow], str] | None,
        *,
        large: bool = False,
    ) -> Iterator[SourceRow]:
        """Yield ``rows`` in order, their phone cells normalized ahead where it pays.

        ``large`` says the input is big enough to start the workers at once, so
        their start-up overlaps the first rows instead of following them.
        """
        if phone_cell is None or self._workers < 2:
            yield from rows
            return
        while self._seen < self._start_after and not large:
            row = next(rows, None)
            if row is None:
                return
            self._seen += 1
            yield row
        window: deque[_Chunk] = deque()
        for chunk in batched(rows, self._chunk_rows):
            raws = [phone_cell(row) for row in chunk]
            window.append((chunk, raws, self._submit(raws)))
            while len(window) > CHUNKS_AHEAD:
                yield from self._release(window.popleft())
        while window:
            yield from self._release(window.popleft())

    def _submit(self, raws: list[str]) -> Future[list[str | Rejected]] | None:
        if self._broken:
            return None
        try:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self._workers,
                    mp_context=multiprocessing.get_context(_start_method()),
                    initializer=_start_worker,
                    initargs=(self._phones.policy, os.getpid()),
                )
            future = self._pool.submit(_normalize_many, raws)
            future.add_done_callback(self._note_answer)
            return future
        except (OSError, RuntimeError, BrokenProcessPool) as error:
            self._give_up(error)
            return None

    def _note_answer(self, future: Future[list[str | Rejected]]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._warm = True

    def _release(self, item: _Chunk) -> Iterator[SourceRow]:
        chunk, raws, future = item
        # While the workers are still starting up, a chunk none of them has taken
        # is normalized here; once one has answered, every chunk is theirs and is
        # waited for. A chunk a worker is on is never done twice.
        if future is not None and (self._warm or not future.cancel()):
            try:
                self._phones.learn(raws, future.result())
            except (OSError, BrokenProcessPool) as error:
                self._give_up(error)
        self._seen += len(chunk)
        yield from chunk

    def _give_up(self, error: BaseException) -> None:
        if not self._broken:
            log.warning("normalizing on one core only (worker processes failed: %s)", error)
        self._broken = True

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> PhonePrefetch:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
