"""Every ``_target_`` and every ``ftcli.`` module path named in the shipped configs resolves: a YAML (or
a comment in it) must never point at code that does not exist."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from ftcli.command_line.config_groups import config_dir

DOTTED = re.compile(r"\bftcli(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
TARGET = re.compile(r"_target_:\s*['\"]?([\w.]+)")


def config_files() -> list[Path]:
    root = config_dir()
    return sorted({*root.rglob("*.yaml"), *(root.parent / "recipes").rglob("*.yaml")})


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` is a module, or an attribute (class, function, constant) of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def named_paths() -> list[tuple[str, str]]:
    found = []
    for path in config_files():
        text = path.read_text()
        names = {*TARGET.findall(text), *DOTTED.findall(text)}
        found += [(path.name, name) for name in sorted(names)]
    return found


def test_the_configs_name_code() -> None:
    """The scan sees the Hydra callbacks of train.yaml, so an empty scan cannot pass silently."""
    names = {name for _, name in named_paths()}
    assert "ftcli.hydra_hooks.run_dir_guard.RunDirGuard" in names


@pytest.mark.parametrize(("file", "name"), named_paths())
def test_every_named_path_resolves(file: str, name: str) -> None:
    assert resolves(name), f"{file} names {name}, which does not exist"
