"""The one error boundary: a user error becomes a short message, a hint and an exit code.

Every command, every sweep job, the run-directory guard and the DDP ranks end here. A user error
(an FtcliError, or a Hydra/omegaconf usage error translated by ``ftcli.command_line.hydra_errors``) prints
as ``error: message`` plus its hint, with no traceback, and exits 2 (1 for a failed export).
``FTCLI_DEBUG=1`` prints the traceback first. Anything else is a bug and propagates.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from ftcli.errors import FtcliError
from ftcli.ui.console import print_error


def debug() -> bool:
    """``FTCLI_DEBUG=1``: show the traceback of user errors too."""
    return os.environ.get("FTCLI_DEBUG", "") not in ("", "0")


def report(err: FtcliError, cause: BaseException | None = None) -> int:
    """Print a user error (after its traceback under ``FTCLI_DEBUG=1``); return its exit code."""
    if debug():
        traceback.print_exception(cause or err)
        sys.stderr.flush()
    print_error(err)
    return err.exit_code


def guard(run: Callable[..., int], *args: Any, arguments: Sequence[str] | None = None) -> int:
    """``run(*args)``'s exit code, or the reported user error's code. ``arguments``: the command line
    after the verb, to name the key of a path that is too long (default: ``sys.argv[1:]``)."""
    from ftcli.command_line.hydra_errors import usage_error

    try:
        return run(*args)
    except Exception as exc:
        err = usage_error(exc, arguments)
        if err is None:
            raise
        return report(err, cause=exc)
