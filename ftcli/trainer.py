"""Build the Lightning Trainer from ``trainer=``: precision auto, checkpoints, CSV metrics, progress."""

from __future__ import annotations

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
from ftcli.errors import ConfigError
from ftcli.trainer_checks import check_trainer_options

GPU_ACCELERATORS = ("gpu", "cuda")


def resolve_precision(precision: Any, accelerator: str) -> Any:
    """``auto``: bf16-mixed on GPUs that support it, 16-mixed on other GPUs, 32-true on CPU."""
    if str(precision) != "auto":
        return precision
    on_gpu = torch.cuda.is_available() and str(accelerator) in ("auto", *GPU_ACCELERATORS)
    if not on_gpu:
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def build_trainer(
    trainer_cfg: Mapping[str, Any], run_dir: Path
) -> tuple[L.Trainer, ModelCheckpoint, Throughput]:
    """A Trainer writing checkpoints/ and metrics.csv into the run directory."""
    kwargs = dict(trainer_cfg)
    check_trainer_options(kwargs)
    accelerator = str(kwargs.get("accelerator", "auto"))
    if accelerator in GPU_ACCELERATORS and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but no CUDA GPU is visible.",
            "Use trainer=default (GPU when there is one, else CPU) or trainer=cpu.",
        )
    kwargs["precision"] = resolve_precision(kwargs.get("precision", "auto"), accelerator)
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")  # TF32 matmuls for whatever still runs in fp32
    checkpoint = ModelCheckpoint(
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
        callbacks.append(RichProgressBar(leave=True))
    logger = CSVLogger(save_dir=str(run_dir), name="", version="")
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
