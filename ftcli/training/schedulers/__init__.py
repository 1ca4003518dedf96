"""Learning-rate curves, chosen by ``scheduler.name``: one module each in this folder.

A builder takes the ``scheduler`` config, the run's total optimizer steps and its number of epochs,
and returns the factor on the learning rate at each step. The LightningModule multiplies it by each
block's phase multiplier in one LambdaLR per param group, so every curve works with every
strategy. A new curve is one module here plus its YAML in ``configs/scheduler/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ftcli.registry import Registry

Curve = Callable[[int], float]
CurveBuilder = Callable[[Mapping[str, Any], int, int], Curve]
SCHEDULERS: Registry[CurveBuilder] = Registry("scheduler", key="scheduler.name", package=__name__)
