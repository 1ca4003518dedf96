"""Metric loggers, chosen by ``logger.name``: one module each in this folder.

metrics.csv is always written (the training curves PNG, the summaries and ``report`` read it); a
logger's builder returns the loggers it adds beside it. A new logger is one module here plus its
YAML in ``configs/logger/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger

from ftcli.registry import Registry

LoggerBuilder = Callable[[Path], list[Logger]]
LOGGERS: Registry[LoggerBuilder] = Registry("logger", key="logger.name", package=__name__)


def build_loggers(logger_cfg: Mapping[str, Any] | None, run_dir: Path) -> list[Logger]:
    """metrics.csv in the run dir, plus what ``logger=`` adds (``csv``: nothing more)."""
    extra = LOGGERS.get(str((logger_cfg or {}).get("name", "csv")))(run_dir)
    return [CSVLogger(save_dir=str(run_dir), name="", version=""), *extra]
