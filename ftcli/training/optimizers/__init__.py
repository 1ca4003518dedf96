"""Optimizers, chosen by ``optimizer.name``: one module each in this folder.

A builder takes the per-block param groups (created once, docs/ARCHITECTURE.md), the base learning
rate and the ``optimizer`` config, and returns a torch optimizer. A new optimizer is one module
here plus its YAML in ``configs/optimizer/``; the LightningModule looks it up by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from ftcli.registry import Registry

OptimizerBuilder = Callable[[list[dict[str, Any]], float, Mapping[str, Any]], torch.optim.Optimizer]
OPTIMIZERS: Registry[OptimizerBuilder] = Registry("optimizer", key="optimizer.name", package=__name__)
