"""One lock per ledger file, whatever path names it, so two runs never share a ledger.

The lock is an ``flock`` on the ledger file itself (created 0600 when missing),
so a symlink, a hard link or a relative path to the same file all meet the
same lock, and deleting the ``.lock`` note beside it lets no one in. SQLite's
own locks are POSIX ``fcntl`` locks, which do not interact with ``flock`` on
Linux, so the ledger works as usual under it (on NFS, where Linux emulates
``flock`` with ``fcntl`` locks, neither this lock nor SQLite's WAL is safe).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from bulkimport.errors import LedgerError, LedgerLocked

log = logging.getLogger(__name__)

# The ledger's inode changes under us only when it is deleted or replaced between our
# open and our lock; a few tries settle that race.
_TRIES = 5


class LedgerLock:
    """Holds an exclusive ``flock`` on the ledger file for as long as a run lasts.

    ``LedgerLock(path)`` is a context manager (or call :meth:`acquire` and
    :meth:`release`). :meth:`acquire` raises LedgerLocked at once (it never
    waits) when another holder has the file, through whatever name, and
    LedgerError with a one-line message when the path cannot be locked: a
    folder, a symlink loop, a missing folder, no permission.

    The OS releases the lock when the process dies, even on ``kill -9``, so a
    stale note never blocks the next run. While held, ``<resolved ledger>.lock``
    (mode 0600) names the holder's pid and start time for the message others
    get; it is emptied on release. Release the lock only after closing the
    ledger's SQLite connections: closing a descriptor of a file drops the
    process's POSIX locks on it, SQLite's included. A ledger file the lock
    created and nobody wrote to is removed on release.
    """

    def __init__(self, ledger: Path) -> None:
        self.ledger = ledger
        self.path = Path(f"{ledger}.lock")  # the note; beside the resolved ledger once acquired
        self._resolved = ledger
        self._fd: int | None = None
        self._note: int | None = None
        self._created = False

    def acquire(self) -> None:
        """Take the lock or raise LedgerLocked / LedgerError; never waits."""
        if self._fd is not None:
            raise LedgerLocked(f"This run already holds the lock on {self.ledger}.")
        self._resolved = _resolve(self.ledger)
        self.path = Path(f"{self._resolved}.lock")
        for _ in range(_TRIES):
            fd, created = _open(self.ledger, self._resolved)
            try:
                _flock(fd, self.ledger, self.path, _identity(os.fstat(fd)))
            except BaseException:
                os.close(fd)
                raise
            if _still_named(self._resolved, fd):
                break
            # Deleted or replaced between our open and our lock: lock what the name holds now.
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        else:
            raise LedgerError(
                f"The ledger {self.ledger} keeps being replaced while it is locked: "
                "stop whatever renames or deletes it, then run again."
            )
        self._fd, self._created = fd, created
        try:
            self._take_note()
        except BaseException:
            self.release()
            raise

    def _take_note(self) -> None:
        """Lock the note too (as bulkimport did before it locked the ledger) and sign it."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            self._note = os.open(self.path, flags, 0o600)
        except OSError as error:
            raise LedgerError(
                f"Cannot write the lock file {self.path} ({error.strerror}): the ledger's "
                "folder must be writable by this user; fix its permissions or give another "
                "file with --ledger."
            ) from error
        assert self._fd is not None
        file = _identity(os.fstat(self._fd))
        try:
            _flock(self._note, self.ledger, self.path, file)
        except BaseException:
            os.close(self._note)  # someone else's note: leave it as it is
            self._note = None
            raise
        started = datetime.now(UTC).isoformat(timespec="seconds")
        note = {"pid": os.getpid(), "started": started, "ledger": str(self._resolved)}
        os.ftruncate(self._note, 0)
        os.pwrite(self._note, json.dumps({**note, "file": list(file)}).encode(), 0)

    def release(self) -> None:
        """Empty the note, remove a ledger file the lock created if still empty, unlock."""
        fd, self._fd = self._fd, None
        note, self._note = self._note, None
        if note is not None:
            try:
                os.ftruncate(note, 0)  # the note only names a live holder
            except OSError as error:
                log.debug("emptying %s: %s", self.path, error)
            fcntl.flock(note, fcntl.LOCK_UN)
            os.close(note)
        if fd is None:
            return
        try:
            if self._created and self._untouched(fd):
                # Nothing was written: leave no empty file (a run that opened it retries).
                os.unlink(self._resolved)
        except OSError as error:
            log.debug("removing the empty ledger %s: %s", self._resolved, error)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _untouched(self, fd: int) -> bool:
        wal = Path(f"{self._resolved}-wal")
        return os.fstat(fd).st_size == 0 and not wal.exists() and _still_named(self._resolved, fd)

    def __enter__(self) -> LedgerLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()


