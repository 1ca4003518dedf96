"""``loss.*`` checked: label smoothing and class weights of the training loss (``ftcli.training.loss``
uses them; validation and test loss stay plain cross-entropy)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ftcli.errors import ConfigError

AUTO = "auto"


@dataclass(frozen=True)
class LossOptions:
    """``loss.*`` checked: smoothing in [0, 1), and class weights off, ``auto`` or one per class."""

    label_smoothing: float = 0.0
    class_weights: str | tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the checkpoint's metadata (``weights_only`` loading)."""
        weights = list(self.class_weights) if isinstance(self.class_weights, tuple) else self.class_weights
        return {"label_smoothing": self.label_smoothing, "class_weights": weights}


def loss_options(cfg: Mapping[str, Any] | None, num_classes: int) -> LossOptions:
    """The ``loss`` config checked against the number of classes; a ConfigError names the bad key."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - {"label_smoothing", "class_weights"})
    if unknown:
        raise ConfigError(
            f"Unknown loss key(s): {', '.join(f'loss.{k}' for k in unknown)}.",
            "Valid keys: loss.label_smoothing, loss.class_weights",
        )
    return LossOptions(
        label_smoothing=_smoothing(cfg.get("label_smoothing", 0.0)),
        class_weights=_class_weights(cfg.get("class_weights"), num_classes),
    )


def _smoothing(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ConfigError(
            f"loss.label_smoothing={value!r} is not valid: it must be a number from 0 (off) up to, "
            "not including, 1.",
            "For example loss.label_smoothing=0.1",
        )
    return float(value)


def _class_weights(value: Any, num_classes: int) -> str | tuple[float, ...] | None:
    if value is None or (isinstance(value, str) and value.lower() in ("null", "none")):
        return None
    if isinstance(value, str) and value.lower() == AUTO:
        return AUTO
    ones = ",".join(["1"] * num_classes) if num_classes <= 10 else "1,1,...,1"
    example = f"loss.class_weights=auto, or a list of {num_classes} numbers such as [{ones}]"
    if isinstance(value, (str, Mapping)) or not isinstance(value, Iterable):
        raise ConfigError(
            f"loss.class_weights={value!r} is not valid: it must be null (off), auto (inverse class "
            f"frequency) or one weight per class ({num_classes} classes).",
            f"For example {example}.",
        )
    weights = list(value)
    if len(weights) != num_classes:
        raise ConfigError(
            f"loss.class_weights has {len(weights)} value(s), but the data has {num_classes} classes: "
            "give one weight per class, in class order.",
            f"For example {example}.",
        )
    numbers = all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights)
    if not numbers or any(w < 0 for w in weights) or not any(weights):
        raise ConfigError(
            f"loss.class_weights={weights} is not valid: it must be numbers >= 0, not all 0, one for "
            f"each of the {num_classes} classes.",
            f"For example {example}.",
        )
    return tuple(float(w) for w in weights)
