"""The run summary's speed figures: per-epoch images/s without the warm-up epoch, and the median step."""

from __future__ import annotations

import pytest
import torch

from ftcli.training.callbacks import throughput
from ftcli.training.callbacks.throughput import Throughput


def test_a_slow_moment_moves_the_epoch_average_but_not_the_median_step(monkeypatch) -> None:
    clock = iter([0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 22.0, 23.0])  # epoch starts at 0 and 10; one 10 s step
    monkeypatch.setattr(throughput.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(throughput.time, "time", lambda: 0.0)
    meter, batch = Throughput(), (torch.zeros(4), torch.zeros(4))
    for steps in (2, 4):  # epoch 0 (warm-up, left out), then epoch 1 with a 10 s step among 1 s steps
        meter.on_train_epoch_start(None, None)  # type: ignore[arg-type]
        for i in range(steps):
            meter.on_train_batch_end(None, None, None, batch, i)  # type: ignore[arg-type]
        meter.on_train_epoch_end(None, None)  # type: ignore[arg-type]
    assert meter.epoch_seconds == [2.0, 13.0]
    assert meter.steady_images_per_second == pytest.approx(16 / 13)
    assert meter.median_step_images_per_second == pytest.approx(4.0)  # 4 images a second, the usual step
    assert Throughput().median_step_images_per_second is None
