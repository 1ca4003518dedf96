"""``mixup.*`` checked: MixUp/CutMix strengths and where they apply (``ftcli.training.mixing`` mixes
the batches). ``applies`` takes a phase's freeze plan (anything with ``head_only``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ftcli.errors import ConfigError, reject_unknown_keys

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

    def applies(self, plan: Any) -> bool:
        """Whether batches are mixed in this phase (never in a head-only phase unless asked)."""
        return self.enabled and (self.during_head_only_phases or not plan.head_only)

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


def mix_options(cfg: Mapping[str, Any] | None) -> MixOptions:
    """The ``mixup`` config checked; a ConfigError names the bad key."""
    cfg = dict(cfg or {})
    reject_unknown_keys(cfg, KEYS, "mixup", kind="mixup")
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
