"""``RunOptions``: every option block of a run, checked once and frozen.

The pipeline (``ftcli.pipeline.plan_run``) checks the composed config against the schema first, then
builds these options once per run, after the data says how many classes
there are (class weights need one per class) and the strategy says how many phases (``lrfind.phase``).
Everything downstream (the Lightning module, the Trainer's callbacks, ``inspect``'s lines, ``lrfind``)
takes these typed options, never the raw config. Which module checks which key is listed in
docs/ARCHITECTURE.md ("Where each key is checked").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ftcli.config.early_stopping import EarlyStoppingOptions, early_stopping_options
from ftcli.config.ema import EmaOptions, ema_options
from ftcli.config.loss import LossOptions, loss_options
from ftcli.config.lrfind import RangeOptions, range_options
from ftcli.config.mixup import MixOptions, mix_options


@dataclass(frozen=True)
class TrainingOptions:
    """What shapes the training steps: the loss, batch mixing and the average of the weights."""

    loss: LossOptions = field(default_factory=LossOptions)
    mixup: MixOptions = field(default_factory=MixOptions)
    ema: EmaOptions = field(default_factory=EmaOptions)

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any], num_classes: int) -> TrainingOptions:
        """The ``loss``, ``mixup`` and ``ema`` blocks checked (absent blocks: their defaults)."""
        return cls(
            loss=loss_options(cfg.get("loss"), num_classes),
            mixup=mix_options(cfg.get("mixup")),
            ema=ema_options(cfg.get("ema")),
        )


@dataclass(frozen=True)
class RunOptions:
    """The typed options of one run, beside the network and data the pipeline builds."""

    seed: int
    training: TrainingOptions
    early_stopping: EarlyStoppingOptions
    bn_recalibrate: bool
    compile: bool
    gradient_checkpointing: bool
    lrfind: RangeOptions | None  # only under ``ftcli lrfind`` (its config has the block)

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any], num_classes: int, phases: int) -> RunOptions:
        """Check each option block and freeze it; a ConfigError names the key. The schema
        (:func:`ftcli.config.schema.check_config`) ran first, before anything was built."""
        strategy = cfg.get("strategy") or {}
        lrfind = cfg.get("lrfind")
        return cls(
            seed=int(cfg.get("seed", 42)),
            training=TrainingOptions.from_cfg(cfg, num_classes),
            early_stopping=early_stopping_options(cfg.get("early_stopping")),
            # the schema checked the type; absent (a strategy file of your own) means off
            bn_recalibrate=bool(strategy.get("bn_recalibrate", False)),
            compile=bool(cfg.get("compile", False)),
            gradient_checkpointing=bool(cfg.get("gradient_checkpointing", False)),
            lrfind=range_options(lrfind, phases) if lrfind is not None else None,
        )
