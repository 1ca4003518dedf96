"""The dispatcher's own surface: `--help`, `ls`, `--cfg job`, `--info`, and no torch import for them.

`--help` and `ls` run through the `ftcli` entry point in a subprocess (they import no torch, so they
start in well under a second); Hydra's `--cfg job` and `--info` compose the train config in the test
process (helpers/cli_inprocess.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ftcli.cli import COMMANDS
from ftcli.command_line.config_groups import group_options

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import run_cli, run_without_heavy_imports


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
    assert set(COMMANDS) == {
        "train",
        "inspect",
        "advise",
        "lrfind",
        "ls",
        "eval",
        "predict",
        "export",
        "report",
    }


@pytest.mark.parametrize("args", [["--help"], ["ls"]], ids=["help", "ls"])
def test_help_and_ls_do_not_import_torch(tmp_path: Path, args: list[str]) -> None:
    result = run_without_heavy_imports(f"import ftcli.cli\nassert ftcli.cli.main({args!r}) == 0", tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_dispatcher_and_ui_import_no_torch_at_module_level(tmp_path: Path) -> None:
    """docs/ARCHITECTURE.md: importing the dispatcher and every ui/ module loads no torch."""
    code = (
        "import importlib, pkgutil, ftcli.cli, ftcli.registry, ftcli.ui\n"
        "for m in pkgutil.iter_modules(ftcli.ui.__path__, 'ftcli.ui.'):\n"
        "    importlib.import_module(m.name)"
    )
    result = run_without_heavy_imports(code, tmp_path)
    assert result.returncode == 0, result.stderr


def test_cfg_job_prints_the_composed_config_without_training(tmp_path: Path) -> None:
    result = run_cli_inprocess(
        "train", "--cfg", "job", "model.weights=null", "strategy=full", "data.per_class=3", cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    printed = OmegaConf.create(result.stdout)
    assert printed.strategy.name == "full"
    assert printed.model.weights is None
    assert printed.data.per_class == 3
    assert list(tmp_path.iterdir()) == [], "--cfg job must not create run directories"


def test_info_prints_the_defaults_tree(tmp_path: Path) -> None:
    result = run_cli_inprocess("train", "model.weights=null", "--info", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Defaults Tree" in result.stdout
    assert "model: efficientnet_lite0" in result.stdout
    assert "strategy: last_layers" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
