"""Build the Lightning Trainer from ``trainer=``: precision, checkpoints, metrics, progress, safety."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar

from ftcli import device
from ftcli.errors import ConfigError
from ftcli.training.best_and_last import BestAndLast
from ftcli.training.checkpoint_io import AtomicCheckpointIO
from ftcli.training.divergence import StopOnNonFinite
from ftcli.training.early_stopping import early_stopping
from ftcli.training.loggers import build_loggers
from ftcli.training.throughput import Throughput
from ftcli.training.trainer_options import check_trainer_options

# Redraw the progress bar every few steps, not every step (each redraw costs host time).
PROGRESS_REFRESH_STEPS = 5


def build_trainer(
    trainer_cfg: Mapping[str, Any],
    run_dir: Path,
    logger_cfg: Mapping[str, Any] | None = None,
    multi_phase: bool = False,
) -> tuple[L.Trainer, ModelCheckpoint, Throughput]:
    """A Trainer writing checkpoints/, metrics.csv (and TensorBoard events if asked) into the run dir.

    ``trainer.early_stopping`` adds a phase-aware EarlyStopping (training/early_stopping.py).
    With several phases under DDP, parameters frozen in one phase train in another: DDP must be
    told that some parameters get no gradient in some steps.
    """
    kwargs = dict(trainer_cfg)
    kwargs.pop("compile", None)  # ftcli's own switch (ftcli.training.performance), not a Trainer arg
    stopper = early_stopping(kwargs.pop("early_stopping", None))  # ftcli's block, not a Trainer arg
    check_trainer_options(kwargs)
    # trainer.strategy is Lightning's distribution strategy (ddp), not ftcli's freeze strategy
    if multi_phase and str(kwargs.get("strategy")) == "ddp":
        kwargs["strategy"] = "ddp_find_unused_parameters_true"
    accelerator = str(kwargs.get("accelerator", "auto"))
    device.check_accelerator(accelerator)
    kwargs["precision"] = device.resolve_precision(kwargs.get("precision", "auto"), accelerator)
    device.allow_tf32()
    checkpoint = BestAndLast(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor="val/acc",
        mode="max",
        save_last=True,
        auto_insert_metric_name=False,
    )
    throughput = Throughput()
    callbacks: list[L.Callback] = [checkpoint, throughput, StopOnNonFinite()]
    if stopper is not None:
        callbacks.append(stopper)
    if kwargs.get("enable_progress_bar", True):
        callbacks.append(RichProgressBar(refresh_rate=PROGRESS_REFRESH_STEPS, leave=True))
    logger = build_loggers(logger_cfg, run_dir)
    try:
        trainer = L.Trainer(
            **kwargs,
            default_root_dir=str(run_dir),
            callbacks=callbacks,
            logger=logger,
            enable_model_summary=False,
            plugins=[AtomicCheckpointIO()],
        )
    except (TypeError, ValueError, MisconfigurationException) as exc:
        raise ConfigError(f"Bad trainer option: {exc}.", "See the Lightning Trainer arguments.") from exc
    return trainer, checkpoint, throughput
