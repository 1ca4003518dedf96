"""``lora``: every pretrained weight frozen, low-rank adapters beside chosen layers and the new head train
(Hu et al. 2021; DoRA with ``strategy.use_dora=true``). ``strategy.probe_epochs`` > 0 trains the head
alone first (a linear probe), then the adapters join. The adapters themselves are inserted by
``ftcli.finetune.adapters`` before the phases resolve."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftcli.config.schema import checked
from ftcli.finetune.strategies import STRATEGIES, PhaseSpec


@STRATEGIES.register("lora")
def _lora(backbone: list[str], cfg: Mapping[str, Any]) -> list[PhaseSpec]:
    probe = checked(cfg, "strategy.probe_epochs", 0)
    method = "DoRA" if cfg.get("use_dora") else "LoRA"
    adapt = PhaseSpec(None, frozenset(), label=f"{method} adapters + head", adapters=True)
    return [PhaseSpec(probe, frozenset(), label="linear probe"), adapt] if probe else [adapt]
