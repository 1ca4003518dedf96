"""``lrfind.*`` checked: the learning-rate range test of ``ftcli lrfind`` (``ftcli.training.lr_range``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ftcli.errors import ConfigError, reject_unknown_keys

KEYS = ("min_lr", "max_lr", "steps", "phase")


@dataclass(frozen=True)
class RangeOptions:
    """``lrfind.*`` checked."""

    min_lr: float = 1e-7
    max_lr: float = 1.0
    steps: int = 100
    phase: int = 1  # 1-based, as printed


def range_options(cfg: Mapping[str, Any] | None, phases: int) -> RangeOptions:
    """The ``lrfind`` config checked against the number of phases; a ConfigError names the bad key."""
    cfg = dict(cfg or {})
    reject_unknown_keys(cfg, KEYS, "lrfind", kind="lrfind")
    try:
        options = RangeOptions(
            min_lr=float(cfg.get("min_lr", RangeOptions.min_lr)),
            max_lr=float(cfg.get("max_lr", RangeOptions.max_lr)),
            steps=int(cfg.get("steps", RangeOptions.steps)),
            phase=int(cfg.get("phase", RangeOptions.phase)),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"Bad lrfind value: {exc}.", "lrfind.min_lr/max_lr are numbers, steps/phase integers."
        ) from exc
    if not 0 < options.min_lr < options.max_lr:
        raise ConfigError(
            f"lrfind.min_lr={options.min_lr:g}, lrfind.max_lr={options.max_lr:g}: need 0 < min_lr < max_lr."
        )
    if options.steps < 12:
        raise ConfigError(f"lrfind.steps={options.steps} is too few: at least 12 (the default is 100).")
    if not 1 <= options.phase <= phases:
        raise ConfigError(f"lrfind.phase={options.phase}: this strategy has phases 1 to {phases}.")
    return options
