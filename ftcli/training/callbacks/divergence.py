"""A NaN or infinite loss stops training at once, naming the step, and nothing non-finite is saved.

Once a loss is not finite the optimizer step turns every weight it touches into NaN, and each
later epoch would write those weights over the last good checkpoint. The check runs before the
backward pass (so that step never updates the weights) and again on every checkpoint about to be
saved. It costs one scalar read per step, the same order as the loss logging; under DDP the ranks
agree on it, so they all stop together.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from ftcli.errors import DivergedError


class StopOnNonFinite(L.Callback):
    """Raises DivergedError at the first non-finite loss, or before saving non-finite weights."""

    def __init__(self) -> None:
        self.batch_idx = 0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.batch_idx = batch_idx

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        finite = bool(torch.isfinite(loss.detach()).all())
        if trainer.world_size > 1:
            finite = trainer.strategy.reduce_boolean_decision(finite, all=True)
        if not finite:
            value = loss.detach().float().mean().item()
            raise diverged(trainer, f"the training loss became {value}", self.batch_idx)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        state = checkpoint.get("state_dict", {})
        bad = [
            k for k, t in state.items() if torch.is_floating_point(t) and not bool(torch.isfinite(t).all())
        ]
        if bad:
            raise diverged(
                trainer, f"the weights hold NaN or inf values ({bad[0]}, {len(bad)} tensors)", None
            )


def diverged(trainer: L.Trainer, what: str, batch_idx: int | None) -> DivergedError:
    """The message: where it happened, what survived, and the three usual remedies."""
    where = f"global step {trainer.global_step}, epoch {trainer.current_epoch}"
    if batch_idx is not None:
        where += f", batch {batch_idx}"
    checkpoint = trainer.checkpoint_callback
    kept = getattr(checkpoint, "last_model_path", "") or getattr(checkpoint, "best_model_path", "")
    saved = f"The last good checkpoint is kept: {kept}" if kept else "No checkpoint had been saved yet."
    lr = trainer.optimizers[0].defaults.get("lr") if trainer.optimizers else None
    now = f", now {lr:g}" if isinstance(lr, (int, float)) else ""
    return DivergedError(
        f"Training stopped: {what} at {where}. {saved}",
        f"Lower the learning rate (optimizer.lr{now}), train in full precision "
        f"(trainer.precision=32-true, now {trainer.precision}) or clip gradients "
        "(trainer.gradient_clip_val=1.0).",
    )
