"""Freeze strategies: which blocks train in which phase, at which learning rate, and what BatchNorm does.

A strategy is a list of **phases**; it resolves against a network into a ``Schedule`` whose phases
are ``FreezePlan``s (one entry per block). ``train`` and ``inspect`` both use it, so what ``inspect``
prints is what training does. Decisions from DESIGN.md:
- one optimizer param group per block, created up front and never added later: a phase change
  flips requires_grad and the groups' learning-rate multipliers, nothing else;
- the frozen prefix (every leading block with nothing to train) runs without autograd;
- BatchNorm inside frozen blocks follows ``bn``: ``frozen`` (eval mode, statistics and affine
  fixed), ``train`` (statistics update, affine fixed) or ``affine`` (statistics fixed, affine
  parameters train);
- layer-wise rates (``lr_decay``) are multipliers ftcli applies itself, so they work with every
  optimizer and scheduler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ftcli.blocks import HEAD, BlockNet, has_batchnorm
from ftcli.errors import ConfigError, unknown_name

BN_POLICIES = ("frozen", "train", "affine")
PHASE_KEYS = ("epochs", "train", "lr_mult", "bn", "label")


@dataclass(frozen=True)
class BlockPlan:
    """The plan for one block in one phase."""

    name: str
    trainable: bool
    lr_mult: float  # 0 when nothing in the block trains
    bn: str  # "train" | "frozen" | "affine" for blocks holding BatchNorm, "-" otherwise

    @property
    def updates(self) -> bool:
        """Whether anything in the block trains (the whole block, or only its BN affine parameters)."""
        return self.trainable or self.bn == "affine"


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


# --- phase specs: what each named strategy means, before it meets a network -----------------------


@dataclass(frozen=True)
class PhaseSpec:
    """One phase as configured: its length, which backbone blocks train, multipliers, BN policy."""

    epochs: int | None
    train: frozenset[str]
    lr_mult: float | Mapping[str, float] = 1.0
    bn: str | None = None
    label: str = ""


def _single(train: set[str], label: str) -> list[PhaseSpec]:
    return [PhaseSpec(None, frozenset(train), label=label)]


def _feature_extraction(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    return _single(set(), "head only")


def _last_layers(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    n = _block_count(cfg, backbone, default=1)
    return _single(set(backbone[len(backbone) - n :]) if n else set(), f"head + last {n}")


def _first_layers(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    n = _block_count(cfg, backbone, default=2)
    return _single(set(backbone[n:]), f"all but first {n}")


def _everything(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    return _single(set(backbone), "all")


def _gradual(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    """ULMFiT-style: head only, then one more block from the top every ``every`` epochs."""
    every = _positive_int(cfg.get("every", 1), "strategy.every")
    phases = []
    for k in range(len(backbone) + 1):
        unfrozen = backbone[len(backbone) - k :] if k else []
        last = k == len(backbone)
        label = "head only" if k == 0 else ("all" if last else f"+ {unfrozen[0]}")
        phases.append(PhaseSpec(None if last else every, frozenset(unfrozen), label=label))
    return phases


def _lp_ft(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    """LP-FT (Kumar et al., ICLR 2022): a linear probe on frozen features, then everything, slower."""
    probe = _positive_int(cfg.get("probe_epochs", 3), "strategy.probe_epochs")
    probe_mult = _positive_float(cfg.get("probe_lr_mult", 1.0), "strategy.probe_lr_mult")
    ft_mult = _positive_float(cfg.get("ft_lr_mult", 0.1), "strategy.ft_lr_mult")
    return [
        PhaseSpec(probe, frozenset(), lr_mult=probe_mult, label="linear probe"),
        PhaseSpec(None, frozenset(backbone), lr_mult=ft_mult, label="fine-tune all"),
    ]


# strategy name -> its phases (the head always trains)
STRATEGIES: dict[str, Callable[[list[str], Mapping[str, Any]], list[PhaseSpec]]] = {
    "feature_extraction": _feature_extraction,
    "last_layers": _last_layers,
    "first_layers": _first_layers,
    "full": _everything,
    "scratch": _everything,
    "gradual": _gradual,
    "lp_ft": _lp_ft,
}


def make_schedule(cfg: Mapping[str, Any], net: BlockNet) -> Schedule:
    """Resolve a strategy config (a named strategy, or your own ``phases:`` list) against a network."""
    name = str(cfg.get("name"))
    backbone = net.backbone_names
    if cfg.get("phases"):
        specs = [_phase_from_config(raw, i, backbone) for i, raw in enumerate(_as_list(cfg["phases"]))]
        for index, spec in enumerate(specs[:-1]):
            if spec.epochs is None:
                raise ConfigError(
                    f"strategy.phases[{index}].epochs is required: only the last phase runs to the end.",
                    f"Set it, e.g. strategy.phases[{index}].epochs=2 in your strategy file.",
                )
    elif name in STRATEGIES:
        specs = STRATEGIES[name](backbone, cfg)
    else:
        error = unknown_name("strategy", name, list(STRATEGIES), key="strategy.name")
        error.hint = (
            f"{error.hint}; or give the strategy its own `phases:` list (README: Strategies over time)"
        )
        raise error
    default_bn = _bn_policy(cfg.get("bn", "frozen"), "strategy.bn")
    base = _base_multipliers(cfg, net)
    phases = []
    start = 0
    for index, spec in enumerate(specs):
        is_last = index == len(specs) - 1
        epochs = None if is_last else spec.epochs
        blocks = _block_plans(net, spec, base, spec.bn or default_bn)
        phases.append(
            FreezePlan(name, bool(cfg.get("pretrained", True)), blocks, index, start, epochs, spec.label)
        )
        start += epochs or 0
    return Schedule(name, bool(cfg.get("pretrained", True)), tuple(phases))


def make_plan(cfg: Mapping[str, Any], net: BlockNet) -> FreezePlan:
    """The plan of the first phase (the whole plan for single-phase strategies)."""
    return make_schedule(cfg, net).first


def _base_multipliers(cfg: Mapping[str, Any], net: BlockNet) -> dict[str, float]:
    """Per block before phases: head 1; backbone block i from the head: backbone_lr_mult x decay^i."""
    backbone_mult = _positive_float(cfg.get("backbone_lr_mult", 1.0), "strategy.backbone_lr_mult")
    decay = _positive_float(cfg.get("lr_decay", 1.0), "strategy.lr_decay")
    names = net.block_names
    base = {}
    for position, name in enumerate(names):
        distance = len(names) - 1 - position  # head 0, the block below it 1, ...
        base[name] = (1.0 if name == HEAD else backbone_mult) * decay**distance
    return base


def _block_plans(net: BlockNet, spec: PhaseSpec, base: Mapping[str, float], bn: str) -> tuple[BlockPlan, ...]:
    blocks = []
    for name in net.block_names:
        trainable = name == HEAD or name in spec.train
        phase_mult = spec.lr_mult.get(name, 1.0) if isinstance(spec.lr_mult, Mapping) else spec.lr_mult
        block_bn = "-"
        if has_batchnorm(net.blocks[name]):
            block_bn = "train" if trainable else bn
        updates = trainable or block_bn == "affine"
        blocks.append(BlockPlan(name, trainable, base[name] * phase_mult if updates else 0.0, block_bn))
    return tuple(blocks)


def apply_plan(net: BlockNet, plan: FreezePlan) -> None:
    """Set requires_grad, the no-grad prefix and BatchNorm modes on the network for one phase."""
    for block in plan.blocks:
        module = net.blocks[block.name]
        module.requires_grad_(block.trainable)
        if block.bn == "affine":
            for bn in (m for m in module.modules() if isinstance(m, _BatchNorm)):
                bn.requires_grad_(True)
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


# --- your own phases, from YAML --------------------------------------------------------------------


def _phase_from_config(raw: Any, index: int, backbone: list[str]) -> PhaseSpec:
    where = f"strategy.phases[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping with keys {', '.join(PHASE_KEYS)}, got {raw!r}.")
    unknown = sorted(set(raw) - set(PHASE_KEYS))
    if unknown:
        raise ConfigError(
            f"{where} has unknown keys: {', '.join(unknown)}.", f"Valid: {', '.join(PHASE_KEYS)}"
        )
    epochs = raw.get("epochs")
    epochs = None if epochs is None else _positive_int(epochs, f"{where}.epochs")
    lr_mult = raw.get("lr_mult", 1.0)
    if isinstance(lr_mult, Mapping):
        valid = [*backbone, HEAD]
        for name, value in lr_mult.items():
            if name not in valid:
                raise unknown_name("block", str(name), valid, key=f"{where}.lr_mult")
            _positive_float(value, f"{where}.lr_mult.{name}")
        lr_mult = {str(k): float(v) for k, v in lr_mult.items()}
    else:
        lr_mult = _positive_float(lr_mult, f"{where}.lr_mult")
    bn = raw.get("bn")
    bn = None if bn is None else _bn_policy(bn, f"{where}.bn")
    train = _select_blocks(raw.get("train", HEAD), backbone, f"{where}.train")
    return PhaseSpec(epochs, train, lr_mult, bn, str(raw.get("label") or ""))


def _select_blocks(value: Any, backbone: list[str], key: str) -> frozenset[str]:
    """``head`` | ``all`` | ``last:N`` | ``from:BLOCK`` | a list of block names (the head always trains)."""
    help_text = (
        "Use head, all, last:N, from:BLOCK or a list of block names; `ftcli inspect` lists the blocks."
    )
    if isinstance(value, Sequence) and not isinstance(value, str):
        valid = [*backbone, HEAD]
        for name in value:
            if name not in valid:
                raise unknown_name("block", str(name), valid, key=key)
        return frozenset(str(n) for n in value) - {HEAD}
    text = str(value)
    if text == HEAD:
        return frozenset()
    if text == "all":
        return frozenset(backbone)
    kind, _, arg = text.partition(":")
    if kind == "last" and arg.isdigit() and int(arg) <= len(backbone):
        n = int(arg)
        return frozenset(backbone[len(backbone) - n :]) if n else frozenset()
    if kind == "from" and arg in backbone:
        return frozenset(backbone[backbone.index(arg) :])
    raise ConfigError(
        f"{key}={text} does not select blocks of this network ({', '.join(backbone)}).", help_text
    )


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    raise ConfigError(f"strategy.phases must be a list of phases, got {value!r}.")


def _block_count(cfg: Mapping[str, Any], backbone: list[str], default: int) -> int:
    n = cfg.get("n", default)
    whole = isinstance(n, int) and not isinstance(n, bool)
    if not whole or not 0 <= n <= len(backbone):
        problem = "is out of range" if whole else "is not a whole number of blocks"
        raise ConfigError(
            f"strategy.n={n} {problem}: this network has {len(backbone)} blocks before the head "
            f"({', '.join(backbone)}).",
            f"Use an integer from 0 to {len(backbone)}; `ftcli inspect` shows the blocks.",
        )
    return n


def _bn_policy(value: Any, key: str) -> str:
    if str(value) not in BN_POLICIES:
        raise ConfigError(f"Unknown {key} '{value}'.", f"Valid values: {', '.join(BN_POLICIES)}")
    return str(value)


def _positive_float(value: Any, key: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if number < 0:
        raise ConfigError(f"{key}={value} must be a number >= 0.")
    return number


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}={value} must be a whole number of epochs >= 1.")
    return value
