"""Checks of the ``data.*`` keys every source shares: a wrong type or range is an error naming the key."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ftcli.errors import ConfigError, DataError

LAYOUT_HINT = "Point data.root at a folder with one sub-folder per class (or train/ and val/ sub-folders)."


def plain_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """An omegaconf node or mapping as a plain dict with interpolations resolved."""
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            plain: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
            # A mandatory value left unset (``???``, e.g. data.root) is missing, like null, so the
            # module's own "data.root is required" check names it (not a folder called "???").
            return {k: None if OmegaConf.is_missing(cfg, k) else v for k, v in plain.items()}
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"The data config must be a mapping, got {type(cfg).__name__}.")
    return dict(cfg)


def expand_path(value: Any) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(str(value)))).absolute()


def check_dir(path: Path, key: str) -> None:
    if not path.exists():
        raise DataError(f"{key}={path} does not exist.", LAYOUT_HINT)
    if not path.is_dir():
        raise DataError(f"{key}={path} is a file, not a folder.", LAYOUT_HINT)


def check_file(path: Path, key: str) -> None:
    if not path.exists():
        raise DataError(
            f"{key}={path} does not exist.", "Point it at a CSV file with a header line: path,label[,split]"
        )
    if not path.is_file():
        raise DataError(
            f"{key}={path} is a folder, not a CSV file.", "Point it at the CSV manifest inside that folder."
        )


def int_option(cfg: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = cfg.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"data.{key} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def per_class_option(value: Any, key: str, default: int | None, noun: str = "image") -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{key} must be a whole number or null, got {value!r}.")
    if value < 1:
        raise DataError(f"{key}={value} keeps no {noun}s.", f"Use {key}>=1, or null to keep every {noun}.")
    return int(value)


def num_workers_option(value: Any, in_memory: bool) -> int:
    if value in (None, "auto"):
        return 0 if in_memory else min(4, max(1, (os.cpu_count() or 1) - 1))
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"data.num_workers must be an integer >= 0 or 'auto', got {value!r}.")
    return int(value)


def choice_option(cfg: Mapping[str, Any], key: str, valid: Sequence[str], default: str) -> str:
    value = cfg.get(key, default)
    if value not in valid:
        raise ConfigError(f"data.{key}={value!r} is not allowed.", f"Use one of: {', '.join(valid)}")
    return str(value)


def auto_flag(cfg: Mapping[str, Any], key: str) -> str | bool:
    """A switch that is ``auto``, true or false (YAML booleans or their spelling)."""
    value = cfg.get(key, "auto")
    if value is None or value == "auto":
        return "auto"
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"data.{key}={value!r} is not allowed.", "Use one of: auto, true, false")


def fractions(cfg: Mapping[str, Any], val_default: float, test_default: float) -> tuple[float, float]:
    val = _fraction(cfg, "val_fraction", val_default)
    test = _fraction(cfg, "test_fraction", test_default)
    if val + test >= 1:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction = {val + test:g} leaves nothing to train on.",
            "Keep their sum below 1, e.g. data.val_fraction=0.2 data.test_fraction=0.2",
        )
    return val, test


def _fraction(cfg: Mapping[str, Any], key: str, default: float) -> float:
    value = cfg.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"data.{key} must be a number from 0 to below 1, got {value!r}.")
    return float(value)
