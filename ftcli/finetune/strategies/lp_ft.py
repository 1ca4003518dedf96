"""``lp_ft``: a linear probe on frozen features, then every block at a lower rate (Kumar et al. 2022)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftcli.config.schema import checked
from ftcli.finetune.strategies import STRATEGIES, PhaseSpec


@STRATEGIES.register("lp_ft")
def _lp_ft(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    """LP-FT (Kumar et al., ICLR 2022): a linear probe on frozen features, then everything, slower."""
    probe = checked(cfg, "strategy.probe_epochs", 3)
    probe_mult = float(checked(cfg, "strategy.probe_lr_mult", 1.0))
    ft_mult = float(checked(cfg, "strategy.ft_lr_mult", 0.1))
    fine_tune = PhaseSpec(None, frozenset(backbone), lr_mult=ft_mult, label="fine-tune all")
    if not probe:  # probe_epochs=0: no probe, the fine-tune phase alone
        return [fine_tune]
    return [PhaseSpec(probe, frozenset(), lr_mult=probe_mult, label="linear probe"), fine_tune]
