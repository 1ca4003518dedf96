"""The learning-rate range test behind ``ftcli lrfind`` (Lightning's ``Tuner.lr_find``), phase-aware.

The test raises the base learning rate exponentially from ``lrfind.min_lr`` to ``lrfind.max_lr`` over
``lrfind.steps`` optimizer steps and records the smoothed training loss; the suggestion is Lightning's
(the steepest descent of the loss). It runs one phase (``lrfind.phase``, the first by default) for
the whole test: its trainable blocks move, at ``lr x`` their multipliers (``backbone_lr_mult``,
``lr_decay``, a phase's ``lr_mult``), frozen blocks do not. Lightning saves the network before the
test and restores it after, so the weights are those of before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L

from ftcli.config.lrfind import RangeOptions
from ftcli.errors import ConfigError
from ftcli.finetune.freeze_plan import apply_plan
from ftcli.training.lightning_module import FineTuneModule


class RangeTestModule(FineTuneModule):
    """``FineTuneModule`` held in one phase, each group stepping at the tested lr x its multiplier.

    Lightning's range test swaps ftcli's scheduler for its own, which gives every group the same rate;
    ``optimizer_step`` puts the multipliers back for the step (frozen groups: 0).
    """

    range_phase = 0

    def on_train_start(self) -> None:
        self.enter_phase(self.range_phase)

    def on_train_epoch_start(self) -> None:
        self.enter_phase(self.range_phase)

    def enter_phase(self, index: int) -> None:
        self.phase_index = index
        apply_plan(self.model, self.plan)
        if self._trainer is not None:
            for optimizer in self.trainer.optimizers:
                for group in optimizer.param_groups:
                    group["lr_mult"] = self.plan.lr_mult(group["name"])

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None
    ) -> None:
        groups = optimizer.param_groups
        tested = [group["lr"] for group in groups]
        for group in groups:
            group["lr"] = group["lr"] * group.get("lr_mult", 1.0)
        try:
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        finally:
            for group, lr in zip(groups, tested, strict=True):
                group["lr"] = lr


@dataclass
class RangeResult:
    """The curve and Lightning's suggestion (None when the curve is too short to suggest one)."""

    lrs: list[float]
    losses: list[float]
    suggestion: float | None
    phase: int
    trainable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suggestion": self.suggestion,
            "phase": self.phase,
            "trainable": self.trainable,
            "lr": self.lrs,
            "loss": self.losses,
        }


def find_lr(
    module: RangeTestModule,
    datamodule: Any,
    trainer_cfg: Mapping[str, Any],
    run_dir: Path,
    options: RangeOptions,
) -> RangeResult:
    """Run the range test on one device (rank 0 only: no DDP), the Trainer's accelerator and precision.

    Nothing is logged or checkpointed; the network is restored afterwards by Lightning.
    """
    from lightning.pytorch.tuner import Tuner

    from ftcli import device

    module.range_phase = options.phase - 1
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    device.check_accelerator(accelerator)
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        num_nodes=1,
        strategy="auto",
        precision=device.resolve_precision(trainer_cfg.get("precision", "auto"), accelerator),
        max_epochs=options.steps,  # every epoch has at least one step
        max_steps=options.steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=10**9,  # the test needs no validation
        default_root_dir=str(run_dir),
        gradient_clip_val=trainer_cfg.get("gradient_clip_val"),
        accumulate_grad_batches=int(trainer_cfg.get("accumulate_grad_batches", 1) or 1),
    )
    finder = Tuner(trainer).lr_find(
        module,
        datamodule=datamodule,
        min_lr=options.min_lr,
        max_lr=options.max_lr,
        num_training=options.steps,
        update_attr=False,
    )
    if finder is None:
        raise ConfigError("The learning-rate range test did not run (trainer.fast_dev_run is on).")
    plan = module.schedule.phases[options.phase - 1]
    return RangeResult(
        lrs=[float(v) for v in finder.results["lr"]],
        losses=[float(v) for v in finder.results["loss"]],
        suggestion=finder.suggestion(),
        phase=options.phase,
        trainable=plan.trainable_blocks,
    )
