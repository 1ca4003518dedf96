"""The typed schema of the composed config: types, enums, ranges and finiteness, checked in one place.

``ftcli.pipeline.plan_run`` (which ``train``, ``inspect`` and ``lrfind`` go through) and the advisor
(``advise``, ``strategy=auto``) call :func:`check_config` first, before data, networks or the Trainer
exist. A value of the wrong type (``seed=abc``,
``strategy.pretrained=maybe``), out of range (``optimizer.betas=[2,3]``, ``data.image_size=0``) or not
finite (``strategy.backbone_lr_mult=nan``) is a ConfigError naming the key, the value and what is
allowed. Keys the schema does not list are left to their own checks (registries, data sources, and
the option blocks of this package: ``loss``, ``mixup``, ``ema``, ``early_stopping``, ``lrfind``), and a
key missing from the config is skipped: the schema never rejects a key it does not know. Names
(``model.name``, ``optimizer.name``...) are checked by their registries, which list the valid ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ftcli.config.lightning_values import (
    GRADIENT_CLIP_ALGORITHMS,
    LIGHTNING_PRECISIONS,
    LIGHTNING_STRATEGIES,
    PRECISION_INTS,
    TIMEDELTA_KEYS,
)
from ftcli.config.rules import (
    AUTO_SWITCH,
    BOOLEAN,
    FRACTION_OR_COUNT,
    MAPPING,
    PATH,
    TEXT,
    Rule,
    choice,
    is_fraction,
    is_number,
    is_path,
    is_whole,
    number,
    numbers,
    positive,
    whole,
)
from ftcli.errors import ConfigError

MAX_IMAGE_SIZE = 2048  # pixels a side: larger inputs do not fit a GPU batch of any ImageNet network
MAX_INPUT_BATCH_BYTES = 8 << 30  # batch_size x 3 x image_size^2 float32: the input batch alone
MAX_HEAD_PARAMETERS = 200_000_000  # a head's size estimate (recipe.hidden), before anything is allocated
FEATURES_ESTIMATE = 2048  # features entering the head, for the estimate (resnet50's; most are smaller)
MAX_LR_MULT = 1000.0
SEED_MAX = 2**32 - 1  # numpy's and Lightning's seeds are 32-bit
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")

BATCH_LIMITS = ("limit_train_batches", "limit_val_batches", "limit_test_batches", "overfit_batches")


def _devices_ok(value: Any) -> bool:
    """What Lightning's device parsers take: ``auto``, -1 (all), a count >= 1, a list of distinct device
    indices, or the same as a string ("2", "-1", "0,1")."""
    if isinstance(value, str):
        text = value.strip()
        if text in ("auto", "-1"):
            return True
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts or not all(part.isdigit() for part in parts):
            return False
        value = [int(part) for part in parts] if "," in text else int(parts[0])
    if isinstance(value, list):
        return bool(value) and all(is_whole(v) and v >= 0 for v in value) and len(set(value)) == len(value)
    return is_whole(value) and (value == -1 or value >= 1)


def _max_time_ok(value: Any) -> bool:
    """Lightning's Timer: ``DD:HH:MM:SS`` or a mapping of ``datetime.timedelta`` keyword arguments."""
    if isinstance(value, str):
        return re.fullmatch(r"(\d+):(\d\d):(\d\d):(\d\d)", value.strip()) is not None
    return isinstance(value, Mapping) and all(
        k in TIMEDELTA_KEYS and is_number(v) and v >= 0 for k, v in value.items()
    )


def _hidden_ok(value: Any) -> bool:
    return isinstance(value, list) and all(is_whole(h) and 1 <= h <= 65536 for h in value)


