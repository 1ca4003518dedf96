"""``logger=tensorboard``: TensorBoard event files in ``<run>/tensorboard`` as well as metrics.csv."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from lightning.pytorch.loggers import Logger

from ftcli.errors import ConfigError
from ftcli.training.loggers import LOGGERS


@LOGGERS.register("tensorboard")
def tensorboard(run_dir: Path) -> list[Logger]:
    if importlib.util.find_spec("tensorboard") is None and importlib.util.find_spec("tensorboardX") is None:
        raise ConfigError(
            "logger=tensorboard needs the tensorboard package.",
            "Install it with: pip install 'ftcli[tensorboard]'   (or use logger=csv)",
        )
    from lightning.pytorch.loggers import TensorBoardLogger

    return [TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False)]
