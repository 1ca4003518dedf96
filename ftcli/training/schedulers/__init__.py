"""Learning-rate curves, chosen by ``scheduler.name``: one module each in this folder.

A builder takes the ``scheduler`` config and a function that tells the run's length (total optimizer
steps, epochs; asked only by curves that need it, since it needs a Trainer), and returns the factor
on the learning rate at each step. The LightningModule multiplies it by each
block's phase multiplier in one LambdaLR per param group, so every curve works with every
strategy. A new curve is one module here plus its YAML in ``configs/scheduler/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ftcli.registry import Registry

Curve = Callable[[int], float]
RunLength = Callable[[], tuple[int, int]]  # () -> (total optimizer steps, max epochs)
CurveBuilder = Callable[[Mapping[str, Any], RunLength], Curve]
SCHEDULERS: Registry[CurveBuilder] = Registry("scheduler", key="scheduler.name", package=__name__)
