"""``scheduler=cosine``: linear warmup over ``warmup_epochs``, then cosine decay to ``min_lr_ratio`` x lr."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ftcli.training.schedulers import SCHEDULERS, Curve, RunLength


def warmup_cosine(total_steps: int, warmup_steps: int, min_ratio: float) -> Curve:
    """Multiplier per step: linear warmup to 1, then cosine decay to ``min_ratio``."""

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


@SCHEDULERS.register("cosine")
def cosine(cfg: Mapping[str, Any], length: RunLength) -> Curve:
    total_steps, max_epochs = length()
    warmup_epochs = float(cfg.get("warmup_epochs", 0) or 0)
    return warmup_cosine(
        total_steps=total_steps,
        warmup_steps=int(warmup_epochs / max_epochs * total_steps),
        min_ratio=float(cfg.get("min_lr_ratio", 0.0)),
    )
