"""An exponential moving average of the weights (``ema.*``), on Lightning's ``WeightAveraging``.

After every optimizer step the average follows the weights (parameters and buffers, so BatchNorm
statistics too). The k-th update (k = 1, 2, ...) is the documented recurrence

    ema_1 = w_1;   ema_k = d_k * ema_(k-1) + (1 - d_k) * w_k,   d_k = min(decay, k / (k + 9)) with
    ``ema.warmup`` (the average does not drag the first, random-head steps along for long), else decay.

``ema.evaluate=true`` (default when on): validation, ``best.ckpt``/``last.ckpt`` (their ``state_dict``,
so eval, predict and export) and the test use the averaged weights, and the run ends with them; the
raw weights stay in the checkpoint (``current_model_state``) so ``resume`` continues both.
``ema.evaluate=false``: the average is tracked and stored as ``ema_state_dict`` beside the raw weights,
which validation and the checkpoints' ``state_dict`` keep.

Phases: a block frozen so far holds its starting values, so its average does too; when a phase
unfreezes it, its average restarts from its current values (parameters and buffers), so nothing of
an earlier phase's state leaks in.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import WeightAveraging

from ftcli.config.ema import EmaOptions


def ema_decay(decay: float, warmup: bool, k: int) -> float:
    """d_k of the k-th update (k >= 2; the first update copies the weights)."""
    return min(decay, k / (k + 9)) if warmup else decay


def average_fn(
    decay: float, warmup: bool
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """torch's ``AveragedModel`` ``avg_fn``: it passes the number of earlier updates (k - 1)."""

    def average(ema: torch.Tensor, current: torch.Tensor, earlier: torch.Tensor) -> torch.Tensor:
        d = ema_decay(decay, warmup, int(earlier) + 1)
        return d * ema + (1.0 - d) * current

    return average


class PhaseAwareEMA(WeightAveraging):
    """Lightning's weight averaging with the EMA recurrence above, ``ema.evaluate`` and phase restarts."""

    def __init__(self, options: EmaOptions) -> None:
        super().__init__(use_buffers=True, avg_fn=average_fn(options.decay, options.warmup))
        self.options = options
        self._phase: int | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        schedule = pl_module.schedule  # type: ignore[attr-defined]
        index = schedule.phase_index(trainer.current_epoch)
        if self._phase is not None and index != self._phase:
            before = set(schedule.phases[self._phase].trainable_blocks)
            self.restart(pl_module, [b for b in schedule.phases[index].trainable_blocks if b not in before])
        self._phase = index

    def restart(self, pl_module: L.LightningModule, blocks: list[str]) -> None:
        """Set the average of ``blocks`` to their current values (parameters and buffers)."""
        if self._average_model is None:
            return
        averaged = self._average_model.module.model.blocks  # type: ignore[union-attr]
        for name in blocks:
            current = pl_module.model.blocks[name]  # type: ignore[attr-defined]
            pairs = zip(
                itertools.chain(averaged[name].parameters(), averaged[name].buffers()),
                itertools.chain(current.parameters(), current.buffers()),
                strict=True,
            )
            for ema, value in pairs:
                ema.data.copy_(value.data)

    def averaged_state(self) -> dict[str, torch.Tensor]:
        """The averaged network's state, in the LightningModule's names."""
        assert self._average_model is not None
        state = self._average_model.state_dict()
        return {name[7:]: value for name, value in state.items() if name.startswith("module.")}

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.options.evaluate:
            super().on_validation_epoch_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.options.evaluate:
            super().on_validation_epoch_end(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.options.evaluate:
            super().on_train_end(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self.options.evaluate or self._average_model is None:
            super().on_save_checkpoint(trainer, pl_module, checkpoint)
        else:
            checkpoint["ema_state_dict"] = self.averaged_state()
            checkpoint["averaging_state"] = {
                name: value
                for name, value in self._average_model.state_dict().items()
                if not name.startswith("module.")
            }

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn != "fit" or self._average_model is None:
            return  # testing best.ckpt: its state_dict already holds the weights to test
        if self.options.evaluate:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
        elif "ema_state_dict" in checkpoint and "averaging_state" in checkpoint:
            state = {"module." + name: value for name, value in checkpoint["ema_state_dict"].items()}
            self._average_model.load_state_dict(state | checkpoint["averaging_state"])
        else:
            self._average_model.module.load_state_dict(checkpoint["state_dict"], strict=False)
