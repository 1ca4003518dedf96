"""A search trial's pruning (ftcli.training.callbacks.trial_pruning) on a real short fit and a real
Optuna study: what is reported at which epoch, and that a pruned fit stops after that epoch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from omegaconf import DictConfig

from ftcli.training.callbacks import trial_pruning

from helpers.fitting import fit_config


def study_with_a_perfect_trial() -> optuna.Study:
    """A study whose one finished trial had val/acc 1.0 at every epoch: any real trial loses to it."""
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    )
    perfect = study.ask()
    for epoch in range(3):
        perfect.report(1.0, epoch)
    study.tell(perfect, 1.0)
    return study


@pytest.mark.slow  # trains two short lp_ft runs
def test_a_head_only_probe_epoch_is_not_judged_and_a_losing_trial_stops_at_its_first_fine_tuning_epoch(
    compose_train: Callable[..., DictConfig], tmp_path: Path, single_thread: None
) -> None:
    study = study_with_a_perfect_trial()
    trial = study.ask()
    cfg = compose_train("strategy=lp_ft", "strategy.probe_epochs=1", "data.per_class=5")
    with trial_pruning.trial_scope(trial, tmp_path, "val/acc", maximize=True) as outcome:
        callbacks = trial_pruning.for_run(tmp_path)
        module, _ = fit_config(cfg, tmp_path, epochs=3, callbacks=callbacks)

    # epoch 0 (lp_ft's head-only probe) is recorded but never compared with trials already fine-tuning
    assert sorted(outcome.values) == [0, 1]
    assert list(study.trials[1].intermediate_values) == [1]
    assert outcome.pruned_epoch == 1
    assert module.trainer.current_epoch == 2  # stopped after epoch 1 of 3
    assert trial_pruning.pruned_summary(module.trainer) == {
        "epoch": 1,
        "metric": "val/acc",
        "value": pytest.approx(outcome.values[1]),
    }
    # outside a trial a run gets no pruning callback
    assert trial_pruning.for_run(tmp_path) == []
