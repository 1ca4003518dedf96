"""Where the shipped configs live: inside the wheel (ftcli/configs) or at the repo's top level."""

from __future__ import annotations

from pathlib import Path

GROUPS = ("model", "recipe", "strategy", "data", "trainer", "optimizer", "scheduler", "logger", "experiment")


def config_dir_flags(args: list[str]) -> list[str]:
    """The ``--config-dir DIR`` / ``-cd DIR`` / ``--config-dir=DIR`` tokens among command-line arguments."""
    flags: list[str] = []
    for index, arg in enumerate(args):
        if arg in ("--config-dir", "-cd") and index + 1 < len(args):
            flags += [arg, args[index + 1]]
        elif arg.startswith("--config-dir="):
            flags.append(arg)
    return flags


def config_dir() -> Path:
    """The primary config folder; its ``recipe`` group is the top-level ``recipes/`` folder."""
    packaged = Path(__file__).resolve().parent / "configs"
    if (packaged / "train.yaml").is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "configs"
