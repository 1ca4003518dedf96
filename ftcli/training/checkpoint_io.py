"""Checkpoints are written atomically and read back safely.

Lightning writes a checkpoint straight to its final name, so a crash or a full disk during the
save (kill -9, a pre-empted node) can leave a truncated ``last.ckpt`` where a good one was. Here
every save goes to a hidden temporary file in the same folder, is flushed to disk, and replaces the
old file with one ``os.replace`` (atomic on POSIX and Windows): a reader sees the old checkpoint or
the new one, never half of either. Every load uses ``weights_only=True``, so a checkpoint (for
example one passed to ``trainer.test`` or a resumed run) cannot run code. A save the disk refuses
(full, read-only) ends the run with an ``OutputError`` naming the file; the checkpoints written before
are complete, and ``resume=`` continues from them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ftcli.atomic_files import atomic_path
from ftcli.errors import refused_writes


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO that saves through a temporary file + ``os.replace`` and loads weights only."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options.")
        path = Path(path)
        # a full or read-only disk: the earlier checkpoints stay as they were, and resume from them
        elsewhere = f"continue this run on another disk: resume={path.parent.parent} hydra.run.dir=PATH"
        with refused_writes(path, elsewhere):
            atomic_save(checkpoint, path)

    def load_checkpoint(
        self,
        path: Any,
        map_location: Callable | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        # weights_only is forced: ftcli's checkpoints hold only tensors and plain data.
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save(obj, path)`` that either completes or leaves ``path`` (and the folder) as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Hidden and ending in .tmp, not .ckpt: a file left by kill -9 mid-save matches no checkpoint glob.
    with atomic_path(path, durable=True) as temp, open(temp, "wb") as f:
        torch.save(obj, f)
