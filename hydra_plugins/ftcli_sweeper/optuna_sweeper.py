"""``hydra/sweeper=optuna`` (configs/hydra/sweeper/optuna.yaml): ftcli's Optuna sweeper, as Hydra finds it."""

from __future__ import annotations

from ftcli.hydra_hooks.optuna_sweeper import OptunaSearch


class OptunaSweeper(OptunaSearch):
    """ftcli.hydra_hooks.optuna_sweeper.OptunaSearch under the name Hydra accepts for a plugin."""
