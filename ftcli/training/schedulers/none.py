"""``scheduler=none``: the rate stays at lr (times the phase multipliers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftcli.training.schedulers import SCHEDULERS, Curve, RunLength


def constant(step: int) -> float:
    return 1.0


@SCHEDULERS.register("none")
def no_schedule(cfg: Mapping[str, Any], length: RunLength) -> Curve:
    return constant
