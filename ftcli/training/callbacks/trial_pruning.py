"""Pruning a search trial: the run reports its validation metric to the trial every epoch, and stops
when the trial's pruner says it is losing.

ftcli's Optuna sweeper (``ftcli.hydra_hooks.optuna_sweeper``) runs each trial in its own process on
Hydra's basic launcher, so it hands the trial over here (:func:`trial_scope`, keyed by the trial's run
folder) and the pipeline asks :func:`for_run` for the callback of the run it fits. Nothing here
imports Optuna: a trial is anything with ``report(value, step)`` and ``should_prune()``.

Phases: the step reported is the 0-based epoch index, so a pruner compares trials at the same epoch
only. A trial inside a head-only phase that precedes a fine-tuning phase (lp_ft's probe, gradual's
first phase) reports nothing and is never pruned there: its accuracy would be judged against trials
already fine-tuning at that epoch (the same rule as early stopping, ``early_stopping.py``). Its first
fine-tuning epoch is the first one compared.

A race of ``strategy=auto`` (``ftcli.advice.race``) uses the same callback with ``every_phase``: its
rungs compare candidates after the same number of epochs whatever phase each is in, and its trial
stops the run at the end of the rung (with the race's line, not the search's).

Under DDP rank 0 holds the trial; the other ranks (processes Lightning starts with the environment of
rank 0, :data:`FOLLOW_ENV`) take rank 0's decision through ``strategy.broadcast``, so all stop together.
The run then ends as any stopped run does: checkpoints, ``summary.json`` (``pruned``), resumable.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import lightning as L

from ftcli.errors import ConfigError
from ftcli.training.callbacks.early_stopping import head_only_before_backbone, module_schedule

# set while a trial trains, so that the DDP ranks Lightning starts follow rank 0's decision
FOLLOW_ENV = "FTCLI_SEARCH_TRIAL"


SEARCH_STOP_LINE = (
    "search: trial pruned at epoch {epoch}: {metric} {value:.4f} loses to the earlier trials at that epoch"
)


class Trial(Protocol):
    """What the callback needs of an Optuna trial."""

    def report(self, value: float, step: int) -> None: ...

    def should_prune(self) -> bool: ...


@dataclass
class TrialOutcome:
    """What a trial's run reported: every epoch's value of the metric, and the epoch it was pruned at."""

    metric: str
    maximize: bool
    values: dict[int, float] = field(default_factory=dict)
    pruned_epoch: int | None = None
    # report in a head-only phase too (a race's rung), and the line printed when the trial stops the run
    every_phase: bool = False
    stop_line: str = SEARCH_STOP_LINE

    @property
    def best(self) -> float | None:
        """The best value over the epochs that ran (NaN values left out), as the direction says."""
        finite = [v for v in self.values.values() if not math.isnan(v)]
        if not finite:
            return None
        return max(finite) if self.maximize else min(finite)


_active: dict[Path, tuple[Trial, TrialOutcome]] = {}


@contextlib.contextmanager
def trial_scope(
    trial: Trial,
    run_dir: Path,
    metric: str,
    maximize: bool,
    *,
    every_phase: bool = False,
    stop_line: str = SEARCH_STOP_LINE,
) -> Iterator[TrialOutcome]:
    """While the block runs, the run in ``run_dir`` reports ``metric`` to ``trial`` (the sweeper's side)."""
    outcome = TrialOutcome(metric, maximize, every_phase=every_phase, stop_line=stop_line)
    key = Path(run_dir).absolute()
    _active[key] = (trial, outcome)
    try:
        yield outcome
    finally:
        _active.pop(key, None)
        os.environ.pop(FOLLOW_ENV, None)


def for_run(run_dir: Path) -> list[L.Callback]:
    """The pruning callback of the run in ``run_dir`` when it is a search trial, else nothing."""
    found = _active.get(Path(run_dir).absolute())
    if found is not None:
        trial, outcome = found
        os.environ[FOLLOW_ENV] = outcome.metric  # DDP ranks started from here follow rank 0
        return [TrialPruning(trial, outcome)]
    if os.environ.get(FOLLOW_ENV):  # a DDP rank > 0 of a trial: no trial here, rank 0 decides
        return [TrialPruning(None, TrialOutcome(os.environ[FOLLOW_ENV], True))]
    return []


class TrialPruning(L.Callback):
    """After each validation: report the metric at the epoch index, and stop the fit if the trial is
    pruned (a graceful stop: the epoch's checkpoints are written first, as the callbacks run in order)."""

    def __init__(self, trial: Trial | None, outcome: TrialOutcome) -> None:
        self.trial = trial
        self.outcome = outcome

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        prune = False
        if self.trial is not None:
            value = self._value(trainer)
            self.outcome.values[epoch] = value
            schedule = module_schedule(pl_module)
            held = (
                not self.outcome.every_phase
                and schedule is not None
                and head_only_before_backbone(schedule, schedule.phase_index(epoch))
            )
            if not held and not math.isnan(value):
                self.trial.report(value, epoch)
                prune = bool(self.trial.should_prune())
        prune = bool(trainer.strategy.broadcast(prune, src=0))
        if prune:
            self.outcome.pruned_epoch = epoch
            trainer.should_stop = True
            value = self.outcome.values.get(epoch, float("nan"))
            line = self.outcome.stop_line.format(epoch=epoch, metric=self.outcome.metric, value=value)
            pl_module.print(line)

    def _value(self, trainer: L.Trainer) -> float:
        metrics = trainer.callback_metrics
        if self.outcome.metric not in metrics:
            logged = ", ".join(sorted(metrics)) or "nothing"
            raise ConfigError(
                f"hydra.sweeper.metric={self.outcome.metric} is not logged by this run (logged: {logged}).",
                "Search a logged validation metric, e.g. hydra.sweeper.metric=val/acc or val/loss.",
            )
        return float(metrics[self.outcome.metric])


def pruned_summary(trainer: L.Trainer) -> dict[str, Any] | None:
    """``RunSummary.pruned``: the (0-based) epoch a search trial was pruned at and its metric; else None."""
    callback = next((c for c in trainer.callbacks if isinstance(c, TrialPruning)), None)
    if callback is None or callback.outcome.pruned_epoch is None:
        return None
    epoch = callback.outcome.pruned_epoch
    value = callback.outcome.values.get(epoch)
    return {"epoch": epoch, "metric": callback.outcome.metric, "value": value}
