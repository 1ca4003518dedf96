"""``ema.*`` checked: the moving average of the weights (``ftcli.training.callbacks.ema`` keeps it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ftcli.errors import ConfigError, reject_unknown_keys

KEYS = ("enabled", "decay", "warmup", "evaluate")


@dataclass(frozen=True)
class EmaOptions:
    """``ema.*`` checked."""

    enabled: bool = False
    decay: float = 0.999
    warmup: bool = True
    evaluate: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in KEYS}

    def describe(self) -> str:
        used = "validated and saved" if self.evaluate else "kept beside the raw weights"
        return f"EMA of weights (decay {self.decay:g}{', warmup' if self.warmup else ''}; {used})"


def ema_options(cfg: Mapping[str, Any] | None) -> EmaOptions:
    """The ``ema`` config checked; a ConfigError names the bad key."""
    cfg = dict(cfg or {})
    reject_unknown_keys(cfg, KEYS, "ema", kind="ema")
    flags = {}
    for key in ("enabled", "warmup", "evaluate"):
        value = cfg.get(key, getattr(EmaOptions, key))
        if not isinstance(value, bool):
            raise ConfigError(f"ema.{key}={value!r} must be true or false.")
        flags[key] = value
    decay = cfg.get("decay", EmaOptions.decay)
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 < decay < 1.0:
        raise ConfigError(
            f"ema.decay={decay!r} is not valid: it must be a number between 0 and 1 (exclusive).",
            "Typical values: 0.99 for a few hundred steps, 0.999 for thousands, 0.9999 for more.",
        )
    return EmaOptions(decay=float(decay), **flags)
