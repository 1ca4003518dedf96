"""Lightning callbacks ftcli adds to every run."""

from __future__ import annotations

import time
from typing import Any

import lightning as L


class Throughput(L.Callback):
    """Training images per second and wall time, for the run summary (no per-step device sync)."""

    def __init__(self) -> None:
        self.images = 0
        self.train_seconds = 0.0
        self.epochs = 0
        self._epoch_start = 0.0
        self._last_batch_end = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = self._last_batch_end = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.images += len(batch[1])
        self._last_batch_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning runs the epoch's validation before this hook: count up to the last train batch only.
        self.train_seconds += self._last_batch_end - self._epoch_start
        self.epochs += 1

    @property
    def images_per_second(self) -> float:
        return self.images / self.train_seconds if self.train_seconds else 0.0
