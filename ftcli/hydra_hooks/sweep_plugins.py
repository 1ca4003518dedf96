"""The Hydra plugins a sweep may name, checked before Hydra starts.

``hparams_search=NAME`` (or ``hydra/sweeper=optuna``) runs ftcli's own Optuna sweeper
(``optuna_sweeper.py``), which needs Optuna, the extra ``ftcli[sweep]``;
``hydra/launcher=slurm|submitit_slurm|submitit_local`` needs the submitit launcher, ``ftcli[cluster]``.
Without the extra, or with a launcher that does not exist, or a SLURM launcher on a machine without
``sbatch``, the command stops here with exit 2 and says what to type instead.
Imports no torch, and no plugin either (only asks whether it is installed).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from ftcli.command_line.config_groups import config_dir, user_config_dirs
from ftcli.errors import ConfigError, unknown_name

OPTUNA = "optuna"
SUBMITIT_PLUGIN = "hydra_plugins.hydra_submitit_launcher"
SWEEPERS = ("basic", "optuna")
# the launchers Hydra and the submitit plugin register (configs/hydra/launcher adds ftcli's presets)
PLUGIN_LAUNCHERS = ("basic", "submitit_local", "submitit_slurm")
MULTIRUN_FLAGS = ("-m", "--multirun")
# flags that print the config or help and run nothing
PREVIEW_FLAGS = ("--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--resolve")


def check_plugins(args: list[str]) -> None:
    """ConfigError when the overrides name a sweeper or launcher that is unknown or not installed."""
    previewing = any(arg.split("=", 1)[0] in PREVIEW_FLAGS for arg in args)
    for arg in args:
        key, _, value = arg.partition("=")
        key = key.lstrip("+~")
        if key == "hparams_search" and value not in ("", "null"):
            _need(OPTUNA, "sweep", f"hparams_search={value}", "Optuna")
            if not previewing and not any(a in MULTIRUN_FLAGS for a in args):
                raise ConfigError(
                    f"hparams_search={value} searches over many runs: it needs -m.",
                    f"ftcli train -m hparams_search={value} ...",
                )
        elif key == "hydra/sweeper":
            if value not in SWEEPERS:
                raise unknown_name("hydra/sweeper", value, list(SWEEPERS), key="hydra/sweeper")
            if value == "optuna":
                _need(OPTUNA, "sweep", arg, "Optuna")
        elif key == "hydra/launcher":
            _check_launcher(value, user_config_dirs(args), previewing)


def launcher_options(extra_dirs: list[Path] | None = None) -> dict[str, Path | None]:
    """Every launcher a sweep may name: Hydra's and the plugin's, and the presets in hydra/launcher/."""
    found: dict[str, Path | None] = dict.fromkeys(PLUGIN_LAUNCHERS)
    for root in [config_dir(), *(extra_dirs or [])]:
        for path in sorted((root / "hydra" / "launcher").glob("*.yaml")):
            found[path.stem] = path
    return found


def _check_launcher(name: str, extra_dirs: list[Path], previewing: bool) -> None:
    options = launcher_options(extra_dirs)
    if name not in options:
        raise unknown_name("hydra/launcher", name, list(options), key="hydra/launcher")
    preset = options[name]
    text = preset.read_text() if preset is not None else name
    if name == "basic" or "submitit" not in text:
        return
    _need(SUBMITIT_PLUGIN, "cluster", f"hydra/launcher={name}", "the submitit launcher")
    if "submitit_slurm" in text and not previewing and shutil.which("sbatch") is None:
        raise ConfigError(
            f"hydra/launcher={name} submits SLURM jobs with sbatch, and there is no sbatch on PATH.",
            "Run it on the cluster's login node; hydra/launcher=submitit_local runs the same jobs "
            "here, as local processes.",
        )


def _need(module: str, extra: str, what: str, plugin: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"{what} needs {plugin}, which is not installed.",
            f"pip install 'ftcli[{extra}]' (make install includes it).",
        )
