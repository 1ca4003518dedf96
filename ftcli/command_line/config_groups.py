"""The config groups: where the shipped configs live, which options each group has, and early checks.

The configs live inside the wheel (ftcli/configs) or at the repo's top level; ``--config-dir DIR``
adds a user's folder. ``group=option`` naming an option that exists nowhere fails here, before
Hydra starts, with the valid names listed. Imports no torch: ``ftcli ls`` and ``--help`` use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftcli.errors import ConfigError, unknown_name

GROUPS = (
    "model",
    "recipe",
    "strategy",
    "data",
    "trainer",
    "optimizer",
    "scheduler",
    "logger",
    # ftcli's own training options, a group each (one `default` option today; add presets beside it)
    "loss",
    "mixup",
    "ema",
    "early_stopping",
    "experiment",
    # an Optuna search over the others (`ftcli train -m hparams_search=NAME`, ftcli.hydra_hooks.search_space)
    "hparams_search",
)


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
    package = Path(__file__).resolve().parents[1]  # ftcli/
    packaged = package / "configs"  # inside an installed wheel
    if (packaged / "train.yaml").is_file():
        return packaged
    return package.parent / "configs"  # a source checkout


def user_config_dirs(args: list[str]) -> list[Path]:
    """The folders that ``--config-dir`` flags add to the config search path."""
    dirs = []
    tokens = iter(config_dir_flags(args))
    for token in tokens:
        value = token.split("=", 1)[1] if token.startswith("--config-dir=") else next(tokens)
        dirs.append(Path(value).expanduser())
    return dirs


def group_options(extra_dirs: list[Path] | None = None) -> dict[str, dict[str, str]]:
    """Every option of every config group: {group: {option: one-line description}}."""
    found: dict[str, dict[str, str]] = {}
    for root in [config_dir(), *(extra_dirs or [])]:
        for group in GROUPS:
            folder = root / group
            if folder.is_dir():
                # a leading underscore marks a file other options build on (data/_base.yaml), not an option
                for path in sorted(p for p in folder.glob("*.yaml") if not p.name.startswith("_")):
                    found.setdefault(group, {})[path.stem] = _description(path)
    return found


def check_group_choices(args: list[str]) -> None:
    """Fail early, listing the valid names, when ``group=option`` names an option that does not exist."""
    options = group_options(user_config_dirs(args))
    for arg in args:
        if "=" not in arg or arg.startswith("-"):
            continue
        key, value = arg.split("=", 1)
        group = key.lstrip("+~")
        if group not in GROUPS or "(" in value or value in ("null", ""):
            continue
        for choice in value.split(","):
            if choice not in options.get(group, {}):
                raise unknown_name(group, choice, list(options.get(group, {})), key=group)


def compose_option(group: str, option: str) -> Any:
    """One option of a group as Hydra composes it (its ``defaults:`` applied), e.g. ``data=imagefolder``."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name=f"{group}/{option}")[group]


def _description(path: Path) -> str:
    """The first comment line of a config file."""
    for line in path.read_text().splitlines():
        if line.startswith("#") and not line.startswith("# @"):
            return line.lstrip("# ").strip()
    return ""


def load_option(group: str, option: str) -> Any:
    """One shipped option of a group as Hydra composes it, e.g. ``strategy/full.yaml`` on top of its
    ``strategy/_base.yaml``: its ``defaults:`` may name options of the same group (and ``_self_``).

    Used inside a running Hydra app (``strategy=auto``, the search-space check), where a second compose
    cannot start. A defaults entry of another kind (``override /model: ...``) is a ConfigError.
    """
    from omegaconf import DictConfig, OmegaConf

    loaded = OmegaConf.load(config_dir() / group / f"{option}.yaml")
    assert isinstance(loaded, DictConfig)
    defaults = list(loaded.pop("defaults", None) or [])
    if "_self_" not in defaults:
        defaults.append("_self_")
    parts = []
    for entry in defaults:
        if not isinstance(entry, str):
            raise ConfigError(
                f"{group}/{option}.yaml: its defaults entry {entry} names another group.",
                "Only options of the same group (and _self_) can be composed here.",
            )
        parts.append(loaded if entry == "_self_" else load_option(group, entry))
    return OmegaConf.merge(*parts)
