"""The LightningModule: loss, metrics, per-block optimizer groups, scheduler, checkpoint metadata."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from ftcli.blocks import BlockNet
from ftcli.errors import ConfigError, unknown_name
from ftcli.strategies import FreezePlan, apply_plan, param_groups
from ftcli.weights import CHECKPOINT_KEY

OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("cosine", "none")


class FineTuneModule(L.LightningModule):
    """Trains a BlockNet under a FreezePlan; checkpoints carry the run's self-description."""

    def __init__(
        self,
        net: BlockNet,
        plan: FreezePlan,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any],
        meta: Mapping[str, Any],
    ) -> None:
        super().__init__()
        self.model = net
        self.plan = plan
        self.optimizer_cfg = dict(optimizer)
        self.scheduler_cfg = dict(scheduler)
        self.meta = dict(meta)
        num_classes = int(meta["num_classes"])
        self.criterion = nn.CrossEntropyLoss()
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        _check_names(self.optimizer_cfg, self.scheduler_cfg)
        apply_plan(self.model, plan)
        # Set by ftcli.features when batches hold cached features of the frozen blocks, not images:
        # maps them to logits. forward() always takes images.
        self.input_tail: Callable[[torch.Tensor], torch.Tensor] | None = None

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.input_tail(x) if self.input_tail is not None else self.model(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self._logits(x)
        loss = self.criterion(logits, y)
        self.train_acc(logits, y)
        self.log(
            "train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True
        )
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val", self.val_acc)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test", self.test_acc)

    def _eval_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], stage: str, metric: MulticlassAccuracy
    ) -> None:
        x, y = batch
        logits = self._logits(x)
        metric(logits, y)
        loss = self.criterion(logits, y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
        self.log(f"{stage}/acc", metric, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))

    def configure_optimizers(self) -> Any:
        """One param group per block, created once (DESIGN.md); the scheduler steps every batch."""
        cfg = self.optimizer_cfg
        lr = float(cfg["lr"])
        groups = param_groups(self.model, self.plan, lr)
        if cfg["name"] == "adamw":
            optimizer = torch.optim.AdamW(
                groups,
                lr=lr,
                weight_decay=float(cfg.get("weight_decay", 0.01)),
                betas=tuple(cfg.get("betas", (0.9, 0.999))),
            )
        else:
            optimizer = torch.optim.SGD(
                groups,
                lr=lr,
                momentum=float(cfg.get("momentum", 0.9)),
                nesterov=bool(cfg.get("nesterov", True)),
                weight_decay=float(cfg.get("weight_decay", 0.0)),
            )
        if self.scheduler_cfg["name"] == "none":
            return optimizer
        schedule = warmup_cosine(
            total_steps=max(1, int(self.trainer.estimated_stepping_batches)),
            warmup_steps=self._warmup_steps(),
            min_ratio=float(self.scheduler_cfg.get("min_lr_ratio", 0.0)),
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _warmup_steps(self) -> int:
        epochs = float(self.scheduler_cfg.get("warmup_epochs", 0) or 0)
        max_epochs = max(1, int(self.trainer.max_epochs or 1))
        return int(epochs / max_epochs * self.trainer.estimated_stepping_batches)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = dict(self.meta)


def warmup_cosine(total_steps: int, warmup_steps: int, min_ratio: float) -> Any:
    """Multiplier per step: linear warmup to 1, then cosine decay to ``min_ratio``."""

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _check_names(optimizer: Mapping[str, Any], scheduler: Mapping[str, Any]) -> None:
    if optimizer.get("name") not in OPTIMIZERS:
        raise unknown_name("optimizer", optimizer.get("name"), list(OPTIMIZERS), key="optimizer.name")
    if scheduler.get("name") not in SCHEDULERS:
        raise unknown_name("scheduler", scheduler.get("name"), list(SCHEDULERS), key="scheduler.name")
    try:
        lr = float(optimizer["lr"])
    except (KeyError, TypeError, ValueError):
        lr = -1.0
    if not lr > 0:
        raise ConfigError(
            f"optimizer.lr={optimizer.get('lr')} must be a positive number, e.g. optimizer.lr=0.001."
        )
