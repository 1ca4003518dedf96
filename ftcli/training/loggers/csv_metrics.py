"""``logger=csv`` (the default): metrics per epoch in metrics.csv only."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.loggers import Logger

from ftcli.training.loggers import LOGGERS


@LOGGERS.register("csv")
def csv_only(run_dir: Path) -> list[Logger]:
    return []  # build_loggers always writes metrics.csv
