"""The raw loops' shared part: the device and precision a run trains with, and the timed epochs of
forward, backward and AdamW step (images or texts alike), measured as ftcli's Throughput measures."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from omegaconf import DictConfig


def device_and_precision(args: argparse.Namespace, cfg: DictConfig) -> tuple[Any, str, Any]:
    """(the torch device, ftcli's resolved precision, the autocast dtype or None) for ``--trainer``."""
    import torch

    from ftcli.device import resolve_precision

    gpu = args.trainer == "gpu" or (args.trainer != "cpu" and torch.cuda.is_available())
    precision = str(resolve_precision(cfg.trainer.precision, "gpu" if gpu else "cpu"))
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    return torch.device("cuda" if gpu else "cpu"), precision, dtype


def timed_epochs(
    epochs: int,
    epoch_batches: Callable[[int], Sequence[Any]],
    loss_of: Callable[[Any], tuple[Any, int]],
    parameters: Iterable[Any],
    cfg: DictConfig,
    device: Any,
    dtype: Any,
) -> dict[str, float]:
    """Train ``epochs`` epochs with AdamW (``cfg.optimizer``): ``epoch_batches(epoch)`` is made before the
    epoch's clock starts, ``loss_of(batch)`` gives (loss, samples). Samples/s over the epochs after the
    first (warm-up), the median step's samples/s (batch end to batch end) and the mean epoch seconds."""
    import torch

    optimizer = torch.optim.AdamW(
        parameters, lr=float(cfg.optimizer.lr), weight_decay=float(cfg.optimizer.weight_decay)
    )
    scaler = torch.amp.GradScaler(enabled=dtype is torch.float16)
    gpu = device.type == "cuda"
    epoch_seconds: list[float] = []
    epoch_samples: list[int] = []
    step_rates: list[list[float]] = []
    for epoch in range(epochs):
        batches = epoch_batches(epoch)
        if gpu:
            torch.cuda.synchronize()
        started = last = time.perf_counter()
        step_rates.append([])
        samples = 0
        for batch in batches:
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss, count = loss_of(batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            now = time.perf_counter()
            step_rates[-1].append(count / (now - last))
            last = now
            samples += count
        if gpu:
            torch.cuda.synchronize()
        epoch_seconds.append(time.perf_counter() - started)
        epoch_samples.append(samples)
    steady = epoch_seconds[1:] or epoch_seconds
    steady_samples = epoch_samples[1:] or epoch_samples
    steps = [r for rates in (step_rates[1:] or step_rates) for r in rates]
    return {
        "images_per_second": sum(steady_samples) / sum(steady),
        "step_images_per_second": statistics.median(steps),
        "epoch_seconds": statistics.mean(steady),
    }
