"""Errors a user can fix: the CLI prints them as a short message (no traceback) and exits 2."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Iterator, Sequence


class FtcliError(Exception):
    """Base of every user-facing error: what was wrong, and what to type instead."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class ConfigError(FtcliError):
    """A config value is unknown, of the wrong type or out of range."""


class DataError(FtcliError):
    """The dataset is missing, empty, mis-shaped or holds unreadable files."""


class WeightsError(FtcliError):
    """Weights or checkpoints cannot be found, downloaded or loaded (or would run code if loaded)."""


class OutputError(FtcliError):
    """The run directory cannot be written, or already holds an earlier run that must not be overwritten."""


# what the disk answers when it refuses a write, and what that means; only errors that no read returns,
# so that the error boundary may name any of them as a failed write (``disk_error``)
DISK_FULL = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file is larger than the file system allows",
    errno.EROFS: "the file system is read-only",
}
# refused writes that a read can also meet: named as such only where a write failed
NO_PERMISSION = {errno.EACCES: "no permission to write there", errno.EPERM: "no permission to write there"}


def write_error(
    path: str | os.PathLike[str], exc: OSError, elsewhere: str = "", *, atomic: bool = True
) -> OutputError | None:
    """The error of a write the disk refused (full, over quota, read-only, not allowed), or None when
    ``exc`` is another failure. ``atomic``: the write went through ``ftcli.atomic_files``, so what the
    name held before is unchanged, and the message says so. ``elsewhere`` says where else to write."""
    reason = DISK_FULL.get(exc.errno or 0) or NO_PERMISSION.get(exc.errno or 0)
    if reason is None:
        return None
    code = errno.errorcode.get(exc.errno or 0, "")
    folder = os.path.dirname(os.path.abspath(path))
    fix = "free space on it (df -h)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "make it writable"
    kept = " Nothing was written under that name; what it held before is unchanged." if atomic else ""
    return OutputError(
        f"Cannot write {path}: {reason} ({code}).{kept}",
        f"{folder}: {fix}{', or ' + elsewhere if elsewhere else ''}.",
    )


@contextlib.contextmanager
def refused_writes(path: str | os.PathLike[str], elsewhere: str = "") -> Iterator[None]:
    """Inside: a write of ``path`` (atomic) that the disk refuses becomes :func:`write_error`'s error."""
    try:
        yield
    except OSError as exc:
        err = write_error(path, exc, elsewhere)
        if err is None:
            raise
        raise err from exc


def disk_error(exc: BaseException) -> OutputError | None:
    """For the error boundary: a write refused by a full or read-only disk anywhere (a log, a plot)."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL:
        return write_error(exc.filename or "a file", exc, atomic=False)
    return None


class DivergedError(FtcliError):
    """Training produced a NaN or infinite loss (or weights); nothing after that point was saved."""


class TerminatedError(FtcliError):
    """SIGTERM stopped the run (a scheduler preempting the job, or its time limit): the checkpoint of
    the last finished epoch continues it. Exit 143 (128 + SIGTERM), as a shell reports such a stop."""

    exit_code = 143


class ExportError(FtcliError):
    """An export failed or does not reproduce PyTorch's outputs: not the user's input, so exit 1."""

    exit_code = 1


def unknown_name(kind: str, name: object, valid: list[str], key: str | None = None) -> ConfigError:
    """The error for a name that is not in a registry: it lists the valid names."""
    shown = ", ".join(sorted(valid))
    where = f" ({key}={name})" if key else ""
    return ConfigError(f"Unknown {kind} '{name}'{where}.", f"Valid {kind} names: {shown}")


def reject_unknown_keys(
    given: Iterable[str], valid: Sequence[str], prefix: str, *, kind: str = "", list_prefix: bool = True
) -> None:
    """Raise for keys of a config block that no reader knows (a typo would otherwise be ignored):
    it names each unknown key in full and lists the valid ones."""
    unknown = sorted(set(given) - set(valid))
    if unknown:
        shown = ", ".join(f"{prefix}.{key}" if list_prefix else key for key in valid)
        label = f"{kind} key(s)" if kind else "key(s)"
        raise ConfigError(
            f"Unknown {label}: {', '.join(f'{prefix}.{key}' for key in unknown)}.", f"Valid keys: {shown}"
        )
