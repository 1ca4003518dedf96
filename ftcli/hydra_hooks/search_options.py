"""The keys of ``hydra.sweeper`` for ftcli's Optuna search, checked (``search_options``), and the sampler
and pruner they name (``make_sampler``, ``make_pruner``; ``grid_of`` for ``sampler=grid``).

Checked before any trial runs (``search_space.SearchSpaceCheck`` calls ``search_options``), so a typo in a
sampler, a pruner or one of its arguments is a clear error, not a failed search. Imports no torch, and
Optuna only inside the functions that use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ftcli.errors import ConfigError, reject_unknown_keys, unknown_name

SAMPLERS = ("tpe", "random", "cmaes", "grid")
PRUNERS = ("median", "successive_halving", "hyperband", "none")
DIRECTIONS = ("maximize", "minimize")
# the keys of hydra.sweeper (configs/hydra/sweeper/optuna.yaml)
KEYS = (
    "_target_",
    "study_name",
    "storage",
    "direction",
    "metric",
    "n_trials",
    "sampler",
    "seed",
    "n_startup_trials",
    "pruner",
    "pruner_options",
    "params",
)
# the objective the train task returns: its best validation accuracy
RETURNED_METRIC = "val/acc"
# what a trial can report after each validation (the training metrics of an epoch come after it)
METRICS = ("val/acc", "val/loss")


@dataclass(frozen=True)
class SearchOptions:
    """The checked keys of ``hydra.sweeper``."""

    study_name: str
    storage: str | None
    direction: str
    metric: str
    n_trials: int
    sampler: str
    seed: int | None
    n_startup_trials: int
    pruner: str
    pruner_options: dict[str, Any] = field(default_factory=dict)

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"


def search_options(config: DictConfig) -> SearchOptions:
    """The sweeper's keys, checked: ConfigError naming the key and its valid values."""
    sweeper = config.hydra.sweeper
    reject_unknown_keys([str(k) for k in sweeper], KEYS, "hydra.sweeper", kind="sweeper")
    n_trials = sweeper.get("n_trials")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(
            f"hydra.sweeper.n_trials={n_trials}: a search needs at least one trial.",
            "For example hydra.sweeper.n_trials=20.",
        )
    choices = {"direction": DIRECTIONS, "sampler": SAMPLERS, "pruner": PRUNERS}
    picked = {key: str(sweeper.get(key, values[0])) for key, values in choices.items()}
    for key, value in picked.items():
        if value not in choices[key]:
            raise unknown_name(f"hydra.sweeper.{key}", value, list(choices[key]), key=f"hydra.sweeper.{key}")
    seed = sweeper.get("seed")
    startup = sweeper.get("n_startup_trials", 10)
    for key, value, low in (("seed", seed, 0), ("n_startup_trials", startup, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ConfigError(f"hydra.sweeper.{key}={value} must be a whole number >= {low}.")
    metric = str(sweeper.get("metric") or RETURNED_METRIC)
    if metric not in METRICS:
        raise unknown_name("hydra.sweeper.metric", metric, list(METRICS), key="hydra.sweeper.metric")
    pruner_options = sweeper.get("pruner_options") or {}
    if not isinstance(pruner_options, DictConfig | dict):
        raise ConfigError(
            f"hydra.sweeper.pruner_options={pruner_options} must be a mapping of the pruner's arguments.",
            "For example hydra.sweeper.pruner_options='{n_startup_trials: 3}'.",
        )
    options = SearchOptions(
        study_name=str(sweeper.get("study_name") or "search"),
        storage=None if sweeper.get("storage") is None else str(sweeper.get("storage")),
        direction=picked["direction"],
        metric=metric,
        n_trials=n_trials,
        sampler=picked["sampler"],
        seed=seed,
        n_startup_trials=startup,
        pruner=picked["pruner"],
        pruner_options=dict(
            OmegaConf.to_container(pruner_options)
            if isinstance(pruner_options, DictConfig)
            else pruner_options
        ),
    )
    make_pruner(options, max_epochs=None)  # its arguments, checked before any trial
    return options


def pruner_arguments(options: SearchOptions) -> tuple[dict[str, Any], list[str]]:
    """The ``pruner_options`` the chosen pruner takes, and the names of those that only other pruners
    take (left out, so that ``pruner=hyperband`` works with the median settings of a preset).
    An argument no pruner has is a ConfigError listing the chosen pruner's arguments."""
    import inspect

    by_pruner = {
        name: [p for p in inspect.signature(cls).parameters] for name, cls in _pruner_classes().items()
    }
    kwargs: dict[str, Any] = {}
    others: list[str] = []
    for key, value in options.pruner_options.items():
        if key in by_pruner[options.pruner]:
            kwargs[key] = value
        elif any(key in args for args in by_pruner.values()):
            others.append(key)
        else:
            valid = ", ".join(by_pruner[options.pruner]) or "none"
            raise ConfigError(
                f"hydra.sweeper.pruner_options.{key}: no pruner has such an argument.",
                f"The {options.pruner} pruner's arguments: {valid}.",
            )
    return kwargs, others


def make_pruner(options: SearchOptions, max_epochs: int | None) -> Any:
    """The Optuna pruner ``hydra.sweeper.pruner`` names, built with its ``pruner_options``.

    Hyperband's ``max_resource`` defaults to ``trainer.max_epochs`` (an epoch is the resource).
    """
    kwargs, _ = pruner_arguments(options)
    if options.pruner == "hyperband" and "max_resource" not in kwargs and max_epochs:
        kwargs["max_resource"] = max_epochs
    try:
        return _pruner_classes()[options.pruner](**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"hydra.sweeper.pruner_options for the {options.pruner} pruner: {exc}") from exc


def _pruner_classes() -> dict[str, Any]:
    import optuna

    return {
        "median": optuna.pruners.MedianPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "none": optuna.pruners.NopPruner,
    }


def make_sampler(options: SearchOptions, grid: dict[str, list[Any]] | None, offset: int = 0) -> Any:
    """The Optuna sampler ``hydra.sweeper.sampler`` names, seeded with ``hydra.sweeper.seed + offset``."""
    import optuna

    seed = None if options.seed is None else options.seed + offset
    if options.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=options.n_startup_trials)
    if options.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if options.sampler == "cmaes":
        # CMA-ES models the numeric parameters; categorical and conditional ones are drawn at random
        return optuna.samplers.CmaEsSampler(
            seed=seed, n_startup_trials=options.n_startup_trials, warn_independent_sampling=False
        )
    return optuna.samplers.GridSampler(grid or {}, seed=seed)


def grid_of(space: dict[str, Any]) -> dict[str, list[Any]]:
    """``sampler=grid``: every searched parameter's values (choices, stepped ranges or integer intervals)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    grid: dict[str, list[Any]] = {}
    for key, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            grid[key] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            grid[key] = list(range(dist.low, dist.high + 1, dist.step))
        elif isinstance(dist, FloatDistribution) and dist.step is not None:
            count = round((dist.high - dist.low) / dist.step) + 1
            grid[key] = [dist.low + i * dist.step for i in range(count)]
        else:
            raise ConfigError(
                f"hydra.sweeper.sampler=grid cannot enumerate {key} (a continuous interval).",
                f"Give {key} as choice(...) or range(lo, hi, step), or use hydra.sweeper.sampler=tpe.",
            )
    return grid
