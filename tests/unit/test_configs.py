"""Config level: every option of every group composes and resolves, and names what the code knows.

Options are discovered from the config folders (``ftcli.command_line.config_groups.group_options``), so a new
YAML file is covered without editing this file. The CLI flags are in tests/cli/test_help_and_flags.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from ftcli.command_line import config_groups as paths
from ftcli.command_line.config_groups import group_options
from ftcli.config.schema import check_config

# What a group needs besides its own option to compose (mandatory ``???`` values).
REQUIRED = {
    ("data", "imagefolder"): ["data.root=/nonexistent/images"],
    ("data", "csv"): ["data.manifest=/nonexistent/labels.csv"],
    ("data", "torchvision"): ["data.name=FashionMNIST"],
    ("experiment", "digits_target"): ["model.weights=/nonexistent/source.ckpt"],
    ("experiment", "mnist_target"): ["source_checkpoint=imagenet"],
}
# Groups whose node carries the ``name`` the code dispatches on.
NAMED_GROUPS = ("model", "recipe", "strategy", "data", "optimizer", "scheduler")
GROUP_OPTIONS = [(group, option) for group, options in group_options().items() for option in options]


def known_names(group: str) -> set[str]:
    """The names the code accepts for ``<group>.name`` (a registry per group)."""
    if group == "model":
        import timm

        from ftcli.model.backbones import list_backbones
        from ftcli.model.hf_models import HF_PREFIX, PACKAGED

        packaged = {HF_PREFIX + repo for repo in PACKAGED}  # the text models installed from PyPI
        return set(list_backbones()) | {f"timm/{name}" for name in timm.list_models()} | packaged
    if group == "strategy":
        from ftcli.finetune.strategies import AUTO, STRATEGIES

        return set(STRATEGIES.names()) | {AUTO}  # auto: the advisor picks one of them
    if group == "data":
        from ftcli.data.sources import DATA_SOURCES

        return set(DATA_SOURCES.names())
    if group in ("optimizer", "scheduler"):
        from ftcli.training.optimizers import OPTIMIZERS
        from ftcli.training.schedulers import SCHEDULERS

        return set((OPTIMIZERS if group == "optimizer" else SCHEDULERS).names())
    return set(group_options()[group])  # recipes: the name is the file's name


def compose_train(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(paths.config_dir()), version_base="1.3"):
        return compose("train", overrides=overrides)


def resolve_skipping_hydra(cfg: DictConfig) -> dict[str, Any]:
    """Resolve every interpolation except ``${hydra:...}`` ones (no Hydra run exists here)."""
    raw = _blank_hydra_interpolations(OmegaConf.to_container(cfg, resolve=False))
    return OmegaConf.to_container(OmegaConf.create(raw), resolve=True)  # type: ignore[return-value]


def _blank_hydra_interpolations(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _blank_hydra_interpolations(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_blank_hydra_interpolations(item) for item in value]
    if isinstance(value, str) and "${hydra:" in value:
        return "<hydra>"
    return value


def test_every_group_has_options() -> None:
    assert set(group_options()) == set(paths.GROUPS)
    assert {"linear", "mlp", "truncate"} <= set(group_options()["recipe"])


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_every_option_composes_resolves_and_passes_the_schema(group: str, option: str) -> None:
    cfg = compose_train([f"{group}={option}", *REQUIRED.get((group, option), [])])
    check_config(cfg)  # every shipped option is valid as shipped

    if group in NAMED_GROUPS:
        # data=torchvision dispatches on data.source (its data.name is the torchvision dataset)
        name = cfg[group].get("source") or cfg[group].get("name")
        assert isinstance(name, str) and name, f"{group}/{option}.yaml has no name"
        assert name in known_names(group), f"{group}/{option}.yaml: name {name!r} is unknown to ftcli"
    plain = resolve_skipping_hydra(cfg)
    for key in ("model", "recipe", "strategy", "data", "trainer", "optimizer", "scheduler"):
        assert isinstance(plain[key], dict), f"{group}={option} leaves no {key} config"


def test_default_composition_is_the_documented_one() -> None:
    cfg = compose_train([])
    assert (cfg.model.name, cfg.recipe.name, cfg.strategy.name, cfg.data.name) == (
        "timm/tf_efficientnet_lite0",
        "linear",
        "last_layers",
        "digits",
    )
    assert cfg.model.weights == "imagenet"  # real ImageNet weights, installed with ftcli
