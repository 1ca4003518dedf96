"""MixUp and CutMix (``mixup.*``): torchvision.transforms.v2 on each training batch, soft targets.

A batch of images and integer labels becomes a batch of mixed images and soft targets (one row per
image, summing to 1); the training loss (training/loss.py) takes the soft targets as they are, still
class-weighted and label-smoothed as configured. Validation and test batches are never mixed.

Off in phases that train only the head (a linear probe on features of mixed images is not what users
expect of a probe) unless ``mixup.during_head_only_phases=true``. Mixing in a head-only phase switches
the feature cache off (features/cache.py), since the frozen blocks then see new inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ftcli.errors import ConfigError
from ftcli.finetune.freeze_plan import FreezePlan, Schedule
from ftcli.model.blocks import HEAD

KEYS = ("mixup_alpha", "cutmix_alpha", "prob", "switch_prob", "during_head_only_phases")


@dataclass(frozen=True)
class MixOptions:
    """``mixup.*`` checked. An alpha of 0 switches that method off; both 0: no mixing at all."""

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    prob: float = 1.0  # the share of batches mixed
    switch_prob: float = 0.5  # with both on: the share of mixed batches that get CutMix
    during_head_only_phases: bool = False

    @property
    def enabled(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    def applies(self, plan: FreezePlan) -> bool:
        """Whether batches are mixed in this phase (never in a head-only phase unless asked)."""
        return self.enabled and (self.during_head_only_phases or not head_only(plan))

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in KEYS}

    def describe(self) -> str:
        """``mixup 0.2 / cutmix 1 (p 1, switch 0.5)``, for the options line."""
        parts = []
        if self.mixup_alpha > 0:
            parts.append(f"mixup {self.mixup_alpha:g}")
        if self.cutmix_alpha > 0:
            parts.append(f"cutmix {self.cutmix_alpha:g}")
        switch = f", switch {self.switch_prob:g}" if len(parts) == 2 else ""
        where = "" if self.during_head_only_phases else ", off in head-only phases"
        return f"{' / '.join(parts)} (p {self.prob:g}{switch}{where})"


def head_only(plan: FreezePlan) -> bool:
    """A probe phase: only the head trains."""
    return plan.trainable_blocks == [HEAD]


def mix_options(cfg: Mapping[str, Any] | None) -> MixOptions:
    """The ``mixup`` config checked; a ConfigError names the bad key."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"Unknown mixup key(s): {', '.join(f'mixup.{k}' for k in unknown)}.",
            f"Valid keys: {', '.join(f'mixup.{k}' for k in KEYS)}",
        )
    values = {}
    for key, low, high in (
        ("mixup_alpha", 0.0, None),
        ("cutmix_alpha", 0.0, None),
        ("prob", 0.0, 1.0),
        ("switch_prob", 0.0, 1.0),
    ):
        value = cfg.get(key, getattr(MixOptions, key))
        bad = isinstance(value, bool) or not isinstance(value, (int, float))
        if bad or value < low or (high is not None and value > high):
            span = f"a number >= {low:g} (0: off)" if high is None else f"a number from {low:g} to {high:g}"
            raise ConfigError(f"mixup.{key}={value!r} is not valid: it must be {span}.")
        values[key] = float(value)
    during = cfg.get("during_head_only_phases", False)
    if not isinstance(during, bool):
        raise ConfigError(f"mixup.during_head_only_phases={during!r} must be true or false.")
    return MixOptions(**values, during_head_only_phases=during)


def mixes_in_cached_phase(options: MixOptions, schedule: Schedule) -> bool:
    """Whether mixing applies to a leading head-only phase (the kind the feature cache serves)."""
    return schedule.first.trainable_blocks == [HEAD] and options.applies(schedule.first)


def batch_mixer(
    options: MixOptions, num_classes: int
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``(images, labels) -> (images, soft targets)``: torchvision's MixUp or CutMix on the batch.

    With both on, each mixed batch gets CutMix with ``switch_prob``, else MixUp; a batch is mixed
    with ``prob``; an unmixed batch still gets its targets as one-hot rows, so the loss sees one kind.
    """
    from torchvision.transforms import v2

    methods, weights = [], []
    if options.mixup_alpha > 0:
        methods.append(v2.MixUp(alpha=options.mixup_alpha, num_classes=num_classes))
        weights.append(1.0 - options.switch_prob if options.cutmix_alpha > 0 else 1.0)
    if options.cutmix_alpha > 0:
        methods.append(v2.CutMix(alpha=options.cutmix_alpha, num_classes=num_classes))
        weights.append(options.switch_prob if options.mixup_alpha > 0 else 1.0)

    def mix(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not methods:
            raise ValueError("batch_mixer needs mixup_alpha or cutmix_alpha above 0")
        if torch.rand(()).item() >= options.prob:
            return images, torch.nn.functional.one_hot(labels, num_classes).to(images.dtype)
        index = int(torch.multinomial(torch.tensor(weights), 1).item())
        mixed, targets = methods[index](images, labels)
        return mixed, targets.to(images.dtype)

    return mix
