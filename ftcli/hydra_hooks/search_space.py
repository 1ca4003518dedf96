"""``hparams_search=NAME``: the Optuna sweeper's search space, checked before the first trial, and its
conditional keys.

An ``hparams_search`` option (configs/hparams_search/) selects Hydra's Optuna sweeper and lists its
``hydra.sweeper.params`` in Hydra's sweep syntax. Some keys exist only under some options of a
group (``strategy.n`` under last_layers, ``strategy.probe_epochs`` under lp_ft): the option's
``search_when: {group: {option: {key: sweep}}}`` names them, and :func:`sample_conditional` (the
sweeper's ``custom_search_space``) samples them only in the trials that picked that option.

:class:`SearchSpaceCheck` (a Hydra callback, ``hydra.callbacks`` in train.yaml) refuses, before any
trial runs, ``n_trials`` below 1 and a parameter that names an option or a key the config does not have.
Imports no torch (and Optuna only inside the functions that the sweeper calls).
"""

from __future__ import annotations

import sys
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


def sample_conditional(config: DictConfig, trial: Any) -> None:
    """Sample the ``search_when`` keys of the options this trial picked (``custom_search_space``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override
    from optuna.distributions import BaseDistribution

    parser = OverridesParser.create()
    for group, options in (config.get(WHEN) or {}).items():
        picked = trial.params.get(group, trial.user_attrs.get(group, _default_choice(config, group)))
        for key, sweep in ((options or {}).get(str(picked)) or {}).items():
            if key in trial.user_attrs or key in trial.params:  # fixed on the command line, or sampled
                continue
            distribution = create_optuna_distribution_from_override(parser.parse_override(f"{key}={sweep}"))
            if isinstance(distribution, BaseDistribution):
                trial._suggest(key, distribution)  # what the sweeper does for hydra.sweeper.params
            else:  # a single value: pass it on like a fixed parameter
                trial.set_user_attr(key, distribution)


class SearchSpaceCheck(Callback):
    """Before the first trial of an Optuna search: ``n_trials`` >= 1, and every parameter exists."""

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
    """ConfigError for ``n_trials`` < 1, an unknown option of a group, or a key the config lacks."""
    sweeper = config.hydra.sweeper
    n_trials = sweeper.get("n_trials")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(
            f"hydra.sweeper.n_trials={n_trials}: a search needs at least one trial.",
            "For example hydra.sweeper.n_trials=20.",
        )
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
