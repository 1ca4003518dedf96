"""``gradual``: unfreeze one more block from the top every ``strategy.every`` epochs (ULMFiT-style)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftcli.finetune.strategies import STRATEGIES, PhaseSpec, positive_int


@STRATEGIES.register("gradual")
def _gradual(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    """ULMFiT-style: head only, then one more block from the top every ``every`` epochs."""
    every = positive_int(cfg.get("every", 1), "strategy.every")
    phases = []
    for k in range(len(backbone) + 1):
        unfrozen = backbone[len(backbone) - k :] if k else []
        last = k == len(backbone)
        label = "head only" if k == 0 else ("all" if last else f"+ {unfrozen[0]}")
        phases.append(PhaseSpec(None if last else every, frozenset(unfrozen), label=label))
    return phases
