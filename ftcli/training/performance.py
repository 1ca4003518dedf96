"""Runtime speed settings applied once before fit: GPU memory format, cuDNN autotuning, compile, threads.

Kept apart from the Trainer so each setting is one visible line and a phase change has one function
to call (:func:`recompile`): changing ``requires_grad`` after ``torch.compile`` would otherwise keep
running the stale graph (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ftcli.device import trains_on_gpu


def tune(
    module: nn.Module, trainer_cfg: Mapping[str, Any], num_workers: int = 0, compile: bool = False
) -> None:
    """GPU: channels_last weights and cuDNN autotuning; ``compile=true``; CPU: no oversubscription."""
    if trains_on_gpu(trainer_cfg):
        # Convolutions run fastest on NHWC under mixed precision (tensor cores); cuDNN follows the weights.
        module.to(memory_format=torch.channels_last)
        # Input sizes are fixed per run (the crop), so autotuning once pays off every step.
        torch.backends.cudnn.benchmark = True
    elif num_workers > 0:
        # DataLoader workers and intra-op threads share the cores: leave the workers theirs.
        threads = max(1, (os.cpu_count() or 1) - num_workers)
        if torch.get_num_threads() > threads:
            torch.set_num_threads(threads)
    if compile:
        compile_model(module)


def compile_model(module: nn.Module) -> None:
    """``torch.compile`` the network in place (state_dict keys unchanged, so checkpoints stay plain)."""
    net = getattr(module, "model", module)
    net.compile()


def recompile(module: nn.Module) -> None:
    """Call after a phase change flips ``requires_grad``: forget compiled graphs, compile afresh.

    A no-op when the network was not compiled.
    """
    net = getattr(module, "model", module)
    if getattr(net, "_compiled_call_impl", None) is None:
        return
    torch._dynamo.reset()
    net.compile()


def is_compiled(module: nn.Module) -> bool:
    """Whether :func:`compile_model` was applied."""
    net = getattr(module, "model", module)
    return getattr(net, "_compiled_call_impl", None) is not None
