"""Freeze strategies: which blocks train in which phase, at which learning rate, and what BatchNorm does.

A strategy is a list of **phases**; it resolves against a network into a ``Schedule`` whose phases
are ``FreezePlan``s (one entry per block). ``train`` and ``inspect`` both use it, so what ``inspect``
prints is what training does. Decisions (docs/ARCHITECTURE.md):
- one optimizer param group per block, created up front and never added later: a phase change
  flips requires_grad and the groups' learning-rate multipliers, nothing else;
- the frozen prefix (every leading block with nothing to train) runs without autograd;
- BatchNorm inside frozen blocks follows ``bn``: ``frozen`` (eval mode, statistics and affine
  fixed), ``train`` (statistics update, affine fixed) or ``affine`` (statistics fixed, affine
  parameters train);
- with ``bn=frozen`` a frozen block is a fixed function: the whole block runs in eval mode, so its
  dropout and stochastic depth are off too (``fixed``), and the live path computes exactly what the
  feature cache stores; with ``bn=train|affine`` only BatchNorm follows ``bn`` and the rest of the
  block stays in the network's mode;
- a block holding adapters (``ftcli.finetune.adapters``) is ``adapted`` in a phase that trains them:
  its adapters train, its own weights stay frozen, and it ends the no-grad prefix;
- layer-wise rates (``lr_decay``) are multipliers ftcli applies itself, so they work with every
  optimizer and scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ftcli.model.adapters import set_adapters_trainable
from ftcli.model.blocks import HEAD, BlockNet


@dataclass(frozen=True)
class BlockPlan:
    """The plan for one block in one phase."""

    name: str
    trainable: bool
    lr_mult: float  # 0 when nothing in the block trains
    bn: str  # "train" | "frozen" | "affine" for blocks holding BatchNorm, "-" otherwise
    fixed: bool = False  # frozen under bn=frozen: the whole block runs in eval mode (dropout, drop path too)
    adapted: bool = False  # its adapters (LoRA, DoRA) train while its own weights stay frozen

    @property
    def updates(self) -> bool:
        """Whether anything in the block trains (the whole block, its adapters, or only its BN affine
        parameters)."""
        return self.trainable or self.adapted or self.bn == "affine"


@dataclass(frozen=True)
class FreezePlan:
    """One phase: the plan for every block, in forward order (head last), and when it applies."""

    strategy: str
    pretrained: bool
    blocks: tuple[BlockPlan, ...]
    index: int = 0
    start_epoch: int = 0
    epochs: int | None = None  # None: runs to the end of training
    label: str = ""

    @property
    def trainable_blocks(self) -> list[str]:
        return [b.name for b in self.blocks if b.trainable]

    @property
    def adapted_blocks(self) -> list[str]:
        return [b.name for b in self.blocks if b.adapted]

    @property
    def head_only(self) -> bool:
        """A probe phase: the new head trains, no pretrained block (nor adapter inside one) does."""
        return self.trainable_blocks == [HEAD] and not self.adapted_blocks

    @property
    def no_grad_prefix(self) -> int:
        """How many leading blocks have nothing to train: they need no autograd graph at all."""
        count = 0
        for block in self.blocks:
            if block.updates:
                break
            count += 1
        return count

    @property
    def frozen_bn_blocks(self) -> frozenset[str]:
        """Blocks whose BatchNorm layers stay in eval mode (statistics fixed)."""
        return frozenset(b.name for b in self.blocks if b.bn in ("frozen", "affine"))

    @property
    def fixed_blocks(self) -> frozenset[str]:
        """Blocks that run entirely in eval mode: frozen under ``bn=frozen``, a fixed function."""
        return frozenset(b.name for b in self.blocks if b.fixed)

    @property
    def end_epoch(self) -> int | None:
        return None if self.epochs is None else self.start_epoch + self.epochs

    def lr_mult(self, name: str) -> float:
        return next(b.lr_mult for b in self.blocks if b.name == name)

    def describe(self) -> str:
        """``epochs 0-2`` or ``epochs 3-end``, for tables."""
        end = "end" if self.end_epoch is None else str(self.end_epoch - 1)
        return f"epochs {self.start_epoch}-{end}"


@dataclass(frozen=True)
class Schedule:
    """A strategy resolved against a network: its phases in order (the last runs to the end)."""

    strategy: str
    pretrained: bool
    phases: tuple[FreezePlan, ...]

    def phase_index(self, epoch: int) -> int:
        """The phase that applies at ``epoch`` (0-based)."""
        index = 0
        for phase in self.phases:
            if epoch >= phase.start_epoch:
                index = phase.index
        return index

    def at(self, epoch: int) -> FreezePlan:
        return self.phases[self.phase_index(epoch)]

    @property
    def first(self) -> FreezePlan:
        return self.phases[0]

    def unreached(self, max_epochs: int) -> list[FreezePlan]:
        """Phases that start at or after ``max_epochs`` and so never run."""
        return [p for p in self.phases if p.start_epoch >= max_epochs]


def apply_plan(net: BlockNet, plan: FreezePlan) -> None:
    """Set requires_grad, the no-grad prefix and BatchNorm modes on the network for one phase."""
    for block in plan.blocks:
        module = net.blocks[block.name]
        module.requires_grad_(block.trainable)
        if block.adapted:
            set_adapters_trainable(module, True)
        if block.bn == "affine":
            for bn in (m for m in module.modules() if isinstance(m, _BatchNorm)):
                bn.requires_grad_(True)
    net.no_grad_prefix = plan.no_grad_prefix
    net.frozen_bn_blocks = plan.frozen_bn_blocks
    net.fixed_blocks = plan.fixed_blocks
    net.train(net.training)


# Parameters named like these (the last part of the name) get no weight decay whatever their shape:
# timm's ``no_weight_decay()`` names and torchvision's ViT/Swin equivalents.
NO_DECAY_NAMES = frozenset(
    {
        "pos_embed",
        "pos_embedding",
        "position_embeddings",
        "cls_token",
        "class_token",
        "dist_token",
        "reg_token",
        "relative_position_bias_table",
    }
)


def decays(name: str, param: nn.Parameter) -> bool:
    """Whether weight decay applies to a parameter under timm's convention: not to normalisation scales
    and shifts or biases (every 1-d tensor), nor to position embeddings and class tokens."""
    return param.ndim > 1 and name.rsplit(".", 1)[-1] not in NO_DECAY_NAMES


def param_groups(
    net: BlockNet, plan: FreezePlan, base_lr: float, decay_norm_and_bias: bool = False
) -> list[dict[str, Any]]:
    """The optimizer param groups, created once: per block that has parameters (frozen blocks included,
    lr 0), one group with weight decay and one without (``weight_decay`` 0: norms, biases, position
    embeddings, class tokens; see :func:`decays`). ``decay_norm_and_bias=True``
    (``optimizer.decay_norm_and_bias``) puts every parameter of a block in one group, decayed.
    Both groups of a block carry its ``name``; the no-decay one has ``no_decay: True``.
    """
    groups = []
    for block in plan.blocks:
        named = list(net.blocks[block.name].named_parameters())
        if decay_norm_and_bias:
            split = [(False, [p for _, p in named])]
        else:
            split = [
                (False, [p for n, p in named if decays(n, p)]),
                (True, [p for n, p in named if not decays(n, p)]),
            ]
        for no_decay, params in split:
            if not params:
                continue
            group: dict[str, Any] = {
                "params": params,
                "lr": base_lr * block.lr_mult,
                "lr_mult": block.lr_mult,
                "name": block.name,
            }
            if no_decay:
                group["weight_decay"] = 0.0
                group["no_decay"] = True
            groups.append(group)
    return groups


def decay_summary(groups: list[dict[str, Any]]) -> tuple[int, int]:
    """(parameters with weight decay, parameters without) over ``param_groups``' groups."""
    off = sum(p.numel() for g in groups if g.get("no_decay") for p in g["params"])
    on = sum(p.numel() for g in groups if not g.get("no_decay") for p in g["params"])
    return on, off
