"""``lp_ft``: a linear probe on frozen features, then every block at a lower rate (Kumar et al. 2022)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftcli.finetune.strategies import STRATEGIES, PhaseSpec, positive_float, positive_int


@STRATEGIES.register("lp_ft")
def _lp_ft(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    """LP-FT (Kumar et al., ICLR 2022): a linear probe on frozen features, then everything, slower."""
    probe = positive_int(cfg.get("probe_epochs", 3), "strategy.probe_epochs")
    probe_mult = positive_float(cfg.get("probe_lr_mult", 1.0), "strategy.probe_lr_mult")
    ft_mult = positive_float(cfg.get("ft_lr_mult", 0.1), "strategy.ft_lr_mult")
    return [
        PhaseSpec(probe, frozenset(), lr_mult=probe_mult, label="linear probe"),
        PhaseSpec(None, frozenset(backbone), lr_mult=ft_mult, label="fine-tune all"),
    ]
