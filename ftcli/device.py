"""The one place that decides device and precision.

Whether a run trains on a GPU, which device the feature cache, ``eval`` and ``predict`` use, what
``trainer.precision=auto`` means, and whether DataLoaders pin memory are all answered here, so
the answers cannot drift apart (docs/ARCHITECTURE.md). Shared by data/, training/ and commands/.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from ftcli.errors import ConfigError

GPU_ACCELERATORS = ("gpu", "cuda")


def trains_on_gpu(trainer_cfg: Mapping[str, Any]) -> bool:
    """Whether a run with this ``trainer`` config trains on a CUDA GPU."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    return torch.cuda.is_available() and accelerator in ("auto", *GPU_ACCELERATORS)


def training_device(trainer_cfg: Mapping[str, Any]) -> torch.device:
    """The device this rank trains on: its GPU when one is visible and allowed, else the CPU."""
    if trains_on_gpu(trainer_cfg):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def check_accelerator(accelerator: str) -> None:
    """A GPU accelerator asked for where none is visible is a config error, not a Lightning traceback."""
    if accelerator in GPU_ACCELERATORS and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but no CUDA GPU is visible.",
            "Use trainer=default (GPU when there is one, else CPU) or trainer=cpu.",
        )


def resolve_precision(precision: Any, accelerator: str) -> Any:
    """``auto``: bf16-mixed on GPUs that support it, 16-mixed on other GPUs, 32-true on CPU."""
    if str(precision) != "auto":
        return precision
    if not trains_on_gpu({"accelerator": accelerator}):
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def allow_tf32() -> None:
    """TF32 matmuls for whatever still runs in fp32 on a GPU (a no-op without one)."""
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")


def inference_device(name: str) -> torch.device:
    """``device=`` of eval and predict: ``auto`` is the GPU when there is one; ``cuda`` without one fails."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA GPU is visible.", "Use device=auto or device=cpu.")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"Unknown device '{name}'.", "Use device=auto, cpu or cuda.") from None


def pin_memory() -> bool:
    """DataLoaders pin host memory when batches may go to a GPU."""
    return torch.cuda.is_available()
