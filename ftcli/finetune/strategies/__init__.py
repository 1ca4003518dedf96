"""Named freeze strategies (``strategy=``): what each one trains in which phase, before it meets a network.

(Not Lightning's ``trainer.strategy``, which is how training is distributed: ``ddp``, ``auto``.)

Each module in this folder registers strategy names with ``@STRATEGIES.register(name)``; a strategy
is a function ``(backbone block names, strategy config) -> [PhaseSpec, ...]`` (the head always
trains). ``ftcli.finetune.phases`` resolves the specs against a network. A new strategy is one new
module here plus its YAML in ``configs/strategy/``; a user can also write ``phases:`` in YAML alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ftcli.errors import ConfigError
from ftcli.registry import Registry

# strategy=auto: not a member of the registry; the advisor (ftcli.advice) replaces it by the strategy it picks
AUTO = "auto"


def is_auto(cfg: Mapping[str, Any]) -> bool:
    """Whether the config asks the advisor to pick the strategy (``strategy=auto``): a plain name
    comparison, so a run that does not use the advisor never imports it (or scikit-learn)."""
    strategy = cfg.get("strategy") or {}
    return str(strategy.get("name")) == AUTO


@dataclass(frozen=True)
class PhaseSpec:
    """One phase as configured: its length, which backbone blocks train, multipliers, BN policy."""

    epochs: int | None
    train: frozenset[str]
    lr_mult: float | Mapping[str, float] = 1.0
    bn: str | None = None
    label: str = ""
    adapters: bool = False  # the adapters (strategy.r: LoRA, DoRA) train in this phase


StrategyFn = Callable[[list[str], Mapping[str, Any]], list[PhaseSpec]]
STRATEGIES: Registry[StrategyFn] = Registry("strategy", key="strategy.name", package=__name__)


def block_count(cfg: Mapping[str, Any], backbone: list[str], default: int) -> int:
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
