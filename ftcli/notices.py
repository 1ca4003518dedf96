"""Warnings about the user's data or files: through the ``ftcli`` logger, once each, on rank zero only.

A warning (a repeated manifest row, samples leaked across splits) is found by code in the lower layers,
which may not print (the terminal is ``ftcli.ui``, above them). It goes through :data:`logger` instead:
inside a Hydra app the job's logging config prints it on the console and keeps it in the run's log
file; elsewhere Python's last-resort handler prints it on stderr. A DDP run starts one process per
device and each rebuilds the data: only rank zero speaks, and a message already given in this run
(:func:`new_run`) is not repeated.

Standard library only: every layer may use it.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("ftcli")
_given: set[str] = set()


def is_rank_zero() -> bool:
    """True in the main process (Lightning's DDP launcher sets these for the extra ranks; SLURM sets
    SLURM_PROCID for each task of a multi-GPU job, before Lightning sets the others)."""
    ranks = ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID")
    return all(os.environ.get(var, "0") == "0" for var in ranks)


def new_run() -> None:
    """Start a run (a sweep runs its jobs in one process): each run's log says its warnings again."""
    _given.clear()


def warn(message: str) -> bool:
    """Log ``warning: message`` on rank zero, the first time this process gives it; True when logged."""
    if not is_rank_zero() or message in _given:
        return False
    _given.add(message)
    logger.warning("warning: %s", message)
    return True
