"""``strategy=auto``'s race (``auto.mode=race``): successive halving of the shortlist on the validation split.

Every candidate of the shortlist (``shortlist.py``) trains its first epochs with the run's own
schedule (``trainer.max_epochs``, so its learning-rate curve and phases are those of the real run),
is scored by its best validation accuracy so far, and the better half continues from its
``last.ckpt`` (``resume=``) for twice as many epochs, until one is left. The test split is never
used (``pipeline.run(test=False)``). Each rung of each candidate is an ordinary run folder under
``<run dir>/race/``, kept as the race's evidence.

Rungs end at epochs ``r, 2r, 4r, ...`` (capped at ``trainer.max_epochs``); ``r`` is the largest
whole number whose race fits ``auto.budget``: the training epochs of all candidates together
(default ``trainer.max_epochs``: the race costs at most one run, auto at most two). When the budget
cannot give every candidate one epoch a rung, the race takes fewer of the shortlist. A tie goes
to the earlier candidate (the rule's pick first). Each candidate's run is stopped at the end of its
rung by the search's pruning callback (``training/callbacks/trial_pruning.py``), which also records
its validation accuracy per epoch. Optuna's ``SuccessiveHalvingPruner`` is not used: it is
asynchronous (each trial judged on arrival against those before it), so the winner would depend on
the order the candidates ran; a race of a few known candidates waits for each rung and ranks them all.

The winner is then trained from scratch for the full schedule, in the run's own folder (the caller):
that run is exactly ``ftcli train <the winner's overrides>``, from the same seed, so ``strategy=auto``
gives the same model as the written-out command, one folder holds its whole curve and checkpoints, and
no resumed state of a shortened race run carries into it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict
from rich.text import Text

from ftcli.advice.shortlist import DEFAULT_CANDIDATES, Candidate
from ftcli.errors import ConfigError
from ftcli.ui import console

METRIC = "val/acc"
RACE_FOLDER = "race"
STOP_LINE = "race: end of the rung after epoch {epoch} ({metric} {value:.4f})"


@dataclass(frozen=True)
class RacePlan:
    """How many candidates race each rung, the epoch each rung ends at, and the budget it fits."""

    candidates: int
    max_epochs: int
    milestones: list[int]
    survivors: list[int]
    budget: int
    budget_from: str  # auto.budget | trainer.max_epochs
    shortlisted: int  # the shortlist's length: more than ``candidates`` when the budget takes fewer

    @property
    def epochs(self) -> int:
        """The training epochs of the whole race, all candidates together."""
        return _cost(self.survivors, self.milestones)

    @property
    def cost_in_runs(self) -> float:
        """What auto costs in epochs of one run: the race plus the winner's full run."""
        return (self.epochs + self.max_epochs) / self.max_epochs

    def line(self) -> str:
        rungs = ", ".join(f"{n} to epoch {m}" for n, m in zip(self.survivors, self.milestones, strict=True))
        which = f"{self.candidates} candidates"
        if self.candidates < self.shortlisted:
            which += f" (the first of {self.shortlisted} shortlisted: what the budget allows)"
        return (
            f"race: {which}, successive halving on the validation split ({rungs}); "
            f"{self.epochs} epochs of {self.budget} (budget: {self.budget_from}), then the winner trains "
            f"{self.max_epochs} from scratch: about {self.cost_in_runs:.1f}x one run"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": self.candidates,
            "shortlisted": self.shortlisted,
            "max_epochs": self.max_epochs,
            "milestones": self.milestones,
            "survivors": self.survivors,
            "budget": self.budget,
            "budget_from": self.budget_from,
            "epochs": self.epochs,
            "cost_in_runs": self.cost_in_runs,
        }


def _cost(survivors: list[int], milestones: list[int]) -> int:
    starts = [0, *milestones[:-1]]
    return sum(n * (end - start) for n, start, end in zip(survivors, starts, milestones, strict=True))


def _halving(candidates: int) -> list[int]:
    """How many race each rung: all, then the better half (rounded up), down to two."""
    survivors = [candidates]
    while survivors[-1] > 2:
        survivors.append(math.ceil(survivors[-1] / 2))
    return survivors


def plan_race(shortlisted: int, max_epochs: Any, budget: int | None) -> RacePlan:
    """The rungs of the race that fits ``budget`` (None: ``max_epochs``): as many of the ``shortlisted``
    candidates as get one epoch a rung (the first ones: the rule's pick first), each rung as long as
    the budget allows. A ConfigError when not even two candidates fit."""
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
        raise ConfigError(
            f"auto.mode=race needs a fixed schedule, but trainer.max_epochs={max_epochs}.",
            "Set trainer.max_epochs (e.g. trainer.max_epochs=15), or auto.mode=rule.",
        )
    limit = max_epochs if budget is None else budget
    source = "trainer.max_epochs" if budget is None else "auto.budget"
    for count in range(shortlisted, 1, -1):
        survivors = _halving(count)
        for first in range(max_epochs, 0, -1):
            milestones = [min(max_epochs, first * 2**k) for k in range(len(survivors))]
            if _cost(survivors, milestones) <= limit:
                return RacePlan(count, max_epochs, milestones, survivors, limit, source, shortlisted)
    shown = f"auto.budget={budget}" if budget is not None else f"trainer.max_epochs={max_epochs}"
    raise ConfigError(
        f"{shown} leaves {limit} epoch(s) for the race of strategy=auto: two candidates need at least 2.",
        "Set auto.budget=2 or more (the race's epochs, all candidates together), or auto.mode=rule.",
    )