def _non_empty_phases(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0


# key -> rule; checked only when the key is in the composed config.
RULES: dict[str, Rule] = {
    "seed": whole(0, SEED_MAX, "42"),
    "print_config": BOOLEAN,
    "compile": BOOLEAN,
    "gradient_checkpointing": BOOLEAN,
    "resume": PATH.or_null(),
    # strategy=auto (ftcli.advice.race: the budget is checked against the race there)
    "auto.mode": choice("race", "rule"),
    "auto.budget": whole(1, example="15").or_null(),
    "auto.candidates": whole(2, 5, "4"),
    # model
    "model.name": TEXT,
    "model.weights": Rule(
        is_path, "a weights name or file (a path of at most 4,096 bytes)", "DEFAULT"
    ).or_null(),
    "model.kwargs": MAPPING.or_null(),
    "model.layers_per_block": Rule(
        lambda v: v == "auto" or (is_whole(v) and 1 <= v <= 4096),
        "auto or a whole number from 1: at most that many transformer layers per block (text models)",
        "1",
    ),
    # recipe (the head)
    "recipe.name": TEXT,
    "recipe.hidden": Rule(_hidden_ok, "a list of layer widths, each from 1 to 65536", "[256]"),
    "recipe.dropout": number(0, 1, open_high=True, example="0.2"),
    "recipe.activation": TEXT,
    "recipe.pool": choice("auto", "last", "mean", "cls"),
    # strategy
    "strategy.name": TEXT,
    "strategy.pretrained": BOOLEAN,
    "strategy.bn": choice("frozen", "train", "affine"),
    "strategy.bn_recalibrate": BOOLEAN,
    "strategy.backbone_lr_mult": number(0, MAX_LR_MULT, example="0.1"),
    "strategy.lr_decay": number(0, 1, example="0.7 (1: no decay)"),
    "strategy.probe_lr_mult": number(0, MAX_LR_MULT, example="1.0"),
    "strategy.ft_lr_mult": number(0, MAX_LR_MULT, example="0.1"),
    # strategy.n and recipe.n: checked against the network's blocks (ftcli.finetune.strategies,
    # model/surgery), which name the blocks in their message
    "strategy.every": Rule(lambda v: is_whole(v) and v >= 1, "a whole number of epochs >= 1", "1"),
    "strategy.probe_epochs": Rule(lambda v: is_whole(v) and v >= 0, "a whole number of epochs >= 0", "3"),
    # adapters (strategy=lora; ftcli.finetune.adapters checks strategy.targets and strategy.blocks against
    # the network)
    "strategy.r": Rule(
        lambda v: v == "auto" or (is_whole(v) and 1 <= v <= 1024),
        "auto or a whole number from 1 to 1024",
        "8",
    ),
    "strategy.alpha": Rule(
        lambda v: v == "auto" or (is_number(v) and 0 < v <= 100_000), "auto or a finite number above 0", "16"
    ),
    "strategy.max_share": positive(1.0, "0.02"),
    "strategy.dropout": number(0, 1, open_high=True, example="0.05"),
    "strategy.use_dora": BOOLEAN,
    "strategy.blocks": Rule(
        lambda v: v == "all" or (is_whole(v) and v >= 1), "all or a whole number of blocks >= 1", "all (or 2)"
    ),
    "strategy.phases": Rule(
        _non_empty_phases, "a non-empty list of phases", "[{epochs: 2, train: [head]}, {train: all}]"
    ).or_null(),
    # optimizer
    "optimizer.name": TEXT,
    "optimizer.lr": positive(10.0, "0.001"),
    "optimizer.weight_decay": number(0, 10, example="0.01"),
    "optimizer.betas": numbers(2, 0, 1, open_high=True, example="[0.9,0.999]"),
    "optimizer.momentum": number(0, 1, open_high=True, example="0.9"),
    "optimizer.nesterov": BOOLEAN,
    "optimizer.eps": positive(1.0, "1e-8"),
    "optimizer.decay_norm_and_bias": BOOLEAN,
    # scheduler
    "scheduler.name": TEXT,
    "scheduler.warmup_epochs": number(0, example="1"),
    "scheduler.min_lr_ratio": number(0, 1, example="0.01"),
    # trainer: the Lightning Trainer's arguments ftcli's presets define
    # (trainer.precision=auto and trainer.accelerator's GPU check: ftcli.device)
    "trainer.accelerator": choice(*ACCELERATORS),
    # Lightning's pass-through arguments: checked here so a bad value never reaches the Trainer
    "trainer.devices": Rule(
        _devices_ok,
        "auto, -1 (all), a number of devices >= 1 or a list of distinct device indices >= 0",
        "1 (or [0,1], auto, -1)",
    ),
    "trainer.strategy": Rule(
        lambda v: v in LIGHTNING_STRATEGIES, f"one of {', '.join(LIGHTNING_STRATEGIES)}", "ddp"
    ),
    "trainer.precision": Rule(
        lambda v: (isinstance(v, str) and v in LIGHTNING_PRECISIONS) or (is_whole(v) and v in PRECISION_INTS),
        f"one of {', '.join(LIGHTNING_PRECISIONS)}",
        "bf16-mixed",
    ).or_null(),
    "trainer.max_time": Rule(
        _max_time_ok,
        f"a time DD:HH:MM:SS or a mapping of {', '.join(TIMEDELTA_KEYS)} (numbers >= 0)",
        "00:12:00:00 (or {hours: 12})",
    ).or_null(),
    "trainer.gradient_clip_algorithm": Rule(
        lambda v: isinstance(v, str) and v.lower() in GRADIENT_CLIP_ALGORITHMS,
        "norm or value, or null (norm)",
        "norm",
        nullable=True,
    ),
    "trainer.max_epochs": whole(-1, example="10 (-1: no limit)").or_null(),
    "trainer.min_epochs": whole(0, example="1").or_null(),
    "trainer.max_steps": whole(-1, example="1000 (-1: no limit)"),
    "trainer.log_every_n_steps": whole(1, example="10"),
    "trainer.accumulate_grad_batches": whole(1, example="4"),
    "trainer.num_sanity_val_steps": whole(-1, example="0"),
    "trainer.check_val_every_n_epoch": whole(1, example="1").or_null(),
    "trainer.num_nodes": whole(1, example="1"),
    **{f"trainer.{key}": FRACTION_OR_COUNT for key in BATCH_LIMITS},
    "trainer.gradient_clip_val": Rule(
        lambda v: is_number(v) and v >= 0, "a number >= 0, or null for no clipping", "1.0", nullable=True
    ),
    "trainer.val_check_interval": Rule(
        lambda v: (is_whole(v) and v >= 1) or is_fraction(v),
        "a fraction of an epoch or a whole number of batches",
        "0.5",
        nullable=True,
    ),
    "trainer.enable_progress_bar": BOOLEAN,
    "trainer.detect_anomaly": BOOLEAN,
    "trainer.deterministic": Rule(
        lambda v: isinstance(v, bool) or v == "warn", "true, false or warn", "false"
    ).or_null(),
    "trainer.benchmark": BOOLEAN.or_null(),
    "trainer.fast_dev_run": Rule(
        lambda v: isinstance(v, bool) or (is_whole(v) and v >= 0),
        "true, false or a number of batches",
        "false",
    ),
    # data (the keys every source shares; each source checks its own)
    "data.name": TEXT,
    "data.image_size": whole(1, MAX_IMAGE_SIZE, "224").or_null(),
    "data.mean": numbers(3, 0, 1, open_high=False, example="[0.485,0.456,0.406]").or_null(),
    "data.std": Rule(
        lambda v: isinstance(v, list) and len(v) == 3 and all(is_number(x) and 0 < x <= 10 for x in v),
        "a list of 3 finite numbers above 0",
        "[0.229,0.224,0.225]",
    ).or_null(),
    "data.batch_size": whole(1, 65536, "32"),
    "data.on_bad_image": choice("error", "skip"),
    "data.on_leak": choice("warn", "error", "drop"),
    "data.cache_images": AUTO_SWITCH,
    "data.image_cache_mb": number(0, example="1024"),
    "data.augment_on_device": AUTO_SWITCH,
    "data.cache_features": AUTO_SWITCH,
    "data.feature_cache_dir": PATH.or_null(),
    "data.root": PATH.or_null(),
    "data.manifest": PATH.or_null(),
    # text data: tokens kept per text (longer ones are truncated and counted), the columns of a text file
    "data.max_length": whole(2, 1_000_000, "128"),
    "data.text_column": TEXT,
    "data.label_column": TEXT,
    # data=hf_datasets: what load_dataset reads (data.files and data.splits: checked by the source)
    "data.dataset": TEXT,
    "data.config": TEXT.or_null(),
    "data.cache_dir": PATH.or_null(),
    "data.augment.random_resized_crop": BOOLEAN,
    "data.augment.hflip": BOOLEAN,
    "data.augment.rotate": number(0, 180, example="15"),
    "data.augment.color_jitter": number(0, 1, example="0.2"),
    "data.augment.scale": Rule(
        lambda v: (
            isinstance(v, list)
            and len(v) == 2
            and all(is_number(x) and 0 < x <= 1 for x in v)
            and v[0] <= v[1]
        ),
        "[low, high] with 0 < low <= high <= 1",
        "[0.35,1.0]",
    ),
    "data.augment.policy": choice("randaugment", "trivialaugment", "autoaugment").or_null(),
}


def check_config(cfg: Any) -> None:
    """ConfigError for the first value of the composed config that breaks the schema (in RULES order),
    then the rules that tie keys together."""
    plain = _plain(cfg)
    for key, rule in RULES.items():
        found, value = lookup(plain, key)
        if not found or value == "???" or (value is None and rule.nullable):
            continue
        if not rule.test(value):
            raise invalid(key, value, rule.expected, rule.example)
    _cross_field(plain)


def checked(section: Mapping[str, Any], key: str, default: Any) -> Any:
    """The value of ``key`` (dotted, as in RULES) read from its own block, checked by its rule: for code
    that receives one block of the config (``strategy`` for the freeze strategies), so a key keeps one
    rule wherever it is read."""
    return check_value(section.get(key.rsplit(".", 1)[-1], default), key)


def check_value(value: Any, rule_key: str, shown: str | None = None) -> Any:
    """``value`` checked by the rule of ``rule_key``; ``shown`` names it when it is another key that
    follows the same rule (an entry of ``strategy.phases``). Returns the value."""
    rule = RULES[rule_key]
    if not (value is None and rule.nullable) and not rule.test(value):
        raise invalid(shown or rule_key, value, rule.expected, rule.example)
    return value


def invalid(key: str, value: Any, expected: str, example: str) -> ConfigError:
    """The message of every schema error: the key, the value as given, what is allowed."""
    return ConfigError(
        f"{key}={_shown(value)} is not valid: it must be {expected}.", f"For example {key}={example}."
    )


def lookup(config: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    """(found, plain value) of a dotted key; a missing (``???``) value or an interpolation that cannot be
    resolved counts as not found: whoever needs the value names it (``hydra_errors.missing_value``)."""
    if isinstance(config, DictConfig):
        from omegaconf.errors import OmegaConfBaseException

        try:
            value = OmegaConf.select(config, dotted, default=_ABSENT, throw_on_missing=False)
            if OmegaConf.is_config(value):
                value = OmegaConf.to_container(value, resolve=True)
        except OmegaConfBaseException:
            return False, None
        return (False, None) if value is _ABSENT else (True, value)
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _cross_field(plain: Mapping[str, Any]) -> None:
    found_size, size = lookup(plain, "data.image_size")
    found_batch, batch = lookup(plain, "data.batch_size")
    if found_size and found_batch and is_whole(size) and is_whole(batch):
        needed = batch * 3 * size * size * 4
        if needed > MAX_INPUT_BATCH_BYTES:
            raise ConfigError(
                f"data.batch_size={batch} with data.image_size={size}: one input batch alone would take "
                f"{needed / 2**30:.0f} GiB.",
                "Lower data.batch_size or data.image_size.",
            )
    found, hidden = lookup(plain, "recipe.hidden")
    if found and _hidden_ok(hidden) and hidden:
        widths = [FEATURES_ESTIMATE, *hidden]
        parameters = sum(a * b for a, b in pairwise(widths))
        if parameters > MAX_HEAD_PARAMETERS:
            raise ConfigError(
                f"recipe.hidden={hidden}: a head of about {parameters / 1e6:,.0f}M parameters "
                f"(~{parameters * 4 / 2**30:.1f} GiB) is over the limit of {MAX_HEAD_PARAMETERS / 1e6:.0f}M.",
                "Use narrower layers, e.g. recipe.hidden=[512].",
            )


_ABSENT = object()


def _plain(cfg: Any) -> Mapping[str, Any]:
    """The config as :func:`lookup` reads it: a DictConfig stays one (resolved key by key)."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"The config must be a mapping, got {type(cfg).__name__}.")
    return cfg


def _shown(value: Any, limit: int = 80) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, str):
        text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
