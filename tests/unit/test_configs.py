"""Config level: every option of every group composes and resolves; `ls`, `--help`, `--cfg`, `--info`.

Options are discovered from the config folders (``ftcli.ui.config_groups.group_options``), so a new YAML file is
covered without editing this file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.cli_runner import run_cli
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from ftcli.ui import config_groups as paths
from ftcli.cli import COMMANDS
from ftcli.ui.config_groups import group_options

# What a group needs besides its own option to compose (mandatory ``???`` values).
REQUIRED = {
    ("data", "imagefolder"): ["data.root=/nonexistent/images"],
    ("data", "csv"): ["data.manifest=/nonexistent/labels.csv"],
    ("experiment", "digits_target"): ["model.weights=/nonexistent/source.ckpt"],
}
# Groups whose node carries the ``name`` the code dispatches on.
NAMED_GROUPS = ("model", "recipe", "strategy", "data", "optimizer", "scheduler")
GROUP_OPTIONS = [(group, option) for group, options in group_options().items() for option in options]


def known_names(group: str) -> set[str]:
    """The names the code accepts for ``<group>.name`` (a registry per group)."""
    if group == "model":
        from ftcli.model.backbones import list_backbones

        return set(list_backbones())
    if group == "strategy":
        from ftcli.training.strategies import STRATEGIES

        return set(STRATEGIES.names())
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
def test_every_option_composes_and_resolves(group: str, option: str) -> None:
    cfg = compose_train([f"{group}={option}", *REQUIRED.get((group, option), [])])

    if group in NAMED_GROUPS:
        name = cfg[group].get("name")
        assert isinstance(name, str) and name, f"{group}/{option}.yaml has no name"
        assert name in known_names(group), f"{group}/{option}.yaml: name {name!r} is unknown to ftcli"
    plain = resolve_skipping_hydra(cfg)
    for key in ("model", "recipe", "strategy", "data", "trainer", "optimizer", "scheduler"):
        assert isinstance(plain[key], dict), f"{group}={option} leaves no {key} config"


def test_default_composition_is_the_documented_one() -> None:
    cfg = compose_train([])
    assert (cfg.model.name, cfg.recipe.name, cfg.strategy.name, cfg.data.name) == (
        "resnet18",
        "linear",
        "last_layers",
        "digits",
    )


def test_ls_lists_every_group_and_option(tmp_path: Path) -> None:
    result = run_cli("ls", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    for group, options in group_options().items():
        assert group in result.stdout
        for option in options:
            assert option in result.stdout, f"ftcli ls misses {group}={option}"


def test_help_lists_commands(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    for command in ("train", "inspect", "ls"):
        assert f"  {command} " in result.stdout
    assert set(COMMANDS) == {"train", "inspect", "ls", "eval", "predict", "export", "report"}


@pytest.mark.parametrize("args", [["--help"], ["ls"]], ids=["help", "ls"])
def test_help_and_ls_do_not_import_torch(tmp_path: Path, args: list[str]) -> None:
    code = (
        "import sys, ftcli.cli\n"
        f"assert ftcli.cli.main({args!r}) == 0\n"
        "heavy = sorted(m for m in ('torch', 'torchvision', 'lightning') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_cfg_job_prints_the_composed_config_without_training(tmp_path: Path) -> None:
    result = run_cli(
        "train", "--cfg", "job", "model.weights=null", "strategy=full", "data.per_class=3", cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    printed = OmegaConf.create(result.stdout)
    assert printed.strategy.name == "full"
    assert printed.model.weights is None
    assert printed.data.per_class == 3
    assert list(tmp_path.iterdir()) == [], "--cfg job must not create run directories"


def test_info_prints_the_defaults_tree(tmp_path: Path) -> None:
    result = run_cli("train", "model.weights=null", "--info", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Defaults Tree" in result.stdout
    assert "model: resnet18" in result.stdout
    assert "strategy: last_layers" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
