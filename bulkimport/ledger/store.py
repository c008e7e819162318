"""The results ledger: one SQLite file that knows what happened to every row.

The ledger is the source of truth. A batch's rows are committed as
``sending`` before its request leaves the process, so a crash at any instant
leaves a state the next run can finish (leftover ``sending`` rows become
``unknown`` and are re-sent with contact reuse).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bulkimport.contacts import RowStatus, is_existing_contact
from bulkimport.errors import LedgerBusy, LedgerError
from bulkimport.ledger.lock import LedgerLock
from bulkimport.ledger.schema import MIGRATIONS, SCHEMA_VERSION
from bulkimport.ledger.states import (
    DISCARDABLE,
    OPEN,
    SENDABLE,
    UNSENT,
    IllegalTransition,
    check_transition,
    sources_of,
    sql_list,
)

S = RowStatus

PAGE = 1000  # rows per keyset page and per executemany chunk
BUSY_SECONDS = 5.0  # how long a write waits for another program's transaction on the ledger


# A version's rows: each span maps consecutive row numbers to consecutive row ids.
MEMBERS = "spans l JOIN rows r ON r.id BETWEEN l.first_id AND l.first_id + l.row_count - 1"
MEMBER_ROW = "l.first_row + (r.id - l.first_id)"  # the row's number in that version


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values)) or "NULL"


def stored_text(text: str) -> str:
    """Return ``text`` as SQLite can store it: a file name's undecodable bytes as escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def ledger_error(error: sqlite3.Error, path: Path | None) -> LedgerError:
    """Return the LedgerError that says what went wrong with the ledger file and what to do.

    Only a file that is not an SQLite database is called "not a ledger": a ledger
    that is busy, read-only or on a full disk is fine, and replacing it would
    forget who was subscribed.
    """
    name = getattr(error, "sqlite_errorname", "")
    where = path or "the ledger"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return LedgerBusy(
            f"The ledger {where} is busy: another program holds a write transaction on it "
            "(an sqlite3 shell, a backup tool?); close it and run again."
        )
    if name.startswith("SQLITE_FULL"):
        return LedgerError(
            f"The disk holding the ledger {where} is full: free some space and run again "
            "(the ledger is consistent; nothing recorded so far is lost)."
        )
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return LedgerError(
            f"Cannot write the ledger {where} (no permission, or a read-only file or folder): "
            "make the file and its folder writable for this user, or give another --ledger."
        )
    if name.startswith("SQLITE_NOTADB"):
        return LedgerError(
            f"{where} is not a bulkimport ledger ({error}): give another file with --ledger."
        )
    if name.startswith("SQLITE_CORRUPT"):
        return LedgerError(
            f"{where} is damaged ({error}): restore it from a backup, or give another "
            "file with --ledger."
        )
    return LedgerError(
        f"The ledger {where} cannot be used ({error}): check the disk and the file's "
        "permissions, then run again."
    )


@dataclass(frozen=True, slots=True)
class NewRow:
    """A source row as first recorded: its verdict and, when sendable, its payload."""

    row_number: int
    status: RowStatus
    cells: Sequence[str]
    identity: str | None = None
    phone: str | None = None
    contact_id: int | None = None
    reason: str = ""
    payload: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class KeptRow:
    """A row of a new version of a file that an earlier version holds as it is: a reference."""

    row_number: int
    row_id: int


@dataclass(frozen=True, slots=True)
class MemberRow:
    """A row of a recorded version, as a later version of the file may keep it."""

    row_id: int
    status: RowStatus
    identity: str | None
    reason: str
    payload: str | None
    cells: str


@dataclass(frozen=True, slots=True)
class QueuedRow:
    """A row waiting to be sent: its ledger id, payload and whether reuse is required."""

    id: int
    payload: dict[str, Any]
    status: RowStatus
    reuse: bool

    @property
    def existing(self) -> bool:
        """Return whether the row names an existing contact by id."""
        return is_existing_contact(self.payload)


@dataclass(frozen=True, slots=True)
class Handled:
    """Why a person needs no new send, and their contact id when they are subscribed."""

    reason: str
    contact_id: int | None = None


