"""Write a file or a folder so that its final name holds the old version or the new one, never half of one.

The files a crash must never leave half written (checkpoints, the feature cache, image stores, probe
memos, ``advice.json``, ``summary.json``, the generated shapes folder) go through :func:`atomic_path`: the
new version is written under a temporary name in the same folder, then moved over the final name with
one ``os.replace`` (atomic on POSIX and Windows within one file system). When the writing fails, the
temporary file or folder is removed and whatever was under the final name stays as it was. A process
killed mid-write (kill -9) leaves only its temporary: hidden, named after the target and the writer's
pid, ending in ``.tmp`` (:data:`TEMP_SUFFIX`), so it matches no glob for the real files.

Standard library only: every layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, directory: bool = False, durable: bool = False
) -> Iterator[Path]:
    """Yield a new temporary path beside ``path``; when the block ends normally, move it onto ``path``.

    The temporary is created empty (a file, or a folder with ``directory=True``) with the permissions a
    plain ``open``/``mkdir`` would give it (the umask's), so the block may write into it or overwrite it.
    If the block raises, or the move does, the temporary is removed and the exception propagates.
    ``durable=True`` also flushes the file and then the folder's entry to the disk (``fsync``), so the new
    version survives a power cut once this returns. The folder holding ``path`` must exist. A folder
    replaces only a missing or empty folder (POSIX): another writer that got there first makes the move
    fail with an ``OSError``.
    """
    target = Path(path)
    prefix = f".{target.name}.{os.getpid()}."
    if directory:
        temp = Path(tempfile.mkdtemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=target.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=target.parent)
        os.close(fd)
        temp = Path(name)
    try:
        # mkstemp makes 0600 and mkdtemp 0700: give the usual permissions of a new file or folder
        os.chmod(temp, (0o777 if directory else 0o666) & ~_umask())
        yield temp
        if durable and not directory:
            _fsync_file(temp)
        os.replace(temp, target)
    except BaseException:
        _remove(temp, directory)
        raise
    if durable:
        _fsync_dir(target.parent)


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[Path], object],
    *,
    directory: bool = False,
    durable: bool = False,
) -> Path:
    """``write(temporary)`` then the move onto ``path`` (see :func:`atomic_path`); returns ``path``."""
    with atomic_path(path, directory=directory, durable=durable) as temp:
        write(temp)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """``Path(path).write_text(text)``, atomically; returns ``path``."""
    return atomic_write(path, lambda temp: temp.write_text(text))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    """Flush a file's data to the disk (an error propagates: the new version may not be there)."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(temp: Path, directory: bool) -> None:
    if directory:
        shutil.rmtree(temp, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(temp)
