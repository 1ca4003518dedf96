"""What an adapter run (``strategy=lora``) keeps in its checkpoints: the adapter options read from the
strategy config, the tensors that can change, and the fingerprint of the frozen base left out.

A LoRA checkpoint holds the adapters, the head and the buffers, not the pretrained weights: it is
typically over 10x smaller than a ``full`` one. The base is rebuilt from its source when the
checkpoint is read (``eval``, ``predict``, ``export``, chaining, resume) and must have the fingerprint
stored here (``ftcli.model.adapters.check_base``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ftcli.config.schema import checked
from ftcli.errors import ConfigError
from ftcli.finetune.freeze_plan import Schedule
from ftcli.model.adapters import (
    AUTO,
    AUTO_TARGETS,
    AdapterOptions,
    adapter_parameters,
    adapters_of,
    base_fingerprint,
    kept_names,
)
from ftcli.model.blocks import BlockNet


def wanted(strategy: Mapping[str, Any]) -> bool:
    """Whether a strategy config asks for adapters: it sets their rank (``strategy.r``, as ``lora`` does)."""
    return strategy.get("r") is not None


def adapter_options(strategy: Mapping[str, Any]) -> AdapterOptions:
    """The adapter keys of a strategy (``strategy.r``, ``alpha``, ``dropout``, ``targets``, ``blocks``,
    ``use_dora``, ``max_share``), checked (``r`` and ``alpha`` may stay ``auto`` until the adapters are
    inserted); ``strategy.targets`` and ``strategy.blocks`` are checked against the network
    when the adapters are inserted."""
    targets = strategy.get("targets", AUTO_TARGETS)
    if isinstance(targets, str):
        _check_pattern(targets)
    elif isinstance(targets, Iterable) and targets and all(isinstance(t, str) and t for t in targets):
        targets = tuple(str(t) for t in targets)
    else:
        raise ConfigError(
            f"strategy.targets={targets!r} is not valid: it must be auto, a list of module names "
            "or a regular expression.",
            "For example strategy.targets=auto, strategy.targets=[q_proj,v_proj] or "
            "strategy.targets='attn'; `ftcli inspect strategy=lora` lists what auto picks.",
        )
    r = checked(strategy, "strategy.r", AUTO)
    alpha = checked(strategy, "strategy.alpha", AUTO)
    return AdapterOptions(
        r=r if r == AUTO else int(r),
        alpha=alpha if alpha == AUTO else float(alpha),
        dropout=float(checked(strategy, "strategy.dropout", 0.05)),
        targets=targets,
        blocks=checked(strategy, "strategy.blocks", "all"),
        use_dora=bool(checked(strategy, "strategy.use_dora", False)),
        max_share=float(checked(strategy, "strategy.max_share", 0.02)),
    )


def saved_names(net: BlockNet, schedule: Schedule) -> set[str]:
    """The state_dict names a checkpoint of an adapted network stores: every adapter tensor, every buffer
    (BatchNorm statistics), and every tensor of the head and of the blocks a phase trains whole (or
    whose BatchNorm affine parameters train)."""
    changing = {b.name for phase in schedule.phases for b in phase.blocks if b.trainable or b.bn == "affine"}
    return kept_names(net, changing)


@dataclass
class AdapterRecord:
    """The tensors a checkpoint of an adapter run keeps, and what it records about the adapters."""

    net: BlockNet
    saved: set[str]
    _fingerprint: str | None = None

    @classmethod
    def of(cls, net: BlockNet, schedule: Schedule) -> AdapterRecord | None:
        """The record of an adapted network; ``None`` for any other (its checkpoints hold every tensor)."""
        if adapters_of(net) is None:
            return None
        return cls(net, saved_names(net, schedule))

    @property
    def fingerprint(self) -> str:
        """The base's fingerprint, computed once, at the first save (the base never trains)."""
        if self._fingerprint is None:
            self._fingerprint = base_fingerprint(self.net, self.saved)
        return self._fingerprint

    def keep(self, state: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        """``state`` without the frozen base tensors (names under ``prefix`` are the network's)."""
        return {
            key: value
            for key, value in state.items()
            if not key.startswith(prefix) or key[len(prefix) :] in self.saved
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the checkpoint's ``ftcli.adapters`` (loads with ``weights_only``)."""
        adapters = adapters_of(self.net)
        if adapters is None:
            raise ValueError("the network holds no adapters")
        return {
            "method": adapters.options.method,
            "options": adapters.options.to_dict(),
            "targets": {block: list(paths) for block, paths in adapters.targets.items() if paths},
            "adapter_parameters": adapter_parameters(self.net),
            "base_fingerprint": self.fingerprint,
            "saved_tensors": len(self.saved),
        }


def _check_pattern(targets: str) -> None:
    if targets == AUTO_TARGETS:
        return
    try:
        re.compile(targets)
    except re.error as err:
        raise ConfigError(
            f"strategy.targets={targets!r} is not a valid regular expression ({err}).",
            "Give module names as a list (strategy.targets=[q_proj,v_proj]) or a valid expression.",
        ) from err
