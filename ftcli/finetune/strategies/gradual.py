"""``gradual``: unfreeze one more block from the top every ``strategy.every`` epochs (ULMFiT-style)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftcli.config.schema import checked
from ftcli.finetune.strategies import STRATEGIES, PhaseSpec


@STRATEGIES.register("gradual")
def _gradual(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    """ULMFiT-style: head only, then one more block from the top every ``every`` epochs."""
    every = checked(cfg, "strategy.every", 1)
    phases = []
    for k in range(len(backbone) + 1):
        unfrozen = backbone[len(backbone) - k :] if k else []
        last = k == len(backbone)
        label = "head only" if k == 0 else ("all" if last else f"+ {unfrozen[0]}")
        phases.append(PhaseSpec(None if last else every, frozenset(unfrozen), label=label))
    return phases
