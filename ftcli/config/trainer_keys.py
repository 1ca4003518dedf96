"""Type and range checks for the ``trainer.*`` keys ftcli's presets define.

The trainer config is a plain mapping handed to ``lightning.Trainer``, so ``trainer.max_epochs=abc``
arrives as the string "abc" and fails deep inside Lightning with a traceback. Checking the common
keys first turns that into a message that names the key and an example value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftcli.errors import ConfigError

# key: (smallest valid value, an example)
INT_AT_LEAST = {
    "max_epochs": (-1, "10 (-1: no limit)"),
    "min_epochs": (0, "1"),
    "max_steps": (-1, "1000 (-1: no limit)"),
    "log_every_n_steps": (1, "10"),
    "accumulate_grad_batches": (1, "4"),
    "num_sanity_val_steps": (-1, "0"),
    "check_val_every_n_epoch": (1, "1"),
    "num_nodes": (1, "1"),
}
FRACTION_OR_COUNT = ("limit_train_batches", "limit_val_batches", "limit_test_batches", "overfit_batches")
BOOLEANS = ("enable_progress_bar", "detect_anomaly")
NULLABLE = ("min_epochs", "check_val_every_n_epoch", "max_epochs")


def check_trainer_options(options: Mapping[str, Any]) -> None:
    """ConfigError for the first ``trainer.*`` value of the wrong type or out of range."""
    for key, (minimum, example) in INT_AT_LEAST.items():
        if key in options and not (options[key] is None and key in NULLABLE):
            value = options[key]
            if not _is_int(value) or value < minimum:
                _fail(key, value, f"a whole number >= {minimum}", example)
    for key in FRACTION_OR_COUNT:
        value = options.get(key)
        if key in options and not ((_is_int(value) and value >= 0) or _is_fraction(value)):
            _fail(key, value, "a fraction from 0.0 to 1.0 or a whole number of batches", "0.25 or 10")
    value = options.get("gradient_clip_val")
    if value is not None and not (_is_number(value) and value >= 0):
        _fail("gradient_clip_val", value, "a number >= 0, or null for no clipping", "1.0")
    value = options.get("val_check_interval")
    if value is not None and not ((_is_int(value) and value >= 1) or _is_fraction(value)):
        _fail("val_check_interval", value, "a fraction of an epoch or a whole number of batches", "0.5")
    for key in BOOLEANS:
        if key in options and not isinstance(options[key], bool):
            _fail(key, options[key], "true or false", "false")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_fraction(value: Any) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


def _fail(key: str, value: Any, expected: str, example: str) -> None:
    raise ConfigError(
        f"trainer.{key}={value!r} is not valid: it must be {expected}.",
        f"For example trainer.{key}={example}.",
    )
