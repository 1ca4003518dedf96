"""Hydra's own usage errors (bad override syntax, unknown keys, clashing flags) as ConfigErrors.

Left to itself Hydra prints these (sometimes with a traceback) and exits 1, which a script cannot
tell from a crash. The dispatcher runs the Hydra app with ``HYDRA_FULL_ERROR=1`` so the exception
reaches it, and this module turns the ones a user caused into a short message and exit code 2.
Imports no torch: it runs in the dispatcher.
"""

from __future__ import annotations

import errno
import re
import traceback
from pathlib import Path

from ftcli.errors import ConfigError, FtcliError, disk_error

HINT = "`ftcli train --cfg job` prints every key and value; `ftcli ls` lists the options of every group."
MAX_LINES = 4
# Keys that moved to a config group of their own: an override of the old name says where they went.
MOVED_KEYS = {
    "trainer.early_stopping": "early_stopping",
    "trainer.compile": "compile",
}
NOISE = ("full_key:", "object_type=", "reference_type=")


def usage_error(exc: BaseException) -> FtcliError | None:
    """The user-facing error for an exception that escaped a Hydra app, or None for a real bug."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(exc, FtcliError):
        return exc
    full = disk_error(exc)  # a full or read-only disk under a write ftcli does not make itself (a log)
    if full is not None:
        return full
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:  # a path given on the command line
        name = str(exc.filename or "")
        shown = name if len(name) <= 120 else f"{name[:120]}... ({len(name)} characters)"
        return ConfigError(
            f"A path is too long for the file system: {shown}",
            "File systems allow 255 bytes per folder or file name (about 4,096 in all); shorten it.",
        )
    if isinstance(exc, (HydraException, OmegaConfBaseException)) or _raised_by_hydra(exc):
        return ConfigError(_short(exc), _moved(str(exc)) or HINT)
    return None


def _moved(message: str) -> str | None:
    """The hint for an override of a key that moved (``trainer.early_stopping.*`` is ``early_stopping.*``)."""
    for old, new in MOVED_KEYS.items():
        found = re.search(rf"'({re.escape(old)}(?:\.[\w.]+)?)'", message)
        if found:
            return f"{old} is now {new}: write {new}{found.group(1)[len(old) :]}=... instead."
    return None


def _raised_by_hydra(exc: BaseException) -> bool:
    """A ValueError/TypeError raised inside Hydra itself, e.g. for ``-m`` together with ``--cfg``."""
    frames = traceback.extract_tb(exc.__traceback__)
    in_hydra = bool(frames) and "hydra" in Path(frames[-1].filename).parts
    return in_hydra and isinstance(exc, (ValueError, TypeError))


def _short(exc: BaseException) -> str:
    """The exception's message and its cause's, without omegaconf's key dumps or Hydra's search path."""
    lines: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        for line in str(seen).strip().splitlines():
            line = line.strip()
            if line.startswith("Config search path"):
                break
            if not line or line.startswith(NOISE) or line in lines:
                continue
            if lines and " " not in line and lines[-1].endswith((":", ",")):
                lines[-1] += f" {line},"  # Hydra lists the available options one per line: join them
            else:
                lines.append(line)
        seen = seen.__cause__
    return "\n".join(line.rstrip(",") for line in lines[:MAX_LINES]) or type(exc).__name__


def missing_value(exc: Exception) -> ConfigError:
    """A ``???`` value the run needs: name the key to set (the one the interpolation points at)."""
    key = str(getattr(exc, "full_key", "") or "")
    text = str(exc).splitlines()[0] if str(exc) else ""
    match = re.search(r"Missing mandatory value: ([\w.]+)", text)
    missing = match.group(1) if match else key
    where = f" (needed by {key})" if key and key != missing else ""
    return ConfigError(
        f"{missing} is required but not set{where}.", f"Set it on the command line: {missing}=..."
    )
