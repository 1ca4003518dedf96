"""``optimizer=adamw``: AdamW (decoupled weight decay), the default for fine-tuning."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ftcli.training.optimizers import OPTIMIZERS


@OPTIMIZERS.register("adamw")
def adamw(groups: list[dict[str, Any]], lr: float, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        groups,
        lr=lr,
        weight_decay=float(cfg.get("weight_decay", 0.01)),
        betas=tuple(cfg.get("betas", (0.9, 0.999))),
    )
