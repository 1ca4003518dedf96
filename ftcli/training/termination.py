"""SIGTERM, what SLURM and Kubernetes send before they kill a job: stop cleanly, say how to continue.

Lightning's signal connector (``lightning.pytorch.trainer.connectors.signal_connector``) already
handles SIGTERM during ``fit`` and ``test``: its handler only sets ``trainer.received_sigterm`` (and
passes the signal on to DDP ranks), the loops finish the step they are in, then raise
``SIGTERMException``, a ``SystemExit`` whose code is 0: the job would look successful, with no word on
what was kept. :func:`stops_on_sigterm` turns it into a :class:`~ftcli.errors.TerminatedError` (exit
143) that names the checkpoint to continue from and the command that does.

That checkpoint is ``last.ckpt`` of the last finished epoch, written atomically after every epoch
(``BestAndLast``, ``AtomicCheckpointIO``); a signal that comes while it is being written only sets
the flag, so the write completes first. The state in the middle of an epoch is not saved: ftcli's
loaders cannot start an epoch half way through (Lightning warns likewise of a mid-epoch checkpoint
with loaders that cannot), and a run resumed from there would not reach the weights of a run never
stopped. ``resume=last`` starts the interrupted epoch again and ends where an uninterrupted run ends.
A SLURM job requeued into its own folder continues from the same ``last.ckpt``
(``hydra_hooks.sweep_jobs.requeued_checkpoint``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ftcli.errors import TerminatedError


@contextlib.contextmanager
def stops_on_sigterm(
    trainer: L.Trainer, checkpoint: ModelCheckpoint, run_dir: Path, overrides: Sequence[str]
) -> Iterator[None]:
    """Inside: Lightning's SIGTERM stop becomes a TerminatedError saying how to continue."""
    try:
        yield
    except SIGTERMException as exc:
        raise terminated(trainer, checkpoint, run_dir, overrides) from exc


def terminated(
    trainer: L.Trainer, checkpoint: ModelCheckpoint, run_dir: Path, overrides: Sequence[str]
) -> TerminatedError:
    """What a run stopped by SIGTERM says: where it stopped, what was kept, the command that continues."""
    where = f"in epoch {trainer.current_epoch} (step {trainer.global_step})"
    last = Path(checkpoint.last_model_path) if checkpoint.last_model_path else None
    if last is None or not last.is_file():
        return TerminatedError(
            f"Stopped by SIGTERM {where}, before the first epoch ended: no checkpoint was written.",
            "Run the same command again to start over.",
        )
    kept = [o for o in overrides if not o.startswith(("resume=", "hydra.run.dir="))]
    command = " ".join(["ftcli", "train", *kept, "resume=last"])
    return TerminatedError(
        f"Stopped by SIGTERM {where}. {last} holds the run after epoch {_epoch_of(last)}, "
        "complete (written atomically at the end of every epoch).",
        f"Continue with: {command}  (or resume={run_dir}); the interrupted epoch starts again, "
        "and the run ends with the weights it would have had.",
    )


def _epoch_of(path: Path) -> int | str:
    """The epoch a checkpoint was saved in (memory-mapped: only that number is read)."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"])
    except Exception:  # the message must not fail over a detail
        return "?"
