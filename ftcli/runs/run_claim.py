"""A run folder belongs to one run at a time: an exclusive claim, taken atomically, released at the end.

Checking a folder for earlier results and then creating it is a race: two ``ftcli train`` started
at the same moment with the same ``hydra.run.dir`` would both find it empty and both train into it.
So the first thing a run does in its folder is to claim it: it opens ``.ftcli-claim`` there and takes
an exclusive, non-blocking lock on it (``fcntl.flock``), which the operating system gives to exactly
one process and takes back when that process ends, however it ends (kill -9 and an out-of-memory
kill included). The holder then writes who it is into the file: pid, host, start time and command.
A second run finds the lock held, reads that record and stops with an error naming the folder and
the run that holds it; it never waits.

At the end the holder marks its record finished and lets go. A record found unfinished by a run that
got the lock is the claim of a run that died without finishing (killed, or its machine stopped): a
stale claim. It is reported on one line and taken over; the folder's results, if any, still refuse
the new run (``hydra_hooks.run_dir_guard``), with ``resume=`` to continue the interrupted run.

Where the file system cannot lock (some network mounts, or no ``fcntl``), the record alone decides:
an unfinished record of a process alive on this host holds the folder; any other is stale.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ftcli.errors import OutputError

try:
    import fcntl
except ImportError:  # Windows: the record alone decides
    fcntl = None  # type: ignore[assignment]

CLAIM_FILE = ".ftcli-claim"
# a run that just took the lock writes its record at once; a reader waits this long for it
RECORD_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class Holder:
    """Who claimed a folder: enough to find the process, or to tell that it is gone."""

    pid: int
    host: str
    started: str
    command: str
    finished: str | None = None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started}: {self.command}"

    @classmethod
    def this_process(cls) -> Holder:
        return cls(os.getpid(), socket.gethostname(), _now(), _command_line())


class RunClaim:
    """A held claim on a run folder; :meth:`release` (or the end of the process) lets go of it."""

    def __init__(self, folder: Path, fd: int, locked: bool, stale: Holder | None) -> None:
        self.folder = folder
        self.path = folder / CLAIM_FILE
        self.stale = stale  # the unfinished record of a dead run this claim took over, if any
        self._fd: int | None = fd
        self._locked = locked
        self._record = Holder.this_process()
        _write_record(fd, self._record)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Mark the record finished, then let go of the lock (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        _held.pop(self.folder, None)
        with contextlib.suppress(OSError):  # a full or vanished disk must not hide the run's own outcome
            _write_record(fd, Holder(**{**asdict(self._record), "finished": _now()}))
        with contextlib.suppress(OSError):
            if self._locked and fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# the claims this process holds, by folder: one process runs one Hydra run at a time, so a claim it
# still holds on a folder is left from an earlier run in this process (a test, a notebook) and is replaced
_held: dict[Path, RunClaim] = {}


def claim(folder: Path, key: str) -> RunClaim:
    """Claim ``folder`` (created if missing) for this process, or raise OutputError naming the holder."""
    given, folder = folder, folder.absolute()
    earlier = _held.pop(folder, None)
    if earlier is not None:
        earlier.release()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CLAIM_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        locked = _lock(fd)
        record = _read_record(fd, wait=locked is False)
        if locked is False or (locked is None and record and _alive_here(record)):
            raise in_use(given, key, record)
        stale = record if record is not None and record.finished is None else None
        held = RunClaim(folder, fd, bool(locked), stale)  # writes this run's record
    except BaseException:
        os.close(fd)  # and with it the lock
        raise
    _held[folder] = held
    return held


def held_elsewhere(folder: Path, key: str) -> OutputError | None:
    """The error :func:`claim` would raise if another running process holds ``folder``, found without
    writing anything: so that a folder in use is reported as such, before its results are."""
    path = folder / CLAIM_FILE
    if folder.absolute() in _held or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        locked = _lock(fd)
        record = _read_record(fd, wait=locked is False)
    finally:
        os.close(fd)  # and with it a lock this probe took
    if locked is False or (locked is None and record and _alive_here(record)):
        return in_use(folder, key, record)
    return None


def in_use(folder: Path, key: str, holder: Holder | None) -> OutputError:
    """The error of a run that found ``folder`` claimed by another one that is still running."""
    who = holder.describe() if holder is not None else "a process whose record is not written yet"
    return OutputError(
        f"{key}={folder} is in use by another run ({who}); two runs never write into one folder.",
        f"Wait for that run to end, or choose another folder (e.g. {key}={folder}-1), "
        f"or leave {key} unset (every run then gets its own timestamped folder).",
    )


def stale_note(held: RunClaim, key: str) -> str | None:
    """One line about the unfinished claim of a dead run that ``held`` took over, or None."""
    if held.stale is None:
        return None
    return (
        f"{key}={held.folder} was claimed by a run that ended without finishing ({held.stale.describe()}); "
        "it is not running any more, so this run takes the folder over."
    )


def _lock(fd: int) -> bool | None:
    """True: locked; False: another process holds the lock; None: this file system cannot lock."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK, EOPNOTSUPP: a mount without locks
        return None
    return True


def _read_record(fd: int, wait: bool) -> Holder | None:
    """The record in the claim file; ``wait``: give a holder that just locked the time to write it."""
    deadline = time.monotonic() + (RECORD_WAIT_SECONDS if wait else 0.0)
    while True:
        with contextlib.suppress(ValueError, TypeError, UnicodeDecodeError):
            os.lseek(fd, 0, os.SEEK_SET)
            data = json.loads(os.read(fd, 1 << 16).decode() or "null")
            return Holder(**data) if isinstance(data, dict) else None
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def _write_record(fd: int, record: Holder) -> None:
    data = json.dumps(asdict(record)).encode()
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)


def _alive_here(record: Holder) -> bool:
    """Whether the record's process runs on this host (a pid elsewhere cannot be checked: assume so)."""
    if record.finished is not None:
        return False
    if record.host != socket.gethostname():
        return True
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _command_line() -> str:
    """``ftcli VERB ARGS``: a Hydra app runs as ``ftcli/commands/VERB.py`` with the user's arguments."""
    return " ".join(["ftcli", Path(sys.argv[0]).stem, *sys.argv[1:]])


def _release_all() -> None:
    for held in list(_held.values()):
        held.release()


atexit.register(_release_all)
