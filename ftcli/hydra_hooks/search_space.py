"""``hparams_search=NAME``: the search space of ftcli's Optuna sweeper, checked before the first trial,
and how one trial samples it.

An ``hparams_search`` option (configs/hparams_search/) selects the sweeper (``hydra/sweeper: optuna``,
ftcli.hydra_hooks.optuna_sweeper) and lists its ``hydra.sweeper.params`` in Hydra's sweep syntax:
``choice(a, b)``, ``interval(lo, hi)``, ``tag(log, interval(lo, hi))``, ``int(interval(lo, hi))``,
``range(lo, hi, step)``. Sweeps on the command line join the space, plain values there are fixed in
every trial. Some keys exist only under some options of a group (``strategy.n`` under last_layers,
``strategy.probe_epochs`` under lp_ft): the option's ``search_when: {group: {option: {key: sweep}}}``
names them, and :func:`sample_conditional` samples them only in the trials that picked that option.

:class:`SearchSpaceCheck` (a Hydra callback, ``hydra.callbacks`` in train.yaml) refuses, before any
trial runs and before the sweep folder is made, bad sweeper keys (``n_trials`` below 1, an unknown
sampler or pruner: ``search_options.search_options``) and a parameter that names an option or a key
the config does not have. Imports no torch (and Optuna only inside the functions that need it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ftcli.command_line.config_groups import GROUPS, config_dir, group_options, load_option
from ftcli.command_line.error_boundary import report
from ftcli.errors import ConfigError, FtcliError, unknown_name
from ftcli.ui.console import is_rank_zero

WHEN = "search_when"
_ABSENT = object()


@dataclass(frozen=True)
class SearchSpace:
    """What every trial samples (``sampled``: key -> Optuna distribution) and what it is given as is
    (``fixed``: key -> the command line's override, e.g. ``model=resnet18``, ``~ema``)."""

    sampled: dict[str, Any]
    fixed: dict[str, str]


def search_space(params: Any, arguments: Iterable[str]) -> SearchSpace:
    """The space of ``hydra.sweeper.params`` plus the command line's ``arguments`` (a sweep there wins)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    sampled: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    lines = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
    for override in parser.parse_overrides(lines):
        key = override.get_key_element()
        sampled.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            sampled[key] = distribution(override)
        else:
            fixed[key] = override.input_line
    return SearchSpace(sampled, fixed)


def distribution(override: Any) -> Any:
    """The Optuna distribution of one parsed sweep override: ``choice`` (categorical), ``range``
    (stepped), ``interval`` (``int(...)``: integers; ``tag(log, ...)``: log scale)."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep, Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    key = override.get_key_element()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if isinstance(value, RangeSweep):
        if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
            # range's stop is exclusive, an Optuna distribution's high inclusive
            high = value.stop - value.step
            return FloatDistribution(float(value.start), float(high), step=float(value.step))
        return IntDistribution(int(value.start), int(value.stop) - int(value.step), step=int(value.step))
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise ConfigError(
        f"{key}={override.input_line or value}: this sweep cannot be searched.",
        "Use choice(a, b), interval(lo, hi), tag(log, interval(lo, hi)), int(interval(lo, hi)) "
        "or range(lo, hi, step).",
    )


def suggest(trial: Any, key: str, dist: Any) -> Any:
    """``trial.suggest_*`` for one distribution (the public API, so every sampler sees the parameter)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(key, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)


def sample(config: DictConfig, trial: Any, space: SearchSpace) -> list[str]:
    """Sample one trial: the search space, then its conditional keys; returns the trial's overrides
    (the fixed ones first). ``trial.params`` then holds what was sampled, for Optuna."""
    values: dict[str, Any] = {key: suggest(trial, key, dist) for key, dist in space.sampled.items()}
    picked = {**values, **{key: line.partition("=")[2] for key, line in space.fixed.items()}}
    values.update(sample_conditional(config, trial, picked))
    return [*space.fixed.values(), *(f"{key}={value}" for key, value in values.items())]


def conditional_space(config: DictConfig) -> dict[str, dict[str, dict[str, Any]]]:
    """``search_when`` as {group: {option: {key: distribution or fixed value}}}."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    space: dict[str, dict[str, dict[str, Any]]] = {}
    for group, options in (config.get(WHEN) or {}).items():
        for option, keys in (options or {}).items():
            for key, sweep in (keys or {}).items():
                override = parser.parse_override(f"{key}={sweep}")
                value = distribution(override) if override.is_sweep_override() else str(sweep)
                space.setdefault(str(group), {}).setdefault(str(option), {})[str(key)] = value
    return space


def reachable_conditional(config: DictConfig, space: SearchSpace) -> dict[str, Any]:
    """The ``search_when`` distributions a trial of ``space`` may sample: those of the options its
    groups can pick (``sampler=grid`` enumerates them)."""
    found: dict[str, Any] = {}
    for group, by_option in conditional_space(config).items():
        if group in space.sampled:
            options = [str(c) for c in getattr(space.sampled[group], "choices", ())]
        elif group in space.fixed:
            options = [space.fixed[group].partition("=")[2]]
        else:
            options = [str(_default_choice(config, group))]
        for option in options:
            found.update({k: d for k, d in by_option.get(option, {}).items() if not isinstance(d, str)})
    return found


def sample_conditional(config: DictConfig, trial: Any, picked: dict[str, Any]) -> dict[str, Any]:
    """The ``search_when`` keys of the options this trial picked (``picked``: what it has so far; a
    group it does not search takes the config's default option), skipping keys it already has."""
    values: dict[str, Any] = {}
    for group, by_option in conditional_space(config).items():
        option = str(picked.get(group, _default_choice(config, group)))
        for key, dist in by_option.get(option, {}).items():
            if key in picked or f"+{key}" in picked:  # fixed on the command line, or sampled
                continue
            values[key] = dist if isinstance(dist, str) else suggest(trial, key, dist)
    return values


class SearchSpaceCheck(Callback):
    """Before the first trial of an Optuna search: the sweeper's keys, and every parameter exists."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if "optuna" not in str(OmegaConf.select(config, "hydra.sweeper._target_", default="")).lower():
            return
        if not is_rank_zero():
            return
        try:
            check_search_space(config)
        except FtcliError as err:
            sys.exit(report(err))  # Hydra turns a callback's exceptions into warnings


def check_search_space(config: DictConfig) -> None:
    """ConfigError for a bad sweeper key, an unknown option of a group, or a key the config lacks."""
    from ftcli.hydra_hooks.search_options import search_options

    sweeper = config.hydra.sweeper
    search_options(config)  # n_trials, direction, sampler, pruner, storage ...
    params = {str(k): str(v) for k, v in (sweeper.get("params") or {}).items()}
    # the command line's overrides join the search space (a sweep, or a value that fixes a parameter)
    for override in config.hydra.overrides.task:
        key, _, value = str(override).partition("=")
        params[key] = value
    options = group_options(_user_config_dirs(config))
    choices = {key: _choices(key, value) for key, value in params.items() if key in GROUPS}
    for group, picked in choices.items():
        for option in picked:
            if option not in options.get(group, {}):
                raise unknown_name(group, option, list(options.get(group, {})), key=group)
    for key in params:
        if key.startswith(("+", "~")) or key in GROUPS or key.startswith("hydra."):
            continue
        _check_key(config, key, choices)
    for group, by_option in (config.get(WHEN) or {}).items():
        for option, keys in (by_option or {}).items():
            for key in keys or {}:
                _check_key(config, str(key), {str(group): [str(option)]})


def _check_key(config: DictConfig, key: str, choices: dict[str, list[str]]) -> None:
    """The key exists under every option the search may pick for its group (or in the config)."""
    group, _, rest = key.partition(".")
    for option in choices.get(group, []):
        path = config_dir() / group / f"{option}.yaml"
        if not path.is_file():
            continue  # a user's option (--config-dir): Hydra checks it when the trial composes
        loaded = load_option(group, option)  # with its group's _base.yaml, as a trial composes it
        if OmegaConf.select(loaded, rest, default=_ABSENT) is _ABSENT:
            raise ConfigError(
                f"The search space names {key}, which {group}={option} does not have.",
                f"Keys of {group}={option}: {', '.join(k for k in loaded if k != 'name')}. Search a key "
                f"that every {group} the search picks has, or list it under {WHEN}.{group}.<option>.",
            )
    if group not in choices and OmegaConf.select(config, key, default=_ABSENT) is _ABSENT:
        raise ConfigError(
            f"The search space names {key}, which this config does not have.",
            "`ftcli train --cfg job` prints every key; +KEY adds a new one.",
        )


def _choices(key: str, value: str) -> list[str]:
    """The options a group override picks: ``choice(a, b)``, ``a,b`` or ``a``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    override = OverridesParser.create().parse_override(f"{key}={value}")
    if override.is_sweep_override():
        return [str(v) for v in override.sweep_string_iterator()]
    return [str(override.value())]


def _default_choice(config: DictConfig, group: str) -> Any:
    return OmegaConf.select(config, f"hydra.runtime.choices.{group}", default=None)


def _user_config_dirs(config: DictConfig) -> list[Path]:
    sources = OmegaConf.select(config, "hydra.runtime.config_sources", default=None) or []
    return [Path(s.path) for s in sources if s.get("provider") == "command-line" and s.schema == "file"]
