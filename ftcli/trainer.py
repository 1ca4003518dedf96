"""Build the Lightning Trainer from ``trainer=``: precision auto, checkpoints, CSV metrics, progress."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger

from ftcli.callbacks import Throughput
from ftcli.checkpointing import AtomicCheckpointIO
from ftcli.divergence import StopOnNonFinite
from ftcli.errors import ConfigError, unknown_name
from ftcli.trainer_checks import check_trainer_options

GPU_ACCELERATORS = ("gpu", "cuda")
# Redraw the progress bar every few steps, not every step (each redraw costs host time).
PROGRESS_REFRESH_STEPS = 5
LOGGERS = ("csv", "tensorboard")


def resolve_precision(precision: Any, accelerator: str) -> Any:
    """``auto``: bf16-mixed on GPUs that support it, 16-mixed on other GPUs, 32-true on CPU."""
    if str(precision) != "auto":
        return precision
    on_gpu = torch.cuda.is_available() and str(accelerator) in ("auto", *GPU_ACCELERATORS)
    if not on_gpu:
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


class BestAndLast(ModelCheckpoint):
    """``best.ckpt`` by val/acc, and ``last.ckpt`` after every validation.

    Lightning 2.6 refreshes last.ckpt only when best.ckpt was written in the same step; resume
    needs the newest state whether or not it was the best.
    """

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_not_saved(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_not_saved(trainer)

    def _save_last_if_not_saved(self, trainer: L.Trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def build_loggers(logger_cfg: Mapping[str, Any] | None, run_dir: Path) -> list[Any]:
    """``logger=csv`` (default): metrics.csv; ``logger=tensorboard``: TensorBoard events as well.

    metrics.csv is always written: the training curves PNG and the summaries read it.
    """
    name = str((logger_cfg or {}).get("name", "csv"))
    if name not in LOGGERS:
        raise unknown_name("logger", name, list(LOGGERS), key="logger.name")
    loggers: list[Any] = [CSVLogger(save_dir=str(run_dir), name="", version="")]
    if name == "tensorboard":
        if (
            importlib.util.find_spec("tensorboard") is None
            and importlib.util.find_spec("tensorboardX") is None
        ):
            raise ConfigError(
                "logger=tensorboard needs the tensorboard package.",
                "Install it with: pip install 'ftcli[tensorboard]'   (or use logger=csv)",
            )
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(
            TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False)
        )
    return loggers


def build_trainer(
    trainer_cfg: Mapping[str, Any],
    run_dir: Path,
    logger_cfg: Mapping[str, Any] | None = None,
    multi_phase: bool = False,
) -> tuple[L.Trainer, ModelCheckpoint, Throughput]:
    """A Trainer writing checkpoints/, metrics.csv (and TensorBoard events if asked) into the run dir.

    With several phases under DDP, parameters frozen in one phase train in another: DDP must be
    told that some parameters get no gradient in some steps.
    """
    kwargs = dict(trainer_cfg)
    kwargs.pop("compile", None)  # ftcli's own switch (ftcli.perf), not a Trainer argument
    check_trainer_options(kwargs)
    if multi_phase and str(kwargs.get("strategy")) == "ddp":
        kwargs["strategy"] = "ddp_find_unused_parameters_true"
    accelerator = str(kwargs.get("accelerator", "auto"))
    if accelerator in GPU_ACCELERATORS and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but no CUDA GPU is visible.",
            "Use trainer=default (GPU when there is one, else CPU) or trainer=cpu.",
        )
    kwargs["precision"] = resolve_precision(kwargs.get("precision", "auto"), accelerator)
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")  # TF32 matmuls for whatever still runs in fp32
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
