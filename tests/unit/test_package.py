"""The wheel ships every config (and the recipes as the ``recipe`` group) inside the ``ftcli`` package.

The wheel is built from a copy of the source tree, so no build/ or *.egg-info is left in the repo.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Local state and non-package folders: not needed to build, and slow to copy.
NOT_SOURCE = (".venv", ".git", "*.egg-info", "build", "dist", "__pycache__", ".*_cache", ".whl")
NOT_SOURCE += ("outputs", "multirun", "tests", "bench")

pytestmark = pytest.mark.slow


def source_configs() -> set[str]:
    """Every YAML under configs/ (through the recipe -> ../recipes link), relative to configs/."""
    root = REPO / "configs"
    found = set()
    for folder, _, files in os.walk(root, followlinks=True):
        for name in files:
            if name.endswith(".yaml"):
                found.add((Path(folder) / name).relative_to(root).as_posix())
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built without isolation (offline) from a copy of the repository."""
    tmp = tmp_path_factory.mktemp("package")
    source = tmp / "src"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (built,) = tmp.glob("ftcli-*.whl")
    return built


def test_wheel_ships_every_config_under_ftcli_configs(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())

    expected = {f"ftcli/configs/{name}" for name in source_configs()}
    assert expected - names == set(), "configs missing from the wheel"
    for name in (
        "ftcli/configs/train.yaml",
        "ftcli/configs/model/resnet18.yaml",
        "ftcli/configs/data/digits.yaml",
        "ftcli/configs/strategy/feature_extraction.yaml",
        "ftcli/configs/strategy/full.yaml",
        "ftcli/configs/hydra/job_logging/ftcli.yaml",
        "ftcli/configs/recipe/linear.yaml",
        "ftcli/configs/recipe/mlp.yaml",
        "ftcli/configs/recipe/truncate.yaml",
    ):
        assert name in names
    assert {"ftcli/cli.py", "ftcli/commands/train.py", "ftcli/commands/inspect_run.py"} <= names


def test_wheel_ships_every_module_of_the_package(wheel: Path) -> None:
    """pyproject.toml lists the packages one by one: a new folder under ftcli/ must not be left out."""
    source = {p.relative_to(REPO).as_posix() for p in (REPO / "ftcli").rglob("*.py")}
    # ftcli's Hydra sweeper, where Hydra looks for plugins (a namespace package: no hydra_plugins/__init__.py)
    source |= {p.relative_to(REPO).as_posix() for p in (REPO / "hydra_plugins").rglob("*.py")}
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.endswith(".py")}
    assert source <= shipped, sorted(source - shipped)


def test_wheel_declares_the_console_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (entry_points,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = archive.read(entry_points).decode()
    assert "ftcli = ftcli.cli:main" in text


def test_unpacked_wheel_reads_its_own_configs(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import ftcli, ftcli.command_line.config_groups, ftcli.cli\n"
        "print(ftcli.__file__)\n"
        "print(ftcli.command_line.config_groups.config_dir())\n"
        "ftcli.cli.main(['ls'])\n"
        "from hydra.core.plugins import Plugins\n"
        "from hydra.plugins.sweeper import Sweeper\n"
        "print('sweepers:', *sorted(c.__module__ for c in Plugins.instance().discover(Sweeper)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "120"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    module_file, config_dir, *listing = result.stdout.splitlines()
    assert Path(module_file).is_relative_to(site), "the unpacked wheel was not the ftcli imported"
    assert Path(config_dir) == site / "ftcli" / "configs"
    assert "truncate" in "\n".join(listing)
    # installed from a wheel, Hydra's own plugin scan finds ftcli's sweeper
    assert "hydra_plugins.ftcli_sweeper.optuna_sweeper" in listing[-1], listing[-1]
