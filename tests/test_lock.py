"""The ledger lock: one lock per ledger file, whatever path names it."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulkimport.cli import main
from bulkimport.errors import LedgerError, LedgerLocked
from bulkimport.ledger import lock as lock_module
from bulkimport.ledger.lock import LedgerLock
from bulkimport.ledger.store import Ledger
from bulkimport.sandbox import SANDBOX_TOKEN, Sandbox

STARTED = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"


@contextmanager
def per_path_lock(ledger: Path) -> Iterator[None]:
    """The lock as it was: an flock on ``<ledger as typed>.lock``, never on the ledger."""
    fd = os.open(f"{ledger}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LedgerLocked("held") from None
    try:
        yield
    finally:
        os.close(fd)


Lock = Callable[[Path], AbstractContextManager[object]]


def second_path(kind: str, ledger: Path) -> Path:
    """Return another way to reach ``ledger`` (the first holder has already locked it)."""
    if kind == "symlink":
        other = ledger.with_name("link.sqlite")
        other.symlink_to(ledger.name)
    elif kind == "hard link":
        other = ledger.with_name("hard.sqlite")
        os.link(ledger, other)
    elif kind == "relative path":
        other = Path(os.path.relpath(ledger))
    else:  # "deleted lock file": the same path, after someone removed LEDGER.lock
        Path(f"{ledger}.lock").unlink()
        other = ledger
    return other


def both_get_in(make_lock: Lock, kind: str, ledger: Path) -> bool:
    with make_lock(ledger):
        other = second_path(kind, ledger)
        try:
            with make_lock(other):
                return True
        except LedgerLocked:
            return False


KINDS = ["symlink", "hard link", "deleted lock file", "relative path"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_path_to_one_ledger_meets_one_lock(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ledger = tmp_path / "ledger.sqlite"
    ledger.write_bytes(b"")
    assert not both_get_in(LedgerLock, kind, ledger)


@pytest.mark.parametrize("kind", ["symlink", "hard link", "deleted lock file"])
def test_a_lock_beside_the_path_as_typed_lets_both_in(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cases above tell the two designs apart: a per-path lock file lets both runs in.
    monkeypatch.chdir(tmp_path)
    ledger = tmp_path / "ledger.sqlite"
    ledger.write_bytes(b"")
    assert both_get_in(per_path_lock, kind, ledger)


def test_the_message_names_the_holder_through_a_symlink(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    link = tmp_path / "link.sqlite"
    link.symlink_to(ledger)
    with LedgerLock(ledger), pytest.raises(LedgerLocked) as caught:
        LedgerLock(link).acquire()
    expected = (
        rf"Another bulkimport run \(pid {os.getpid()}, started {STARTED}\) is using {link}: "
        r"wait for it to finish, or use another --ledger\."
    )
    assert re.fullmatch(expected, str(caught.value)), caught.value


def test_through_a_hard_link_the_holder_is_unknown_but_the_lock_holds(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    with LedgerLock(ledger):
        os.link(ledger, tmp_path / "hard.sqlite")
        with pytest.raises(LedgerLocked) as caught:
            LedgerLock(tmp_path / "hard.sqlite").acquire()
    assert str(caught.value) == (
        f"Another bulkimport run (pid unknown) is using {tmp_path / 'hard.sqlite'}: "
        "wait for it to finish, or use another --ledger."
    )


def test_the_note_is_private_names_the_resolved_ledger_and_is_emptied_after(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    link = tmp_path / "link.sqlite"
    link.symlink_to(ledger)
    previous = os.umask(0)
    try:
        with LedgerLock(link):
            note = tmp_path / "ledger.sqlite.lock"
            assert oct(stat.S_IMODE(ledger.stat().st_mode)) == "0o600"
            assert oct(stat.S_IMODE(note.stat().st_mode)) == "0o600"
            assert f'"pid": {os.getpid()}' in note.read_text(encoding="utf-8")
            assert f'"ledger": "{ledger}"' in note.read_text(encoding="utf-8")
            assert not (tmp_path / "link.sqlite.lock").exists()
    finally:
        os.umask(previous)
    assert note.read_bytes() == b""
    assert not ledger.exists()  # created by the lock, never written: not left behind
    assert link.is_symlink()


def test_a_ledger_with_data_stays_after_the_lock(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    with LedgerLock(ledger):
        Ledger.open(ledger).close()
    assert ledger.stat().st_size > 0
    with LedgerLock(ledger):  # free again
        pass


def test_sqlite_works_under_the_lock_and_does_not_block_it(tmp_path: Path) -> None:
    # SQLite locks with fcntl, the lock with flock: on Linux they do not meet.
    ledger = tmp_path / "ledger.sqlite"
    link = tmp_path / "link.sqlite"
    link.symlink_to(ledger)
    with LedgerLock(ledger):
        book = Ledger.open(link)
        book.close()
        child = subprocess.run(
            [sys.executable, "-c", CHILD_WRITES, str(ledger)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert child.stdout == "wrote\n", child.stderr
    holder = sqlite3.connect(ledger, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # SQLite's strongest lock, held by this process
    try:
        child = subprocess.run(
            [sys.executable, "-c", CHILD_LOCKS, str(link)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert child.stdout == "locked\n", child.stderr


CHILD_WRITES = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
db.execute("BEGIN IMMEDIATE"); db.execute("CREATE TABLE probe (x)"); db.execute("COMMIT")
print("wrote")
"""
CHILD_LOCKS = """
import sys
from pathlib import Path
from bulkimport.ledger.lock import LedgerLock
with LedgerLock(Path(sys.argv[1])):
    print("locked")
"""
CHILD_HOLDS = """
import sys
from pathlib import Path
from bulkimport.ledger.lock import LedgerLock
with LedgerLock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.mark.parametrize("kill", [False, True], ids=["exits", "killed"])
def test_a_child_process_holding_the_lock_keeps_every_path_out(kill: bool, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    Ledger.open(ledger).close()
    link = tmp_path / "link.sqlite"
    link.symlink_to(ledger)
    os.link(ledger, tmp_path / "hard.sqlite")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_HOLDS, str(link)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline() == "locked\n"
        with pytest.raises(LedgerLocked, match=rf"\(pid {child.pid}, started {STARTED}\)"):
            LedgerLock(ledger).acquire()
        for other in (link, tmp_path / "hard.sqlite"):
            with pytest.raises(LedgerLocked):
                LedgerLock(other).acquire()
        if kill:
            child.kill()  # the OS releases the lock of a killed process
        else:
            child.stdin.close()
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    with LedgerLock(tmp_path / "hard.sqlite"):
        pass


# --- paths that cannot be locked ----------------------------------------------------------


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LedgerError) as caught:
        LedgerLock(tmp_path).acquire()
    assert str(caught.value) == f"Ledger {tmp_path} is a folder: give a file name with --ledger."


def test_a_symlink_loop_is_refused(tmp_path: Path) -> None:
    loop = tmp_path / "loop.sqlite"
    loop.symlink_to(loop.name)
    with pytest.raises(LedgerError) as caught:
        LedgerLock(loop).acquire()
    assert str(caught.value) == (
        f"The ledger {loop} is a symbolic link that loops (it points back to itself): "
        "point it at the ledger file, or give the file itself with --ledger."
    )


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    ledger = tmp_path / "nowhere" / "ledger.sqlite"
    with pytest.raises(LedgerError) as caught:
        LedgerLock(ledger).acquire()
    assert str(caught.value) == (
        f"Cannot create the ledger {ledger}: its folder does not exist; "
        "create the folder or give another file with --ledger."
    )


def test_a_ledger_without_permission_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulated: the tests may run as root, who may open anything.
    def denied(path: object, flags: int, mode: int = 0o777) -> int:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(lock_module.os, "open", denied)
    ledger = tmp_path / "ledger.sqlite"
    with pytest.raises(LedgerError) as caught:
        LedgerLock(ledger).acquire()
    assert str(caught.value) == (
        f"Cannot open the ledger {ledger} to write (Permission denied): run as the user "
        "who owns it, fix its permissions, or give another file with --ledger."
    )


def test_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "ledger.sqlite"
    os.mkfifo(fifo)
    with pytest.raises(LedgerError) as caught:
        LedgerLock(fifo).acquire()
    assert str(caught.value) == (
        f"The ledger {fifo} is not a regular file: give a file name with --ledger."
    )


def test_run_on_a_symlink_loop_exits_2_with_one_line(tmp_path: Path) -> None:
    loop = tmp_path / "loop.sqlite"
    loop.symlink_to(loop.name)
    people = tmp_path / "people.csv"
    people.write_text("Name,Mobile\nAna,0917 123 4567\n", encoding="utf-8")
    with Sandbox() as api:
        result = CliRunner().invoke(
            main,
            ["run", str(people), "--engagement", "1234", "--country", "PH",
             "--api-url", api.url, "--ledger", str(loop)],
            env={"ENGAGESPARK_API_KEY": SANDBOX_TOKEN},
        )  # fmt: skip
        assert api.request_count() == 0
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stderr == (
        f"Error: The ledger {loop} is a symbolic link that loops (it points back to itself): "
        "point it at the ledger file, or give the file itself with --ledger.\n"
    )
