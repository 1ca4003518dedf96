"""Resolve a strategy config against a network into a :class:`Schedule` of phases.

A named strategy (``ftcli.finetune.strategies``) or the config's own ``phases:`` list gives the
phase specs; this module turns them into one ``FreezePlan`` per phase, with each block's learning
rate multiplier (``strategy.backbone_lr_mult``, ``strategy.lr_decay``) and BatchNorm policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ftcli.config.schema import check_value, checked, invalid
from ftcli.errors import ConfigError, unknown_name
from ftcli.finetune.freeze_plan import BlockPlan, FreezePlan, Schedule
from ftcli.finetune.strategies import STRATEGIES, PhaseSpec
from ftcli.model.adapters import adapted_blocks
from ftcli.model.blocks import HEAD, BlockNet, has_batchnorm

PHASE_KEYS = ("epochs", "train", "lr_mult", "bn", "label", "adapters")


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
        specs = STRATEGIES.get(name)(backbone, cfg)
    else:
        error = STRATEGIES.unknown(name)
        error.hint = (
            f"{error.hint}; or give the strategy its own `phases:` list (as docs/strategies.md shows)"
        )
        raise error
    adapted = adapted_blocks(net)
    if any(spec.adapters for spec in specs) and not adapted:
        raise ConfigError(
            f"strategy={name} trains adapters in a phase, but the strategy sets no adapter rank.",
            "Set strategy.r (e.g. strategy.r=8), or use strategy=lora, which does.",
        )
    default_bn = checked(cfg, "strategy.bn", "frozen")
    base = _base_multipliers(cfg, net)
    phases = []
    start = 0
    for index, spec in enumerate(specs):
        is_last = index == len(specs) - 1
        epochs = None if is_last else spec.epochs
        blocks = _block_plans(
            net, spec, base, spec.bn or default_bn, adapted if spec.adapters else frozenset()
        )
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
    backbone_mult = float(checked(cfg, "strategy.backbone_lr_mult", 1.0))
    decay = float(checked(cfg, "strategy.lr_decay", 1.0))
    names = net.block_names
    base = {}
    for position, name in enumerate(names):
        distance = len(names) - 1 - position  # head 0, the block below it 1, ...
        base[name] = (1.0 if name == HEAD else backbone_mult) * decay**distance
    return base


def _block_plans(
    net: BlockNet, spec: PhaseSpec, base: Mapping[str, float], bn: str, adapted: frozenset[str]
) -> tuple[BlockPlan, ...]:
    blocks = []
    for name in net.block_names:
        trainable = name == HEAD or name in spec.train
        with_adapters = name in adapted and not trainable
        phase_mult = spec.lr_mult.get(name, 1.0) if isinstance(spec.lr_mult, Mapping) else spec.lr_mult
        block_bn = "-"
        if has_batchnorm(net.blocks[name]):
            block_bn = "train" if trainable else bn
        updates = trainable or with_adapters or block_bn == "affine"
        rate = base[name] * phase_mult if updates else 0.0
        fixed = not trainable and not with_adapters and bn == "frozen"
        blocks.append(BlockPlan(name, trainable, rate, block_bn, fixed=fixed, adapted=with_adapters))
    return tuple(blocks)


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
    # an entry's keys follow the rules of the strategy keys they stand for (ftcli.config.schema)
    epochs = None if epochs is None else check_value(epochs, "strategy.every", f"{where}.epochs")
    lr_mult = raw.get("lr_mult", 1.0)
    if isinstance(lr_mult, Mapping):
        valid = [*backbone, HEAD]
        for name, value in lr_mult.items():
            if name not in valid:
                raise unknown_name("block", str(name), valid, key=f"{where}.lr_mult")
            check_value(value, "strategy.backbone_lr_mult", f"{where}.lr_mult.{name}")
        lr_mult = {str(k): float(v) for k, v in lr_mult.items()}
    else:
        lr_mult = float(check_value(lr_mult, "strategy.backbone_lr_mult", f"{where}.lr_mult"))
    bn = raw.get("bn")
    bn = None if bn is None else check_value(bn, "strategy.bn", f"{where}.bn")
    train = _select_blocks(raw.get("train", HEAD), backbone, f"{where}.train")
    adapters = raw.get("adapters", False)
    if not isinstance(adapters, bool):
        raise invalid(f"{where}.adapters", adapters, "true or false", "true")
    return PhaseSpec(epochs, train, lr_mult, bn, str(raw.get("label") or ""), adapters)


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
