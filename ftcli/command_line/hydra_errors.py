"""Hydra's own usage errors (bad override syntax, unknown keys, clashing flags) as ConfigErrors.

Left to itself Hydra prints these (sometimes with a traceback) and exits 1, which a script cannot
tell from a crash. The dispatcher runs the Hydra app with ``HYDRA_FULL_ERROR=1`` so the exception
reaches it, and this module turns the ones a user caused into a short message and exit code 2.
Imports no torch: it runs in the dispatcher.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import traceback
from collections.abc import Sequence
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


def usage_error(exc: BaseException, arguments: Sequence[str] | None = None) -> FtcliError | None:
    """The user-facing error for an exception that escaped a Hydra app, or None for a real bug.

    ``arguments``: the command line after the verb (default ``sys.argv[1:]``), where the key of a path
    too long for the file system is looked up.
    """
    from hydra.errors import HydraException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(exc, FtcliError):
        return exc
    full = disk_error(exc)  # a full or read-only disk under a write ftcli does not make itself (a log)
    if full is not None:
        return full
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:  # a path given on the command line
        return _too_long(str(exc.filename or ""), sys.argv[1:] if arguments is None else arguments)
    if isinstance(exc, OverrideParseException) and _non_ascii_override(str(exc)):
        return _non_ascii_override(str(exc))
    if isinstance(exc, (HydraException, OmegaConfBaseException)) or _raised_by_hydra(exc):
        return ConfigError(_short(exc), _moved(str(exc)) or HINT)
    return None


def _too_long(path: str, arguments: Sequence[str]) -> ConfigError:
    """A path the file system refused as too long, named by the ``KEY=VALUE`` argument that gave it."""
    hint = "File systems allow 255 bytes per folder or file name (about 4,096 in all); shorten it."
    given = [arg.partition("=") for arg in arguments]
    keys = [
        (key.lstrip("+~"), value)
        for key, sep, value in given
        if sep and value and (value in path or path.startswith(os.path.abspath(os.path.expanduser(value))))
    ]
    if not keys:
        return ConfigError(f"A path is too long for the file system: {_shown(path)}", hint)
    key, value = max(keys, key=lambda kv: len(kv[1]))
    return ConfigError(
        f"{key}={_shown(value)} is not valid: the path is too long for the file system.",
        f"{hint} ({key}=...)",
    )


def _shown(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


# a bare (unquoted) item holding a character outside ASCII, inside a list, sweep, dict or function value
_BARE_ITEM = re.compile(r"""(?<=[\[(,{:=])\s*([^\s\[\](){},:'"=]*[^\x00-\x7f][^\s\[\](){},:'"=]*)""")


def _non_ascii_override(message: str) -> ConfigError | None:
    """Hydra's lexer error for an override with an unquoted non-ASCII letter inside a list or sweep
    (``data.classes=[é]``), as the error that says to quote it; None for another lexer error."""
    found = re.search(r"LexerNoViableAltException: (.+)", message)
    override = found.group(1).strip() if found else ""
    key, sep, value = override.partition("=")
    if not sep or value.isascii():
        return None
    quoted = _BARE_ITEM.sub(lambda m: f'"{m.group(1)}"', "=" + value)[1:]
    return ConfigError(
        f"{override} is not valid: inside a list, sweep or mapping value, text with characters outside "
        "ASCII must be quoted.",
        f"Quote each such item, and the whole override for the shell: '{key}={quoted}'",
    )


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
