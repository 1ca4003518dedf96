"""train/loss and train/acc: summed over the epoch's steps and logged once, they equal the per-image
mean of every step's loss and the epoch's accuracy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from omegaconf import DictConfig

from helpers.fitting import fit_config


class Steps(L.Callback):
    """Each training step's loss, batch size and correct predictions (the logits before the step)."""

    def __init__(self) -> None:
        self.epochs: list[list[tuple[float, int, int]]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs.append([])

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        with torch.no_grad():
            self._correct = int((pl_module._logits(batch[0]).argmax(1) == batch[1]).sum())

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, i: int
    ) -> None:
        self.epochs[-1].append((float(outputs["loss"]), len(batch[1]), self._correct))


@pytest.mark.slow  # fits a network (~10 s on 2 cores): run by `make test`, not `make test-fast`
@pytest.mark.usefixtures("single_thread")
def test_epoch_training_metrics_are_the_mean_over_images(
    compose_train: Callable[..., DictConfig], tmp_path: Path
) -> None:
    cfg = compose_train(
        "strategy=feature_extraction", "data.cache_features=false", "data.per_class=10", "data.batch_size=8"
    )  # the head alone trains: computing its logits again before a step changes nothing
    steps = Steps()
    logged: list[dict[str, float]] = []

    class Read(L.Callback):
        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            logged.append(
                {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
            )

    _, run_plan = fit_config(cfg, tmp_path, callbacks=[steps, Read()])
    assert len(logged) == 2
    for epoch, seen in zip(steps.epochs, logged, strict=True):
        images = sum(n for _, n, _ in epoch)
        assert len(epoch) > 1 and images == len(run_plan.datamodule.dataset("train"))
        assert seen["train/loss"] == pytest.approx(sum(loss * n for loss, n, _ in epoch) / images, rel=1e-5)
        assert seen["train/acc"] == pytest.approx(sum(c for _, _, c in epoch) / images)
