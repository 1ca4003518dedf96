"""Where a command that writes results (eval, predict, export) writes them: never over earlier results.

Without ``out=``, each call gets a folder of its own: the default folder when it is new, else the
first free ``<default>-2``, ``<default>-3``, ... (claimed with an exclusive ``mkdir``, so two calls at
once never share one). With ``out=FOLDER``, the folder may exist, but not hold a file this command
would write: an earlier result is never replaced silently.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from ftcli.errors import OutputError, write_error

MAX_TRIES = 1000


def check_named(named: str | None, writes: Sequence[str], key: str = "out") -> Path | None:
    """``out=FOLDER`` checked before any work: an OutputError if it holds one of ``writes`` already."""
    if named in (None, ""):
        return None
    folder = Path(str(named)).expanduser()
    try:
        taken = [name for name in writes if (folder / name).exists()]
        is_file = folder.is_file()
    except OSError as exc:
        raise OutputError(f"{key}={_short(named)} cannot be used: {exc.strerror or exc}.") from exc
    if is_file:
        raise OutputError(f"{key}={_short(named)} is a file, not a folder.", "Name a folder for the results.")
    if taken:
        raise OutputError(
            f"{key}={_short(named)} already holds {taken[0]} from an earlier call; "
            "ftcli never replaces earlier results.",
            f"Name another folder with {key}=, or leave {key}= out for a new folder of its own.",
        )
    return folder


def results_folder(
    named: str | None, default: Path, writes: Sequence[str], key: str = "out", share: bool = False
) -> Path:
    """The folder to write into, created: ``out=`` (checked by :func:`check_named`) or a new folder.
    ``share``: an existing default folder is taken when it holds none of ``writes`` (export: the
    ONNX and TorchScript files of one checkpoint side by side)."""
    folder = check_named(named, writes, key)
    if folder is not None:
        _make(folder, key, exist_ok=True)
        return folder
    default = default.expanduser()
    for n in range(1, MAX_TRIES + 1):
        candidate = default if n == 1 else default.with_name(f"{default.name}-{n}")
        if _make(candidate, key, exist_ok=False):
            return candidate
        if share and candidate.is_dir() and not any((candidate / name).exists() for name in writes):
            return candidate
    raise OutputError(f"{default} and {MAX_TRIES - 1} numbered folders beside it exist already.")


@contextlib.contextmanager
def writing_results(folder: Path, fresh: bool, key: str = "out") -> Iterator[None]:
    """Write a command's results inside this block: when the disk refuses a write (full, read-only),
    the files this block wrote are removed (and ``folder`` when ``fresh``: made for this call), so no
    half set of results is left, and the error names the folder and what to do."""
    before = set(folder.iterdir())
    try:
        yield
    except OSError as exc:
        err = write_error(exc.filename or folder, exc, f"name a folder on another disk with {key}=")
        if err is None:
            raise
        for leftover in set(folder.iterdir()) - before:
            with contextlib.suppress(OSError):
                leftover.unlink()
        if fresh:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise err from exc


def _make(folder: Path, key: str, exist_ok: bool) -> bool:
    """Create ``folder``; False when it exists (and ``exist_ok`` is False); an OutputError if it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=exist_ok)
    except FileExistsError:
        if exist_ok:  # a file of that name
            raise OutputError(f"{key}={_short(folder)} is a file, not a folder.") from None
        return False
    except OSError as exc:
        raise OutputError(
            f"Cannot create the results folder {_short(folder)}: {exc.strerror or exc}.",
            f"Name a writable folder with {key}=.",
        ) from exc
    return True


def _short(value: object, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
