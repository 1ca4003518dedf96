"""``optimizer=sgd``: SGD with (Nesterov) momentum, the classic choice for convnets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ftcli.training.optimizers import OPTIMIZERS


@OPTIMIZERS.register("sgd")
def sgd(groups: list[dict[str, Any]], lr: float, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        groups,
        lr=lr,
        momentum=float(cfg.get("momentum", 0.9)),
        nesterov=bool(cfg.get("nesterov", True)),
        weight_decay=float(cfg.get("weight_decay", 0.0)),
    )