def races(cfg: DictConfig) -> bool:
    """Whether ``strategy=auto`` races (``auto.mode=race``, the default) rather than train the rule's pick."""
    return str((cfg.get("auto") or {}).get("mode", "race")) == "race"


def plan_for(cfg: DictConfig, shortlisted: int | None = None) -> RacePlan:
    """The race of ``cfg`` (``auto.budget``, ``trainer.max_epochs``) for ``shortlisted`` candidates
    (None: ``auto.candidates``, before the advisor has made the shortlist)."""
    auto = cfg.get("auto") or {}
    count = shortlisted if shortlisted is not None else int(auto.get("candidates", DEFAULT_CANDIDATES))
    return plan_race(count, cfg.trainer.get("max_epochs"), auto.get("budget"))


class RungEnd:
    """A candidate's trial in the race: it records each epoch and stops the run when its rung ends."""

    def __init__(self, milestone: int) -> None:
        self.milestone = milestone
        self.last_step = -1

    def report(self, value: float, step: int) -> None:
        self.last_step = step

    def should_prune(self) -> bool:
        return self.last_step + 1 >= self.milestone


@dataclass
class Entrant:
    """A candidate in the race: its validation accuracy per epoch, its score at each rung it ran, the
    rung it went out at (None: still in), the folders of its rungs and its latest ``last.ckpt``."""

    candidate: Candidate
    val_acc: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    out_after: int | None = None
    run_dirs: list[str] = field(default_factory=list)
    last_checkpoint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.candidate.to_dict(),
            "val_acc": self.val_acc,
            "scores": self.scores,
            "out_after_rung": self.out_after,
            "run_dirs": self.run_dirs,
        }


@dataclass
class Race:
    """What the race did: its plan, every entrant, the winner, the epochs it trained and how long it took."""

    plan: RacePlan
    entrants: list[Entrant]
    winner: int
    epochs: int
    seconds: float

    @property
    def champion(self) -> Candidate:
        return self.entrants[self.winner].candidate

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_dict(),
            "entrants": [entrant.to_dict() for entrant in self.entrants],
            "winner": self.winner,
            "winner_overrides": self.champion.overrides,
            "epochs": self.epochs,
            "cost_in_runs": (self.epochs + self.plan.max_epochs) / self.plan.max_epochs,
            "seconds": self.seconds,
            "metric": METRIC,
            "final_run": "the winner retrained from scratch for trainer.max_epochs (docs/advise.md)",
        }


Configure = Callable[[Candidate], DictConfig]


def run_race(plan: RacePlan, candidates: list[Candidate], configure: Configure, run_dir: Path) -> Race:
    """Race ``candidates`` by ``plan``; ``configure(candidate)`` is the run's config with the candidate's
    strategy (and recipe) in place of ``auto``. Each rung of each candidate trains in
    ``<run_dir>/race/<index>-<strategy>/rung-<k>``."""
    from ftcli.pipeline import run
    from ftcli.training.callbacks.trial_pruning import trial_scope

    started = time.perf_counter()
    entrants = [Entrant(candidate) for candidate in candidates]
    alive = list(range(len(entrants)))
    epochs = 0
    previous = 0
    for rung, milestone in enumerate(plan.milestones):
        for index in alive:
            entrant = entrants[index]
            if milestone > previous:
                name = f"{index + 1}-{entrant.candidate.strategy}"
                folder = run_dir / RACE_FOLDER / name / f"rung-{rung + 1}"
                folder.mkdir(parents=True, exist_ok=True)
                console.show(
                    Text(
                        f"race: rung {rung + 1}/{len(plan.milestones)}, {entrant.candidate.label}: "
                        f"epochs {previous + 1}-{milestone}"
                    )
                )
                cfg = _rung_config(configure(entrant.candidate), entrant.last_checkpoint)
                with trial_scope(
                    RungEnd(milestone), folder, METRIC, True, every_phase=True, stop_line=STOP_LINE
                ) as outcome:
                    result = run(cfg, folder, overrides=entrant.candidate.overrides, test=False)
                if not outcome.values and not entrant.val_acc:
                    raise ConfigError(
                        "auto.mode=race scores the candidates on the validation split; this run has none.",
                        "Keep a validation split (e.g. data.val_fraction=0.1), or use auto.mode=rule.",
                    )
                entrant.val_acc += [outcome.values[epoch] for epoch in sorted(outcome.values)]
                entrant.run_dirs.append(str(folder))
                entrant.last_checkpoint = result.summary.last_checkpoint
                epochs += len(outcome.values)
            entrant.scores.append(max((v for v in entrant.val_acc if not math.isnan(v)), default=0.0))
        keep = plan.survivors[rung + 1] if rung + 1 < len(plan.survivors) else 1
        ranked = sorted(alive, key=lambda i: (-entrants[i].scores[-1], i))
        for index in ranked[keep:]:
            entrants[index].out_after = rung + 1
        alive = sorted(ranked[:keep])
        previous = milestone
    return Race(plan, entrants, alive[0], epochs, time.perf_counter() - started)


def _rung_config(cfg: DictConfig, resume_from: str | None) -> DictConfig:
    """A candidate's config for one rung: continued from its last rung, its config tree not printed."""
    rung = cfg.copy()
    with open_dict(rung):
        rung.resume = resume_from
        rung.print_config = False
    return rung
