"""``early_stopping.*`` checked: what to monitor, which way, patience, and whether a head-only phase may
stop the run (``ftcli.training.callbacks.early_stopping`` is the callback)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ftcli.errors import ConfigError, reject_unknown_keys

# What FineTuneModule logs, and which way is better.
METRICS = {"val/acc": "max", "val/loss": "min", "train/acc": "max", "train/loss": "min"}
MODES = ("auto", "max", "min")


@dataclass(frozen=True)
class EarlyStoppingOptions:
    """``early_stopping.*`` checked; every key is checked even when off, so a typo surfaces before
    someone switches it on."""

    enabled: bool = False
    monitor: str = "val/acc"
    mode: str = "auto"
    patience: int = 3
    min_delta: float = 0.0
    during_head_only_phases: bool = False

    @property
    def resolved_mode(self) -> str:
        """``max`` or ``min``: ``auto`` follows the metric (max for accuracy, min for loss)."""
        return METRICS[self.monitor] if self.mode == "auto" else self.mode


def early_stopping_options(cfg: Mapping[str, Any] | None) -> EarlyStoppingOptions:
    """The ``early_stopping`` config checked; a ConfigError names the bad key."""
    defaults = {f.name: f.default for f in fields(EarlyStoppingOptions)}
    options = {**defaults, **dict(cfg or {})}
    reject_unknown_keys(options, tuple(defaults), "early_stopping", list_prefix=False)
    for key in ("enabled", "during_head_only_phases"):
        if not isinstance(options[key], bool):
            _fail(key, options[key], "true or false", "true")
    monitor = options["monitor"]
    if not isinstance(monitor, str) or monitor not in METRICS:
        _fail("monitor", monitor, f"one of {', '.join(METRICS)}", "val/loss")
    mode = options["mode"]
    if mode not in MODES:
        _fail("mode", mode, "auto (max for accuracy, min for loss), max or min", "max")
    patience = options["patience"]
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        _fail("patience", patience, "a whole number >= 1 (validations without improvement)", "5")
    min_delta = options["min_delta"]
    if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or min_delta < 0:
        _fail("min_delta", min_delta, "a number >= 0 (the smallest improvement that counts)", "0.001")
    return EarlyStoppingOptions(**{**options, "min_delta": float(min_delta)})


def _fail(key: str, value: Any, expected: str, example: str) -> None:
    raise ConfigError(
        f"early_stopping.{key}={value!r} is not valid: it must be {expected}.",
        f"For example early_stopping.{key}={example}.",
    )
