"""Lightning callbacks ftcli adds to every run."""

from __future__ import annotations

import statistics
import time
from typing import Any

import lightning as L


class Throughput(L.Callback):
    """Training images per second and wall time, for the run summary (no per-step device sync)."""

    def __init__(self) -> None:
        self.images = 0
        self.train_seconds = 0.0
        self.epochs = 0
        # Per epoch (training batches only), so a benchmark can leave out the warm-up epoch.
        self.epoch_images: list[int] = []
        self.epoch_seconds: list[float] = []
        # Each step's images/s (batch end to batch end), per epoch: their median ignores a busy moment
        # of a shared machine that a whole-epoch average takes in.
        self.step_rates: list[list[float]] = []
        self.first_step_done: float | None = None  # time.time() when the first training step ended
        self._epoch_images = 0
        self._epoch_start = 0.0
        self._last_batch_end = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = self._last_batch_end = time.perf_counter()
        self._epoch_images = 0
        self.step_rates.append([])

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.images += len(batch[1])
        self._epoch_images += len(batch[1])
        now = time.perf_counter()
        if now > self._last_batch_end and self.step_rates:
            self.step_rates[-1].append(len(batch[1]) / (now - self._last_batch_end))
        self._last_batch_end = now
        if self.first_step_done is None:
            self.first_step_done = time.time()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning runs the epoch's validation before this hook: count up to the last train batch only.
        seconds = self._last_batch_end - self._epoch_start
        self.train_seconds += seconds
        self.epochs += 1
        self.epoch_images.append(self._epoch_images)
        self.epoch_seconds.append(seconds)

    @property
    def images_per_second(self) -> float:
        return self.images / self.train_seconds if self.train_seconds else 0.0

    @property
    def steady_images_per_second(self) -> float:
        """Images/s after the first epoch (warm-up: allocator, caches, lazy init); all epochs if only one."""
        images, seconds = (
            self.epoch_images[1:] or self.epoch_images,
            self.epoch_seconds[1:] or self.epoch_seconds,
        )
        return sum(images) / sum(seconds) if sum(seconds) else 0.0

    @property
    def median_step_images_per_second(self) -> float | None:
        """The median step's images/s after the first epoch (all epochs if only one); None without steps."""
        rates = [r for epoch in (self.step_rates[1:] or self.step_rates) for r in epoch]
        return statistics.median(rates) if rates else None
