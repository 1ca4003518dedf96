"""Build the Lightning Trainer from ``trainer=``: precision, checkpoints, metrics, progress, safety."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar

from ftcli import device
from ftcli.config.run_options import RunOptions
from ftcli.errors import ConfigError
from ftcli.training.callbacks.best_and_last import BestAndLast
from ftcli.training.callbacks.bn_recalibration import RecalibrateBatchNorm
from ftcli.training.callbacks.divergence import StopOnNonFinite
from ftcli.training.callbacks.early_stopping import early_stopping
from ftcli.training.callbacks.ema import PhaseAwareEMA
from ftcli.training.callbacks.throughput import Throughput
from ftcli.training.checkpoint_io import AtomicCheckpointIO
from ftcli.training.loggers import build_loggers

# Redraw the progress bar every few steps, not every step (each redraw costs host time).
PROGRESS_REFRESH_STEPS = 5


def build_trainer(
    trainer_cfg: Mapping[str, Any],
    run_dir: Path,
    logger_cfg: Mapping[str, Any] | None = None,
    multi_phase: bool = False,
    extra_callbacks: list[L.Callback] | None = None,
) -> tuple[L.Trainer, ModelCheckpoint, Throughput]:
    """A Trainer writing checkpoints/, metrics.csv (and TensorBoard events if asked) into the run dir.

    ``extra_callbacks`` (:func:`training_callbacks`: early stopping, EMA, BatchNorm recalibration, as the
    run's options ask) run in their order. The keys were checked by the schema (``ftcli.config``).
    With several phases under DDP, parameters frozen in one phase train in another: DDP must be
    told that some parameters get no gradient in some steps.
    """
    kwargs = dict(trainer_cfg)
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
    callbacks.extend(extra_callbacks or [])
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


def training_callbacks(options: RunOptions) -> list[L.Callback]:
    """The callbacks the run's options ask for, in the order they must run: early stopping
    (``early_stopping.enabled``), the EMA of the weights (``ema.enabled``), which swaps its weights in
    before BatchNorm recalibration (``strategy.bn_recalibrate``) recomputes the statistics of the
    weights being validated."""
    callbacks: list[L.Callback] = []
    stopper = early_stopping(options.early_stopping)
    if stopper is not None:
        callbacks.append(stopper)
    if options.training.ema.enabled:
        callbacks.append(PhaseAwareEMA(options.training.ema))
    if options.bn_recalibrate:
        callbacks.append(RecalibrateBatchNorm())
    return callbacks
