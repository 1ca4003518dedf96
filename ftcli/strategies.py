"""Freeze strategies: which blocks train, at which learning rate, and what BatchNorm does.

A strategy turns into a ``FreezePlan`` (one entry per block) that ``train`` and ``inspect`` both use,
so what ``inspect`` prints is what training does. Decisions from DESIGN.md:
- one optimizer param group per block, created up front and never added later; a frozen block has
  requires_grad=False and a learning-rate multiplier of 0;
- the frozen prefix (every block before the first trainable one) runs without autograd;
- BatchNorm inside frozen blocks follows ``strategy.bn``: ``frozen`` (eval mode, statistics fixed)
  or ``train`` (statistics keep updating while the affine parameters stay frozen).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from ftcli.blocks import HEAD, BlockNet, has_batchnorm
from ftcli.errors import ConfigError, unknown_name

BN_POLICIES = ("frozen", "train")


@dataclass(frozen=True)
class BlockPlan:
    """The plan for one block."""

    name: str
    trainable: bool
    lr_mult: float
    bn: str  # "train" | "frozen" for blocks holding BatchNorm, "-" otherwise


@dataclass(frozen=True)
class FreezePlan:
    """The plan for every block, in forward order (head last)."""

    strategy: str
    pretrained: bool
    blocks: tuple[BlockPlan, ...]

    @property
    def trainable_blocks(self) -> list[str]:
        return [b.name for b in self.blocks if b.trainable]

    @property
    def no_grad_prefix(self) -> int:
        """How many leading blocks are frozen: they need no autograd graph at all."""
        count = 0
        for block in self.blocks:
            if block.trainable:
                break
            count += 1
        return count

    @property
    def frozen_bn_blocks(self) -> frozenset[str]:
        return frozenset(b.name for b in self.blocks if b.bn == "frozen")

    def lr_mult(self, name: str) -> float:
        return next(b.lr_mult for b in self.blocks if b.name == name)


def _feature_extraction(backbone: list[str], cfg: Mapping[str, Any]) -> set[str]:
    return set()


def _last_layers(backbone: list[str], cfg: Mapping[str, Any]) -> set[str]:
    n = _block_count(cfg, backbone, default=1)
    return set(backbone[len(backbone) - n :]) if n else set()


def _first_layers(backbone: list[str], cfg: Mapping[str, Any]) -> set[str]:
    n = _block_count(cfg, backbone, default=2)
    return set(backbone[n:])


def _everything(backbone: list[str], cfg: Mapping[str, Any]) -> set[str]:
    return set(backbone)


# strategy name -> which backbone blocks train (the head always trains)
STRATEGIES: dict[str, Callable[[list[str], Mapping[str, Any]], set[str]]] = {
    "feature_extraction": _feature_extraction,
    "last_layers": _last_layers,
    "first_layers": _first_layers,
    "full": _everything,
    "scratch": _everything,
}


def make_plan(cfg: Mapping[str, Any], net: BlockNet) -> FreezePlan:
    """Resolve a strategy config against a network's blocks."""
    name = str(cfg.get("name"))
    if name not in STRATEGIES:
        raise unknown_name("strategy", name, list(STRATEGIES), key="strategy.name")
    bn_policy = str(cfg.get("bn", "frozen"))
    if bn_policy not in BN_POLICIES:
        raise ConfigError(f"Unknown strategy.bn '{bn_policy}'.", f"Valid values: {', '.join(BN_POLICIES)}")
    backbone_mult = _positive_float(cfg.get("backbone_lr_mult", 1.0), "strategy.backbone_lr_mult")
    backbone = net.backbone_names
    trainable = STRATEGIES[name](backbone, cfg) | {HEAD}
    blocks = []
    for block_name in net.block_names:
        is_trainable = block_name in trainable
        mult = (1.0 if block_name == HEAD else backbone_mult) if is_trainable else 0.0
        bn = "-"
        if has_batchnorm(net.blocks[block_name]):
            bn = "train" if is_trainable else bn_policy
        blocks.append(BlockPlan(block_name, is_trainable, mult, bn))
    return FreezePlan(name, bool(cfg.get("pretrained", True)), tuple(blocks))


def apply_plan(net: BlockNet, plan: FreezePlan) -> None:
    """Set requires_grad, the no-grad prefix and BatchNorm modes on the network."""
    for block in plan.blocks:
        net.blocks[block.name].requires_grad_(block.trainable)
    net.no_grad_prefix = plan.no_grad_prefix
    net.frozen_bn_blocks = plan.frozen_bn_blocks
    net.train(net.training)


def param_groups(net: BlockNet, plan: FreezePlan, base_lr: float) -> list[dict[str, Any]]:
    """One optimizer param group per block that has parameters, frozen blocks included (lr 0)."""
    groups = []
    for block in plan.blocks:
        params: list[nn.Parameter] = list(net.blocks[block.name].parameters())
        if params:
            groups.append(
                {
                    "params": params,
                    "lr": base_lr * block.lr_mult,
                    "lr_mult": block.lr_mult,
                    "name": block.name,
                }
            )
    return groups


def _block_count(cfg: Mapping[str, Any], backbone: list[str], default: int) -> int:
    n = cfg.get("n", default)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(backbone):
        raise ConfigError(
            f"strategy.n={n} is out of range: this network has {len(backbone)} blocks before the head "
            f"({', '.join(backbone)}).",
            f"Use an integer from 0 to {len(backbone)}; `ftcli inspect` shows the blocks.",
        )
    return n


def _positive_float(value: Any, key: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if number < 0:
        raise ConfigError(f"{key}={value} must be a number >= 0.")
    return number