@dataclass(frozen=True, slots=True)
class Settlement:
    """Where a sent row ended: the ledger's half of a send outcome."""

    row_id: int
    status: RowStatus
    contact_id: int | None
    reason: str
    maybe_sent: bool = False  # the row may have reached the API: send it again with reuse


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One HTTP attempt, for the attempts table."""

    batch: str
    started_at: float
    status_code: int | None
    kind: str
    duration: float
    reuse: bool
    row_count: int
    message: str


@dataclass(frozen=True)
class RunInfo:
    """A run as `status` shows it."""

    id: int
    command: str
    engagement_id: int
    started_at: str
    finished_at: str | None
    exit_code: int | None
    files: list[str]
    counts: dict[str, int]
    settings: dict[str, Any]
    incomplete: list[Incomplete]


@dataclass(frozen=True)
class Incomplete:
    """A file whose rows were not all recorded: a run stopped while reading it."""

    source_id: int
    path: str
    sheet: str
    engagement_id: int
    recorded: int
    last_row: int | None

    def describe(self) -> str:
        """Return one sentence: which file, how far it was recorded, what to do."""
        sheet = f" [{self.sheet}]" if self.sheet else ""
        upto = f"up to row {self.last_row}" if self.last_row else "no rows"
        return (
            f"{self.path}{sheet} was not read to its end ({upto} recorded): "
            "run the same `bulkimport run` command again to record and send the rest."
        )


@dataclass(frozen=True, slots=True)
class ResultRow:
    """A row as the results file shows it, with the subscription of its person, if any."""

    source: str
    sheet: str
    row_number: int
    status: str
    contact_id: int | None
    phone: str | None
    reason: str
    header: list[str]
    cells: list[str]
    subscription: Subscription | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    """When, by which run and from which row a person was subscribed to an engagement."""

    contact_id: int | None
    subscribed_at: str
    run_id: int | None
    row_id: int | None
    source: str | None
    row_number: int | None

    def describe(self) -> str:
        """Return "already subscribed on 2026-11-30 (run 3, applicants.xlsx row 17)"."""
        where = [f"run {self.run_id}"] if self.run_id is not None else []
        if self.source is not None:
            where.append(f"{Path(self.source).name} row {self.row_number}")
        said = f" ({', '.join(where)})" if where else ""
        return f"already subscribed on {self.subscribed_at[:10]}{said}"


@dataclass(frozen=True)
class EngagementInfo:
    """One engagement as `status` shows it: its people and the rows that need a look."""

    engagement_id: int
    people: int  # subscribed, one per person
    counts: dict[str, int]  # rows by status, each row once


def require_ledger(path: Path) -> None:
    """Raise LedgerError unless a ledger file exists at ``path`` (nothing is created)."""
    if not path.exists():
        raise LedgerError(f"There is no ledger at {path}: give the one `run` wrote with --ledger.")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Ledger:
    """Read and write the ledger; every write is one ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, connection: sqlite3.Connection, path: Path | None) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Ledger:
        """Open or create the ledger at ``path`` (mode 0600), migrating its schema."""
        if path.is_dir():
            raise LedgerError(f"Ledger {path} is a folder: give a file name with --ledger.")
        try:
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
        except FileNotFoundError as error:
            raise LedgerError(
                f"Cannot create the ledger {path}: its folder does not exist."
            ) from error
        except OSError as error:
            raise LedgerError(
                f"Cannot create the ledger {path} ({error.strerror}): "
                "give a writable place with --ledger."
            ) from error
        try:
            connection = sqlite3.connect(
                path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False
            )
            # Before anything writes: another program's database is refused untouched.
            cls(connection, path)._refuse_foreign()
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            # A damaged page would otherwise surface halfway through a run, as a traceback.
            damage = connection.execute("PRAGMA quick_check(1)").fetchone()[0]
            if damage != "ok":
                raise LedgerError(
                    f"{path} is damaged ({' '.join(str(damage).split())}): "
                    "restore it from a backup, or give another file with --ledger."
                )
            ledger = cls(connection, path)
            ledger._migrate()
        except sqlite3.Error as error:
            raise ledger_error(error, path) from error
        return ledger

    @classmethod
    def existing(cls, path: Path) -> Ledger:
        """Open the ledger at ``path`` for reading; LedgerError when there is none."""
        require_ledger(path)
        return cls.open(path)

    @classmethod
    @contextmanager
    def locked(cls, path: Path) -> Iterator[Ledger]:
        """Lock the ledger file, open it, and close it before the lock is released.

        Closing comes first: closing any descriptor of the file drops this
        process's SQLite locks on it, so the order matters.
        """
        with LedgerLock(path), cls.open(path) as ledger:
            yield ledger

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @classmethod
    def in_memory_copy(cls, path: Path) -> Ledger:
        """Return a private in-memory copy (for --dry-run: decide everything, keep nothing)."""
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if path.exists():
            with cls.open(path) as source:
                source._db.backup(memory)
        ledger = cls(memory, None)
        ledger._migrate()
        return ledger

    def close(self) -> None:
        self._db.close()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"Ledger {self.path} was written by a newer bulkimport (schema {version}, "
                f"this one knows {SCHEMA_VERSION}): upgrade bulkimport to read it."
            )
        self._refuse_foreign()
        if 0 < version < SCHEMA_VERSION:
            self._back_up(version)
        while version < SCHEMA_VERSION:
            with self._write():
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                version += 1
                self._db.execute(f"PRAGMA user_version = {version}")

    def _back_up(self, version: int) -> None:
        """Copy the ledger to ``<ledger>.schema<N>.bak`` (mode 0600) before migrating it."""
        if self.path is None:
            return
        target = self.path.with_name(f"{self.path.name}.schema{version}.bak")
        if not target.exists():
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
            copy = sqlite3.connect(target)
            try:
                self._db.backup(copy)
            finally:
                copy.close()

    def _refuse_foreign(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise LedgerError(
                f"{self.path} is an SQLite file but not a bulkimport ledger: "
                "give another file with --ledger."
            )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several writes into one ``BEGIN IMMEDIATE`` transaction (one sync)."""
        with self._write():
            yield

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self._db.in_transaction:  # inside transaction(): the outer one commits
            yield self._db
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise ledger_error(error, self.path) from error
        try:
            yield self._db
        except BaseException as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise ledger_error(error, self.path) from error
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise ledger_error(error, self.path) from error

    # Runs ---------------------------------------------------------------------

    def start_run(self, command: str, engagement_id: int, settings: Mapping[str, Any]) -> int:
        """Record a new run; ``settings`` must never hold the API key."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO runs (command, engagement_id, started_at, settings) VALUES (?,?,?,?)",
                (command, engagement_id, _now(), json.dumps(dict(settings), sort_keys=True)),
            )
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, exit_code: int) -> None:
        """Record a run's end, with its rows as they stand now.

        A `run` counts the rows of the files it read (kept ones too: a second
        run of a file shows its rows, not "none"); a `retry` the rows it sent.
        """
        counts = self._run_counts(run_id)
        with self._write() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, exit_code = ?, counts = ? WHERE id = ?",
                (_now(), exit_code, json.dumps(dict(counts), sort_keys=True), run_id),
            )

    def _run_counts(self, run_id: int) -> Counter[str]:
        found = self._db.execute("SELECT command FROM runs WHERE id = ?", (run_id,)).fetchone()
        if found is not None and found[0] == "run":
            return self.counts(source_ids=self.sources_of(run_id))
        return self.counts(touched_by=run_id)

    def run_settings(self, run_id: int) -> tuple[int, dict[str, Any]]:
        """Return a run's engagement id and settings; LedgerError if there is no such run."""
        found = self._db.execute(
            "SELECT engagement_id, settings FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if found is None:
            raise LedgerError(f"There is no run {run_id} in {self.path}: see `bulkimport status`.")
        return int(found[0]), json.loads(found[1])

    def unfinished_source(self, sha256: str, sheet: str, engagement_id: int) -> int | None:
        """Return the id of an earlier import of this exact file that is not settled yet."""
        found = self._db.execute(
            f"""
            SELECT s.id FROM sources s
            WHERE s.sha256 = ? AND s.sheet = ? AND s.engagement_id = ?
              AND (s.complete = 0 OR EXISTS (
                   SELECT 1 FROM {MEMBERS} WHERE l.source_id = s.id
                   AND r.status IN {sql_list(OPEN)}))
            ORDER BY s.id DESC LIMIT 1
            """,
            (sha256, sheet, engagement_id),
        ).fetchone()
        return None if found is None else int(found[0])

    def source_seen(self, sha256: str, sheet: str, engagement_id: int) -> bool:
        """True when this exact file was fully recorded for this engagement before."""
        found = self._db.execute(
            "SELECT 1 FROM sources WHERE sha256 = ? AND sheet = ? AND engagement_id = ? "
            "AND complete = 1",
            (sha256, sheet, engagement_id),
        ).fetchone()
        return found is not None

    def add_source(
        self,
        run_id: int,
        engagement_id: int,
        path: str,
        sha256: str,
        sheet: str,
        header: Sequence[str],
    ) -> int:
        """Record a new version of a file; its base is the file's latest earlier version.

        The base is the newest version with the same path, sheet and engagement,
        else one with the same content (a file that moved).
        """
        with self._write() as db:
            base = db.execute(
                "SELECT id FROM sources WHERE engagement_id = ? AND sheet = ? "
                "AND (path = ? OR sha256 = ?) ORDER BY path = ? DESC, id DESC LIMIT 1",
                (engagement_id, sheet, stored_text(path), sha256, stored_text(path)),
            ).fetchone()
            cursor = db.execute(
                "INSERT INTO sources (run_id, engagement_id, path, sha256, sheet, header, base_id) "
                "VALUES (?,?,?,?,?,?,?)",
                (
                    run_id,
                    engagement_id,
                    stored_text(path),
                    sha256,
                    sheet,
                    json.dumps(list(header)),
                    None if base is None else base[0],
                ),
            )
        return int(cursor.lastrowid or 0)

    def base_of(self, source_id: int) -> int | None:
        """Return the earlier version of the file a version may refer to, if any."""
        found = self._db.execute(
            "SELECT base_id FROM sources WHERE id = ?", (source_id,)
        ).fetchone()
        return None if found is None or found[0] is None else int(found[0])

    def members(self, source_id: int) -> Iterator[MemberRow]:
        """Yield the rows a version holds, in its row order."""
        cursor = self._db.cursor()
        cursor.execute(
            f"SELECT r.id, r.status, r.identity, r.reason, r.payload, r.cells FROM {MEMBERS} "
            f"WHERE l.source_id = ? ORDER BY {MEMBER_ROW}",
            (source_id,),
        )
        for row_id, status, identity, reason, payload, cells in cursor:
            yield MemberRow(row_id, RowStatus(status), identity, reason, payload, cells)

    def latest_sources(self, source_ids: Sequence[int] | None = None) -> list[int]:
        """Return the newest version of each file (path, sheet, engagement), oldest file first.

        With ``source_ids``, of the files those versions belong to.
        """
        where, params = "", tuple[int, ...]()
        if source_ids is not None:
            where = (
                "WHERE (path, sheet, engagement_id) IN (SELECT path, sheet, engagement_id "
                f"FROM sources WHERE id IN ({_marks(source_ids)}))"
            )
            params = tuple(source_ids)
        return [
            int(newest)
            for (newest,) in self._db.execute(
                f"SELECT max(id) FROM sources {where} GROUP BY path, sheet, engagement_id "
                "ORDER BY min(id)",
                params,
            )
        ]

    def link_sources(self, run_id: int, source_ids: Sequence[int]) -> None:
        """Record that ``run_id`` works on these sources (new or resumed)."""
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO run_sources (run_id, source_id) VALUES (?, ?)",
                [(run_id, source_id) for source_id in source_ids],
            )

    def sources_of(self, run_id: int) -> list[int]:
        """Return the ids of the sources a run worked on."""
        return [
            int(source_id)
            for (source_id,) in self._db.execute(
                "SELECT source_id FROM run_sources WHERE run_id = ? ORDER BY source_id", (run_id,)
            )
        ]

    def engagements_with_open_rows(self, *, include_rejected: bool = False) -> list[int]:
        """Return the engagements that have rows to send (open ones; failed too, if asked).

        Rows a killed run left ``sending`` count: the send recovers them first.
        """
        statuses = (*OPEN, S.FAILED) if include_rejected else OPEN
        marks = ",".join("?" * len(statuses))
        return [
            int(e)
            for (e,) in self._db.execute(
                f"SELECT DISTINCT engagement_id FROM rows WHERE status IN ({marks}) "
                "ORDER BY engagement_id",
                [s.value for s in statuses],
            )
        ]

    def last_settings(self, engagement_id: int) -> dict[str, Any]:
        """Return the settings of the newest run for an engagement ({} if none)."""
        found = self._db.execute(
            "SELECT settings FROM runs WHERE engagement_id = ? ORDER BY id DESC LIMIT 1",
            (engagement_id,),
        ).fetchone()
        return {} if found is None else dict(json.loads(found[0]))

    def complete_source(self, source_id: int) -> None:
        with self._write() as db:
            db.execute("UPDATE sources SET complete = 1 WHERE id = ?", (source_id,))

    # Rows ---------------------------------------------------------------------

    def record_rows(
        self,
        source_id: int,
        run_id: int,
        engagement_id: int,
        rows: Sequence[NewRow | KeptRow],
    ) -> None:
        """Record a version's next rows, in row order: new ones, or references to kept ones.

        Rows this version already holds (a resumed import) keep their state.
        """
        for row in rows:
            if isinstance(row, NewRow):
                check_transition(None, row.status)
        now = _now()
        with self._write() as db:
            upto = self._recorded_upto(db, source_id)
            rows = [row for row in rows if row.row_number > upto]
            if not rows:
                return
            next_id = int(db.execute("SELECT coalesce(max(id), 0) + 1 FROM rows").fetchone()[0])
            members: list[tuple[int, int]] = []
            new: list[tuple[Any, ...]] = []
            for row in rows:
                if isinstance(row, KeptRow):
                    members.append((row.row_number, row.row_id))
                    continue
                members.append((row.row_number, next_id))
                new.append(
                    (
                        next_id,
                        source_id,
                        run_id,
                        run_id,
                        engagement_id,
                        row.row_number,
                        row.status.value,
                        row.identity,
                        row.phone,
                        row.contact_id,
                        row.reason,
                        None if row.payload is None else json.dumps(row.payload),
                        json.dumps(list(row.cells), ensure_ascii=False),
                        now,
                    )
                )
                next_id += 1
            db.executemany(
                """
                INSERT INTO rows (id, source_id, run_id, last_run_id, engagement_id,
                    row_number, status, identity, phone, contact_id, reason, payload, cells,
                    updated_at)
                VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                """,
                new,
            )
            self._add_spans(db, source_id, run_id, members)

    def recorded_upto(self, source_id: int) -> int:
        """Return the last row number a version holds (0 when it holds none)."""
        return self._recorded_upto(self._db, source_id)

    @staticmethod
    def _recorded_upto(db: sqlite3.Connection, source_id: int) -> int:
        """Return the last row number a version holds (0 when it holds none)."""
        found = db.execute(
            "SELECT max(first_row + row_count - 1) FROM spans WHERE source_id = ?", (source_id,)
        ).fetchone()
        return int(found[0] or 0)

    @staticmethod
    def _add_spans(
        db: sqlite3.Connection, source_id: int, run_id: int, members: Sequence[tuple[int, int]]
    ) -> None:
        """Add (row number, row id) pairs to a version, as few spans as they allow.

        The version's last span grows when this run wrote it and the pairs go on from it.
        """
        last = db.execute(
            "SELECT first_row, row_count, first_id, run_id FROM spans WHERE source_id = ? "
            "ORDER BY first_row DESC LIMIT 1",
            (source_id,),
        ).fetchone()
        spans: list[list[int]] = []  # [first_row, row_count, first_id]
        grown = 0
        for number, row_id in members:
            if spans:
                first_row, count, first_id = spans[-1]
                if number == first_row + count and row_id == first_id + count:
                    spans[-1][1] += 1
                    continue
            elif (
                last is not None
                and last[3] == run_id
                and number == last[0] + last[1] + grown
                and row_id == last[2] + last[1] + grown
            ):
                grown += 1
                continue
            spans.append([number, 1, row_id])
        if grown:
            db.execute(
                "UPDATE spans SET row_count = row_count + ? WHERE source_id = ? AND first_row = ?",
                (grown, source_id, last[0]),
            )
        db.executemany(
            "INSERT INTO spans (source_id, first_row, row_count, first_id, run_id) "
            "VALUES (?,?,?,?,?)",
            [(source_id, first, count, first_id, run_id) for first, count, first_id in spans],
        )

    def already_handled(
        self,
        engagement_id: int,
        identities: Iterable[str],
        *,
        exclude_source: int,
        exclude_rows: Collection[int] = (),
    ) -> dict[str, Handled]:
        """Return, per identity, why it needs no new send: subscribed, or queued elsewhere.

        Rows of ``exclude_source`` (the version being recorded) and ``exclude_rows``
        (rows it is about to keep) are not "elsewhere".
        """
        wanted = list(dict.fromkeys(identities))
        found: dict[str, Handled] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = _marks(chunk)
            for identity, subscription in self._subscriptions(engagement_id, chunk).items():
                found[identity] = Handled(subscription.describe(), subscription.contact_id)
            for row_id, identity, status, path, number in self._db.execute(
                f"""
                SELECT r.id, r.identity, r.status, s.path, r.row_number
                FROM rows r JOIN sources s ON s.id = r.source_id
                WHERE r.engagement_id = ? AND r.status IN {sql_list(OPEN)}
                  AND r.identity IN ({marks})
                  AND NOT EXISTS (SELECT 1 FROM spans l WHERE l.source_id = ?
                      AND r.id BETWEEN l.first_id AND l.first_id + l.row_count - 1)
                ORDER BY r.id
                """,
                (engagement_id, *chunk, exclude_source),
            ):
                if identity in found or row_id in exclude_rows:
                    continue
                found[identity] = Handled(
                    f"already queued for this engagement (row {number} of {path}, "
                    f"{status}): `bulkimport retry` sends it"
                )
        return found

    def _subscriptions(
        self, engagement_id: int, identities: Sequence[str]
    ) -> dict[str, Subscription]:
        """Return the subscriptions of these people (at most 500) to an engagement."""
        return {
            identity: Subscription(contact_id, at, run_id, row_id, path, number)
            for identity, contact_id, at, run_id, row_id, path, number in self._db.execute(
                f"""
                SELECT p.identity, p.contact_id, p.subscribed_at, p.run_id, p.row_id,
                       s.path, r.row_number
                FROM subscriptions p LEFT JOIN rows r ON r.id = p.row_id
                LEFT JOIN sources s ON s.id = r.source_id
                WHERE p.engagement_id = ? AND p.identity IN ({_marks(identities)})
                """,
                (engagement_id, *identities),
            )
        }

    def forget_unsent_rows(self, run_id: int, source_ids: Sequence[int]) -> int:
        """Forget what ``run_id`` recorded of these sources and never sent; return the rows.

        Sources the run itself added, left without rows, are forgotten too: a file
        that was refused is not an incomplete import.
        """
        marks = _marks(source_ids)
        with self._write() as db:
            db.execute(
                f"DELETE FROM spans WHERE run_id = ? AND source_id IN ({marks})",
                (run_id, *source_ids),
            )
            cursor = db.execute(
                f"DELETE FROM rows WHERE run_id = ? AND source_id IN ({marks}) "
                f"AND status IN {sql_list(UNSENT)}",
                (run_id, *source_ids),
            )
            empty = (
                f"id IN ({marks}) AND run_id = ? "
                "AND NOT EXISTS (SELECT 1 FROM spans l WHERE l.source_id = sources.id)"
            )
            forgotten = f"SELECT id FROM sources WHERE {empty}"
            db.execute(
                f"DELETE FROM run_sources WHERE source_id IN ({forgotten})", (*source_ids, run_id)
            )
            db.execute(f"DELETE FROM sources WHERE {empty}", (*source_ids, run_id))
        return cursor.rowcount

    def recover_interrupted(self) -> int:
        """Turn rows left ``sending`` by a crashed run into ``unknown``; return how many."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE rows SET status = ?, reuse = 1, updated_at = ?, "
                "reason = 'the run stopped while this row was being sent' WHERE status = ?",
                (S.UNKNOWN.value, _now(), S.SENDING.value),
            )
        return cursor.rowcount

    def queued_rows(
        self,
        *,
        engagement_id: int,
        statuses: Sequence[RowStatus] = SENDABLE,
        source_ids: Sequence[int] | None = None,
    ) -> Iterator[QueuedRow]:
        """Yield rows in ``statuses``, oldest first, a page at a time (safe to update meanwhile).

        ``source_ids`` are versions: the rows they hold, kept or new.
        """
        where = ["r.engagement_id = ?", f"r.status IN ({_marks(statuses)})"]
        params: list[Any] = [engagement_id, *(s.value for s in statuses)]
        if source_ids is not None:
            where.append(
                f"EXISTS (SELECT 1 FROM spans l WHERE l.source_id IN ({_marks(source_ids)}) "
                "AND r.id BETWEEN l.first_id AND l.first_id + l.row_count - 1)"
            )
            params.extend(source_ids)
        last = 0
        while True:
            page = self._db.execute(
                f"SELECT r.id, r.payload, r.status, r.reuse FROM rows r "
                f"WHERE {' AND '.join(where)} AND r.id > ? ORDER BY r.id LIMIT ?",
                (*params, last, PAGE),
            ).fetchall()
            if not page:
                return
            for row_id, payload, status, reuse in page:
                yield QueuedRow(row_id, json.loads(payload), RowStatus(status), bool(reuse))
            last = page[-1][0]

    def count_queued(
        self,
        engagement_id: int,
        source_ids: Sequence[int],
        statuses: Sequence[RowStatus] = SENDABLE,
    ) -> int:
        """Return how many rows of these versions wait to be sent."""
        found = self._db.execute(
            f"SELECT count(DISTINCT r.id) FROM {MEMBERS} WHERE r.engagement_id = ? "
            f"AND r.status IN ({_marks(statuses)}) AND l.source_id IN ({_marks(source_ids)})",
            (engagement_id, *(s.value for s in statuses), *source_ids),
        ).fetchone()
        return int(found[0])

    def mark_sending(self, row_ids: Sequence[int], run_id: int | None = None) -> None:
        """Commit a batch's rows as ``sending`` by ``run_id``: called before its request leaves."""
        with self._write() as db:
            self._guarded_update(
                db,
                S.SENDING,
                "last_run_id = coalesce(?, last_run_id)",
                [(run_id, row_id) for row_id in row_ids],
                _now(),
            )

    def settle(
        self, settlements: Sequence[Settlement], attempts: Sequence[AttemptRecord], run_id: int
    ) -> None:
        """Record a batch's outcome and its attempts in one transaction."""
        now = _now()
        with self._write() as db:
            by_status: dict[RowStatus, list[Settlement]] = {}
            for settlement in settlements:
                by_status.setdefault(settlement.status, []).append(settlement)
            for status, group in by_status.items():
                self._guarded_update(
                    db,
                    status,
                    "contact_id = coalesce(?, contact_id), reason = ?, reuse = max(reuse, ?), "
                    "last_run_id = ?",
                    [(s.contact_id, s.reason, int(s.maybe_sent), run_id, s.row_id) for s in group],
                    now,
                )
            subscribed = [s.row_id for s in by_status.get(S.SUBSCRIBED, ())]
            # One subscription per person: a later one (--resubscribe) replaces it.
            for start in range(0, len(subscribed), 500):
                chunk = subscribed[start : start + 500]
                db.execute(
                    f"""
                    INSERT INTO subscriptions
                        (engagement_id, identity, contact_id, subscribed_at, run_id, row_id)
                    SELECT engagement_id, identity, contact_id, ?, ?, id FROM rows
                    WHERE id IN ({_marks(chunk)}) AND identity IS NOT NULL ORDER BY id
                    ON CONFLICT (engagement_id, identity) DO UPDATE SET
                        contact_id = excluded.contact_id, subscribed_at = excluded.subscribed_at,
                        run_id = excluded.run_id, row_id = excluded.row_id
                    """,
                    (now, run_id, *chunk),
                )
            db.executemany(
                "INSERT INTO attempts (run_id, batch, started_at, status_code, kind, duration, "
                "reuse, row_count, message) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (
                        run_id,
                        a.batch,
                        datetime.fromtimestamp(a.started_at, UTC).isoformat(
                            timespec="milliseconds"
                        ),
                        a.status_code,
                        a.kind,
                        a.duration,
                        int(a.reuse),
                        a.row_count,
                        a.message,
                    )
                    for a in attempts
                ],
            )

    @staticmethod
    def _guarded_update(
        db: sqlite3.Connection,
        new: RowStatus,
        also_set: str,
        params: Sequence[tuple[Any, ...]],
        now: str,
    ) -> None:
        """Move rows to ``new``; raise IllegalTransition (rolling back) if any may not move.

        Each ``params`` tuple holds the values of ``also_set`` and ends with the row id.
        The legality check is the WHERE clause, derived from TRANSITIONS.
        """
        allowed = [state.value for state in sources_of(new)]
        marks = ",".join("?" * len(allowed)) or "NULL"
        assignments = f"status = ?, updated_at = ?{', ' + also_set if also_set else ''}"
        before = db.total_changes
        db.executemany(
            f"UPDATE rows SET {assignments} WHERE id = ? AND status IN ({marks})",
            [(new.value, now, *p[:-1], p[-1], *allowed) for p in params],
        )
        if db.total_changes - before != len(params):
            raise IllegalTransition(
                f"{len(params) - (db.total_changes - before)} row(s) cannot go to {new} "
                "from the state they are in"
            )

    # Rows that wait (send windows, --limit, --unknown hold) ---------------------

    def hold(self, row_ids: Sequence[int], reason: str) -> None:
        """Give pending rows the reason they wait (their window, a limit); status unchanged."""
        if not row_ids:
            return
        with self._write() as db:
            db.executemany(
                "UPDATE rows SET reason = ?, updated_at = ? WHERE id = ? AND status = ?",
                [(reason, _now(), row_id, S.PENDING.value) for row_id in row_ids],
            )

    def queued_by_ids(
        self, row_ids: Sequence[int], statuses: Sequence[RowStatus] = SENDABLE
    ) -> list[QueuedRow]:
        """Return those of some rows still in ``statuses``, oldest first (a wait's next round)."""
        found: list[QueuedRow] = []
        marks_of = ",".join("?" * len(statuses))
        for start in range(0, len(row_ids), 500):
            chunk = row_ids[start : start + 500]
            found.extend(
                QueuedRow(row_id, json.loads(payload), RowStatus(status), bool(reuse))
                for row_id, payload, status, reuse in self._db.execute(
                    f"SELECT id, payload, status, reuse FROM rows WHERE status IN ({marks_of}) "
                    f"AND id IN ({','.join('?' * len(chunk))})",
                    (*(s.value for s in statuses), *chunk),
                )
            )
        return sorted(found, key=lambda row: row.id)

    def count_in_state(self, engagement_id: int, status: RowStatus) -> int:
        """Return how many rows of an engagement are in one state (e.g. unknown, held)."""
        found = self._db.execute(
            "SELECT count(*) FROM rows WHERE engagement_id = ? AND status = ?",
            (engagement_id, status.value),
        ).fetchone()
        return int(found[0])

    # Reading ------------------------------------------------------------------

    def counts(
        self,
        *,
        run_id: int | None = None,
        source_ids: Sequence[int] | None = None,
        row_ids: Sequence[int] | None = None,
        touched_by: int | None = None,
    ) -> Counter[str]:
        """Count rows by status: of given rows, given sources, one run's rows, or all.

        ``touched_by`` counts the rows a run recorded or sent last (a retry's rows,
        a night's own rows), as they stand now.
        """
        if row_ids is not None:
            counted: Counter[str] = Counter()
            for start in range(0, len(row_ids), 500):
                chunk = row_ids[start : start + 500]
                counted.update(
                    {
                        status: n
                        for status, n in self._db.execute(
                            f"SELECT status, count(*) FROM rows WHERE id IN "
                            f"({','.join('?' * len(chunk))}) GROUP BY status",
                            chunk,
                        )
                    }
                )
            return counted
        if source_ids is not None:  # the rows these versions hold, as their lines show them
            query = (
                f"SELECT r.status, count(*) FROM {MEMBERS} "
                f"WHERE l.source_id IN ({_marks(source_ids)}) GROUP BY r.status"
            )
            params: Sequence[Any] = source_ids
        elif run_id is not None:
            query = "SELECT status, count(*) FROM rows WHERE run_id = ? GROUP BY status"
            params = (run_id,)
        elif touched_by is not None:
            query = "SELECT status, count(*) FROM rows WHERE last_run_id = ? GROUP BY status"
            params = (touched_by,)
        else:
            query, params = "SELECT status, count(*) FROM rows GROUP BY status", ()
        return Counter({status: n for status, n in self._db.execute(query, params)})

    def sources_of_rows(self, row_ids: Sequence[int]) -> list[int]:
        """Return the newest version of each file that holds some of these rows."""
        found: set[int] = set()
        for start in range(0, len(row_ids), 500):
            chunk = row_ids[start : start + 500]
            found.update(
                int(source_id)
                for (source_id,) in self._db.execute(
                    f"SELECT DISTINCT l.source_id FROM {MEMBERS} WHERE r.id IN ({_marks(chunk)})",
                    chunk,
                )
            )
        return self.latest_sources(sorted(found)) if found else []

    def runs(self) -> list[RunInfo]:
        """Every run, newest first, with its files and row counts."""
        infos = []
        for (
            run_id,
            command,
            engagement,
            started,
            finished,
            code,
            settings,
            counts,
        ) in self._db.execute(
            "SELECT id, command, engagement_id, started_at, finished_at, exit_code, "
            "settings, counts FROM runs ORDER BY id DESC"
        ).fetchall():
            files = [
                path
                for (path,) in self._db.execute(
                    "SELECT DISTINCT s.path FROM sources s "
                    "JOIN run_sources l ON l.source_id = s.id WHERE l.run_id = ? ORDER BY s.id",
                    (run_id,),
                )
            ]
            infos.append(
                RunInfo(
                    run_id,
                    command,
                    engagement,
                    started,
                    finished,
                    code,
                    files,
                    json.loads(counts) if counts else dict(self._run_counts(run_id)),
                    json.loads(settings),
                    self.incomplete_sources(self.sources_of(run_id)),
                )
            )
        return infos

    def incomplete_sources(self, source_ids: Sequence[int] | None = None) -> list[Incomplete]:
        """Return the files whose rows were not all recorded (a run stopped while reading).

        A file stops counting as incomplete once a later version of it (same
        path, sheet and engagement) was recorded to its end.
        """
        where, params = "", tuple[int, ...]()
        if source_ids is not None:
            where = f"AND s.id IN ({','.join('?' * len(source_ids)) or 'NULL'})"
            params = tuple(source_ids)
        found = self._db.execute(
            f"""
            SELECT s.id, s.path, s.sheet, s.engagement_id, coalesce(sum(l.row_count), 0),
                   max(l.first_row + l.row_count - 1)
            FROM sources s LEFT JOIN spans l ON l.source_id = s.id
            WHERE s.complete = 0 {where}
              AND NOT EXISTS (SELECT 1 FROM sources later WHERE later.id > s.id
                  AND later.path = s.path AND later.sheet = s.sheet
                  AND later.engagement_id = s.engagement_id AND later.complete = 1)
            GROUP BY s.id ORDER BY s.id
            """,
            params,
        ).fetchall()
        return [
            Incomplete(int(i), path, sheet, int(engagement), int(n), last)
            for i, path, sheet, engagement, n, last in found
        ]

    def headers(self, *, source_ids: Sequence[int] | None = None) -> list[list[str]]:
        """Return the header of each source (of some sources, or all), oldest first."""
        where, params = "", tuple[int, ...]()
        if source_ids is not None:
            where = f"WHERE id IN ({','.join('?' * len(source_ids)) or 'NULL'})"
            params = tuple(source_ids)
        return [
            list(json.loads(header))
            for (header,) in self._db.execute(
                f"SELECT header FROM sources {where} ORDER BY id", params
            )
        ]

    def result_rows(self, *, source_ids: Sequence[int] | None = None) -> Iterator[ResultRow]:
        """Yield the rows of some versions (or of every version), in version and row order.

        Each row comes with its person's subscription to the engagement, when
        there is one: a row kept from an earlier night or skipped for a person
        subscribed elsewhere carries the contact id all the same.
        """
        where, params = "", tuple[int, ...]()
        if source_ids is not None:
            where = f"WHERE l.source_id IN ({_marks(source_ids)})"
            params = tuple(source_ids)
        cursor = self._db.cursor()
        cursor.execute(
            f"""
            SELECT s.path, s.sheet, {MEMBER_ROW} AS number, r.status, r.contact_id, r.phone,
                   r.reason, s.header, r.cells, p.contact_id, p.subscribed_at, p.run_id,
                   p.row_id, ps.path, pr.row_number
            FROM {MEMBERS} JOIN sources s ON s.id = l.source_id
            LEFT JOIN subscriptions p
                ON p.engagement_id = r.engagement_id AND p.identity = r.identity
            LEFT JOIN rows pr ON pr.id = p.row_id LEFT JOIN sources ps ON ps.id = pr.source_id
            {where}
            ORDER BY l.source_id, number
            """,
            params,
        )
        headers: dict[str, list[str]] = {}
        for (
            path, sheet, number, status, contact_id, phone, reason, header, cells,
            p_contact, p_at, p_run, p_row, p_path, p_number,
        ) in cursor:  # fmt: skip
            parsed = headers.setdefault(header, json.loads(header))
            subscription = (
                None
                if p_at is None
                else Subscription(p_contact, p_at, p_run, p_row, p_path, p_number)
            )
            yield ResultRow(
                path,
                sheet,
                number,
                status,
                contact_id,
                phone,
                reason,
                parsed,
                json.loads(cells),
                subscription,
            )

    # Housekeeping -------------------------------------------------------------

    def discard(self, *, run_id: int | None = None, engagement_id: int | None = None) -> int:
        """Leave out, on a person's request, the unsent rows of a run or of an engagement.

        Pending, unknown and failed rows become ``discarded`` (never sent by any
        command again); return how many.
        """
        if run_id is None and engagement_id is None:
            raise ValueError("discard needs a run or an engagement")
        where, params = [f"status IN {sql_list(DISCARDABLE)}"], list[Any]()
        if run_id is not None:
            sources = self.sources_of(run_id)
            where.append(
                f"(last_run_id = ? OR EXISTS (SELECT 1 FROM spans l WHERE l.source_id IN "
                f"({_marks(sources)}) AND rows.id BETWEEN l.first_id "
                "AND l.first_id + l.row_count - 1))"
            )
            params.extend([run_id, *sources])
        if engagement_id is not None:
            where.append("engagement_id = ?")
            params.append(engagement_id)
        asked = f"run {run_id}" if run_id is not None else f"engagement {engagement_id}"
        with self._write() as db:
            ids = [
                row_id
                for (row_id,) in db.execute(
                    f"SELECT id FROM rows WHERE {' AND '.join(where)}", params
                )
            ]
            self._guarded_update(
                db,
                S.DISCARDED,
                "reason = ?",
                [(f"discarded on request (`bulkimport discard`, {asked})", i) for i in ids],
                _now(),
            )
        return len(ids)

    def engagements(self) -> list[EngagementInfo]:
        """Per engagement: the people subscribed and every row by status, each row once."""
        people = dict(
            self._db.execute(
                "SELECT engagement_id, count(*) FROM subscriptions GROUP BY engagement_id"
            ).fetchall()
        )
        counts: dict[int, dict[str, int]] = {}
        for engagement, status, n in self._db.execute(
            "SELECT engagement_id, status, count(*) FROM rows GROUP BY engagement_id, status"
        ):
            counts.setdefault(int(engagement), {})[status] = int(n)
        return [
            EngagementInfo(engagement, int(people.get(engagement, 0)), counts[engagement])
            for engagement in sorted(counts)
        ]
