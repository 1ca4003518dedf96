"""The Optuna search space (ftcli.hydra_hooks.search_space), the sweeper's keys
(ftcli.hydra_hooks.optuna_sweeper), the plugin checks (ftcli.hydra_hooks.sweep_plugins) and the SLURM
launcher preset, without running a sweep (tests/cli/test_search_and_cluster.py runs them)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from ftcli.command_line.config_groups import config_dir
from ftcli.config.schema import check_config
from ftcli.errors import ConfigError
from ftcli.finetune.adapter_record import adapter_options
from ftcli.hydra_hooks import sweep_plugins
from ftcli.hydra_hooks.search_options import grid_of, make_sampler, search_options
from ftcli.hydra_hooks.search_space import check_search_space, sample, search_space
from ftcli.hydra_hooks.study_storage import tell
from ftcli.hydra_hooks.sweep_jobs import FailedJob


def compose_with_hydra(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def test_the_slurm_preset_takes_its_resources_from_the_trainer() -> None:
    cfg = compose_with_hydra(
        "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"
    )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert (launcher["nodes"], launcher["gpus_per_node"], launcher["tasks_per_node"]) == (2, 4, 4)
    assert launcher["submitit_folder"].endswith(".submitit/%j")
    # as Hydra builds the launcher of a sweep: the interpolations resolve against the whole config
    built = instantiate(cfg.hydra.launcher)
    assert (built.params["nodes"], built.params["gpus_per_node"], built.params["tasks_per_node"]) == (2, 4, 4)


def test_the_shipped_search_maximizes_with_a_seeded_sampler_and_the_median_pruner() -> None:
    cfg = compose_with_hydra("hparams_search=finetune")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.ftcli_sweeper.optuna_sweeper.OptunaSweeper"
    options = search_options(cfg)
    assert (options.direction, options.sampler, options.seed, options.pruner) == (
        "maximize",
        "tpe",
        42,
        "median",
    )
    assert options.metric == "val/acc" and options.storage.endswith("/search.db")
    assert {"strategy", "optimizer.lr", "strategy.lr_decay", "strategy.bn", "recipe"} <= set(sweeper.params)
    check_search_space(cfg)  # every key it names exists


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials=0"),
        (
            ["hydra.sweeper.pruner=nope"],
            "Unknown hydra.sweeper.pruner 'nope'.*hyperband, median, none, successive_halving",
        ),
        (["hydra.sweeper.sampler=bayes"], "Unknown hydra.sweeper.sampler 'bayes'.*cmaes, grid, random, tpe"),
        (["hydra.sweeper.metric=train/acc"], "Unknown hydra.sweeper.metric 'train/acc'.*val/acc, val/loss"),
        (["hydra.sweeper.direction=max"], "Unknown hydra.sweeper.direction 'max'.*maximize, minimize"),
        (
            ["+hydra.sweeper.n_jobs=2"],
            "Unknown sweeper key.*hydra.sweeper.n_jobs.*hydra.sweeper.pruner_options",
        ),
        (
            ["+hydra.sweeper.pruner_options.patience=2"],
            "no pruner has such an argument.*median.*n_warmup_steps",
        ),
        (["strategy=choice(full,nope)"], "Unknown strategy 'nope'"),
        (["+hydra.sweeper.params.optimizer.nesterov=choice(true,false)"], "nesterov, which this config"),
        (["+hydra.sweeper.params.foo=choice(1,2)"], "foo, which this config does not have"),
        (["strategy=choice(full,lp_ft)", "strategy.n=2"], "strategy.n, which strategy=full does not have"),
    ],
)
def test_a_search_space_or_sweeper_key_that_does_not_exist_is_refused(
    overrides: list[str], message: str
) -> None:
    cfg = compose_with_hydra("hparams_search=finetune")
    for override in overrides:
        key, value = override.split("=", 1)
        if key.startswith("+hydra.sweeper.params."):
            with open_dict(cfg.hydra.sweeper.params):
                cfg.hydra.sweeper.params[key.removeprefix("+hydra.sweeper.params.")] = value
        elif key.startswith(("hydra.", "+hydra.")):
            OmegaConf.update(cfg, key.lstrip("+"), int(value) if value.isdigit() else value, force_add=True)
        else:
            cfg.hydra.overrides.task.append(override)
    with pytest.raises(ConfigError, match="(?s)" + message.replace("(", r"\(")):
        check_search_space(cfg)


def test_a_pruner_takes_its_own_arguments_and_leaves_out_other_pruners() -> None:
    from ftcli.hydra_hooks.search_options import make_pruner, pruner_arguments

    cfg = compose_with_hydra("hparams_search=finetune", "hydra.sweeper.pruner=hyperband")
    options = search_options(cfg)
    # the preset's median settings do not stop a switch to hyperband; its max_resource is max_epochs
    assert pruner_arguments(options) == ({}, ["n_startup_trials", "n_warmup_steps"])
    assert make_pruner(options, max_epochs=7)._max_resource == 7


def test_keys_of_one_strategy_are_sampled_only_when_a_trial_picks_it() -> None:
    cfg = compose_with_hydra("hparams_search=finetune")
    picked = {}
    for strategy in ("lp_ft", "last_layers", "full"):
        space = search_space(cfg.hydra.sweeper.params, [f"strategy={strategy}", "model=resnet18"])
        trial = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0)).ask()
        overrides = sample(cfg, trial, space)
        assert overrides[:2] == [f"strategy={strategy}", "model=resnet18"]  # fixed on the command line
        picked[strategy] = set(trial.params) - {"optimizer.lr", "strategy.lr_decay", "strategy.bn", "recipe"}
    assert picked == {"lp_ft": {"strategy.probe_epochs"}, "last_layers": {"strategy.n"}, "full": set()}


def test_the_lora_search_samples_adapter_keys_that_plan_a_run() -> None:
    cfg = compose_with_hydra("hparams_search=lora")
    check_search_space(cfg)  # every key it names exists in strategy=lora
    space = search_space(cfg.hydra.sweeper.params, [])
    assert {"strategy.r", "strategy.alpha", "strategy.blocks", "strategy.use_dora", "optimizer.lr"} <= set(
        space.sampled
    )
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(4):  # each sample is a config the schema and the adapter checks accept
        overrides = sample(cfg, study.ask(), space)
        sampled = compose_with_hydra("strategy=lora", *overrides)
        check_config(sampled)
        adapter_options(sampled.strategy)


def test_the_sweep_syntax_becomes_optuna_distributions() -> None:
    space = search_space(
        {
            "a": "choice(x, y)",
            "b": "tag(log, interval(1e-4, 1e-2))",
            "c": "int(interval(1, 3))",
            "d": "range(0, 10, 5)",
        },
        ["e=1", "+f=choice(true,false)"],
    )
    dists = optuna.distributions
    assert space.sampled == {
        "a": dists.CategoricalDistribution(["x", "y"]),
        "b": dists.FloatDistribution(1e-4, 1e-2, log=True),
        "c": dists.IntDistribution(1, 3),
        "d": dists.IntDistribution(0, 5, step=5),
        "+f": dists.CategoricalDistribution([True, False]),
    }
    assert space.fixed == {"e": "e=1"}


def test_grid_takes_choices_and_steps_and_refuses_a_continuous_interval() -> None:
    cfg = compose_with_hydra("hparams_search=finetune", "hydra.sweeper.sampler=grid")
    options = search_options(cfg)
    grid = {"optimizer.lr": [0.01, 0.001], "strategy.n": [1, 2]}
    sampler = make_sampler(options, grid)
    study = optuna.create_study(sampler=sampler)
    seen = set()
    for _ in range(4):
        trial = study.ask()
        seen.add(
            (trial.suggest_categorical("optimizer.lr", [0.01, 0.001]), trial.suggest_int("strategy.n", 1, 2))
        )
        tell(study, trial, 0.5)  # after the last point the grid sampler stops the study
    assert len(seen) == 4  # every point once

    with pytest.raises(ConfigError, match=r"cannot enumerate optimizer\.lr"):
        grid_of(search_space({"optimizer.lr": "interval(1e-4, 1e-2)"}, []).sampled)


def test_a_failed_job_is_no_number_so_optuna_counts_the_trial_failed() -> None:
    failed = FailedJob(Path("sweep/3"), "optimizer.lr=-1 must be a positive number\nhint")
    with pytest.raises(ValueError, match=r"optimizer\.lr=-1"):
        float(failed)
    assert str(failed) == "job sweep/3 failed: optimizer.lr=-1 must be a positive number"


def test_plugins_and_launchers_are_checked_before_hydra_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    sweep_plugins.check_plugins(["-m", "hparams_search=finetune", "hydra/launcher=submitit_local"])
    with pytest.raises(ConfigError, match="needs -m"):
        sweep_plugins.check_plugins(["hparams_search=finetune"])
    with pytest.raises(ConfigError, match="Unknown hydra/launcher 'nope'"):
        sweep_plugins.check_plugins(["-m", "hydra/launcher=nope"])
    with pytest.raises(ConfigError, match="Unknown hydra/sweeper 'ax'"):
        sweep_plugins.check_plugins(["-m", "hydra/sweeper=ax"])

    monkeypatch.setattr(sweep_plugins.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="no sbatch on PATH"):
        sweep_plugins.check_plugins(["-m", "hydra/launcher=submitit_slurm"])
    sweep_plugins.check_plugins(["-m", "hydra/launcher=slurm", "--cfg", "hydra"])  # a preview submits nothing

    monkeypatch.setattr(sweep_plugins.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"ftcli\[sweep\]"):
        sweep_plugins.check_plugins(["-m", "hparams_search=finetune"])
    with pytest.raises(ConfigError, match=r"ftcli\[cluster\]"):
        sweep_plugins.check_plugins(["-m", "hydra/launcher=submitit_local"])