def _flock(fd: int, ledger: Path, note: Path, file: tuple[int, int]) -> None:
    """Lock ``fd`` exclusively at once; LedgerLocked names the holder of ledger ``file``."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise LedgerLocked(
            f"Another bulkimport run ({_holder(note, file)}) is using "
            f"{ledger}: wait for it to finish, or use another --ledger."
        ) from None
    except OSError as error:
        raise LedgerError(
            f"Cannot lock the ledger {ledger} ({error.strerror}): "
            "put the ledger on a local disk, or give another file with --ledger."
        ) from error


def _resolve(ledger: Path) -> Path:
    try:
        return ledger.resolve()
    except RuntimeError as error:  # Python 3.11 raises this for a symlink loop
        raise _refusal(ledger, OSError(errno.ELOOP, os.strerror(errno.ELOOP))) from error
    except OSError as error:
        raise _refusal(ledger, error) from error


def _open(ledger: Path, resolved: Path) -> tuple[int, bool]:
    """Open the ledger file for locking, creating it (0600) when missing; say if we created it."""
    flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOCTTY
    try:
        try:
            fd, created = os.open(resolved, flags | os.O_CREAT | os.O_EXCL, 0o600), True
        except FileExistsError:
            fd, created = os.open(resolved, flags), False
    except OSError as error:
        raise _refusal(ledger, error) from error
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LedgerError(
            f"The ledger {ledger} is not a regular file: give a file name with --ledger."
        )
    return fd, created


def _refusal(ledger: Path, error: OSError) -> LedgerError:
    """Return the one-line message for a ledger path that cannot be opened to lock."""
    code = error.errno
    if code == errno.EISDIR:
        return LedgerError(f"Ledger {ledger} is a folder: give a file name with --ledger.")
    if code == errno.ELOOP:
        return LedgerError(
            f"The ledger {ledger} is a symbolic link that loops (it points back to itself): "
            "point it at the ledger file, or give the file itself with --ledger."
        )
    if code in (errno.ENOENT, errno.ENOTDIR):
        return LedgerError(
            f"Cannot create the ledger {ledger}: its folder does not exist; "
            "create the folder or give another file with --ledger."
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return LedgerError(
            f"Cannot open the ledger {ledger} to write ({error.strerror}): run as the user "
            "who owns it, fix its permissions, or give another file with --ledger."
        )
    return LedgerError(
        f"Cannot open the ledger {ledger} ({error.strerror}): "
        "check the path or give another file with --ledger."
    )


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def _still_named(path: Path, fd: int) -> bool:
    """Return True when ``path`` still names the file open as ``fd``."""
    try:
        return _identity(os.stat(path)) == _identity(os.fstat(fd))
    except OSError:
        return False


def _holder(note: Path, identity: tuple[int, int]) -> str:
    """Return "pid N, started T" from the note, when it describes this very file."""
    try:
        info = json.loads(note.read_bytes() or b"{}")
        if tuple(info.get("file", identity)) != identity:
            return "pid unknown"  # the note of another file once at this name
        return f"pid {info['pid']}, started {info['started']}"
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        return "pid unknown"
