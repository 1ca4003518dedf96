"""The advisor for a composed config: measure, decide, and (``strategy=auto``) rewrite the config.

``advise(cfg)`` builds what ``ftcli train`` would start from (the same model, weights, data and
seed), measures it (``measure``) and applies the rule (``rule``). ``resolve_auto`` is what
``strategy=auto`` does before the run is planned: the chosen strategy's own YAML replaces
``auto``, its settings on top, so everything after it sees an ordinary config. ``with_choice`` does
that for any candidate of the shortlist (``shortlist.py``), which the race (``race.py``) trains.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from ftcli.advice.measure import Measurements, measure, probe_config
from ftcli.advice.rule import Decision, decide
from ftcli.advice.shortlist import DEFAULT_CANDIDATES, Candidate, shortlist
from ftcli.atomic_files import atomic_write_text
from ftcli.config.schema import check_config
from ftcli.device import training_device
from ftcli.features.cache import cache_dir


@dataclass
class Advice:
    """The measurements, the decision drawn from them, the shortlist a race would train, and how long
    it took."""

    measurements: Measurements
    decision: Decision
    seconds: float
    shortlist: list[Candidate]

    def to_dict(self, command: str | None = None) -> dict[str, Any]:
        """What ``advice.json`` holds (with the train command when there is one to print)."""
        return {
            "decision": self.decision.to_dict(),
            "shortlist": [candidate.to_dict() for candidate in self.shortlist],
            "measurements": self.measurements.to_dict(),
            "seconds": self.seconds,
            "command": command,
        }


def advise(cfg: DictConfig) -> Advice:
    """Measure what ``cfg`` would train from, on its training split, and decide a strategy."""
    from ftcli.pipeline import plan_run

    check_config(cfg)  # the typed schema, before the advisor reads any value
    started = time.perf_counter()
    # The run that follows (strategy=auto) must start from the same random state as the same run
    # with the picked strategy written out: the advisor draws from a forked generator.
    gpus = list(range(torch.cuda.device_count()))
    with torch.random.fork_rng(devices=gpus):
        ours = plan_run(probe_config(cfg, pretrained=True))
        torch.manual_seed(int(cfg.seed))  # the random-init baseline is the same network every time
        theirs = plan_run(probe_config(cfg, pretrained=False))
        device = training_device(cfg.trainer)
        measured = measure(
            cfg, ours.net, theirs.net, ours.datamodule, ours.weights_label, cache_dir(cfg.data), device
        )
    decision = decide(measured)
    size = int((cfg.get("auto") or {}).get("candidates", DEFAULT_CANDIDATES))
    return Advice(measured, decision, time.perf_counter() - started, shortlist(decision, size))


LoadOption = Callable[[str, str], DictConfig]


class Choice(Protocol):
    """A strategy with its settings and an optional recipe: the rule's ``Decision`` or a ``Candidate``."""

    strategy: str
    strategy_settings: dict[str, Any]
    recipe: str | None
    recipe_settings: dict[str, Any]


def with_choice(cfg: DictConfig, choice: Choice, load_option: LoadOption) -> DictConfig:
    """``cfg`` with ``strategy=auto`` replaced by ``choice``: its strategy's own YAML, the shared keys
    given for ``auto`` (bn, backbone_lr_mult, ...), then its settings; its recipe when it names one.
    ``load_option(group, name)`` gives a config group option as composed from its YAML (the commands
    know where configs live)."""
    resolved = cfg.copy()
    with open_dict(resolved):
        strategy = load_option("strategy", choice.strategy)
        keep = {k: v for k, v in cfg.strategy.items() if k not in ("name", "pretrained")}
        resolved.strategy = OmegaConf.merge(strategy, keep, choice.strategy_settings)
        if choice.recipe is not None:
            resolved.recipe = OmegaConf.merge(load_option("recipe", choice.recipe), choice.recipe_settings)
    return resolved


def resolve_auto(cfg: DictConfig, load_option: LoadOption) -> tuple[DictConfig, Advice]:
    """``cfg`` with ``strategy=auto`` replaced by the rule's pick (``auto.mode=rule``; the race starts
    from the same advice)."""
    advice = advise(cfg)
    return with_choice(cfg, advice.decision, load_option), advice


def train_command(overrides: list[str], decision: Decision) -> str:
    """The ``ftcli train`` command line that runs the decision: the user's overrides with the
    strategy (and, when the decision changes it, the recipe) replaced."""
    import shlex

    replaced = ("strategy",) + (("recipe",) if decision.recipe is not None else ())

    def kept(item: str) -> bool:
        key = item.split("=", 1)[0].lstrip("+~")
        return key.split(".", 1)[0] not in replaced

    parts = [item for item in overrides if kept(item)] + decision.overrides
    return "ftcli train " + " ".join(shlex.quote(part) for part in parts)


def write_advice(path: Path, record: dict[str, Any]) -> Path:
    """``advice.json``: an :meth:`Advice.to_dict` record, written atomically."""
    return atomic_write_text(path, json.dumps(record, indent=2))
