"""The single-phase strategies: one freeze state for the whole run (the seed's four regimes and scratch).

``feature_extraction`` trains only the new head (transfer learning); ``last_layers`` the head and
the last ``strategy.n`` blocks; ``first_layers`` everything but the first ``strategy.n`` blocks;
``full`` and ``scratch`` everything (``scratch`` starts from random weights: ``pretrained: false``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftcli.finetune.strategies import STRATEGIES, PhaseSpec, block_count


def _single(train: set[str], label: str) -> list[PhaseSpec]:
    return [PhaseSpec(None, frozenset(train), label=label)]


@STRATEGIES.register("feature_extraction")
def _feature_extraction(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    return _single(set(), "head only")


@STRATEGIES.register("last_layers")
def _last_layers(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    n = block_count(cfg, backbone, default=1)
    return _single(set(backbone[len(backbone) - n :]) if n else set(), f"head + last {n}")


@STRATEGIES.register("first_layers")
def _first_layers(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    n = block_count(cfg, backbone, default=2)
    return _single(set(backbone[n:]), f"all but first {n}")


@STRATEGIES.register("full")
@STRATEGIES.register("scratch")
def _everything(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    return _single(set(backbone), "all")
