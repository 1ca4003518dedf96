"""``key=value`` arguments of the commands that read a finished run back: eval, predict, export, report.

They are not Hydra apps: they compose no run (the checkpoint already describes one) and write no
Hydra output folder. Their few keys are checked here, an unknown key lists the valid ones, and
``data=NAME`` / ``data.KEY=VALUE`` build the data config eval uses in place of the checkpoint's own,
with the same group files and value syntax as ``ftcli train``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ftcli.errors import ConfigError


@dataclass(frozen=True)
class Key:
    """One ``key=value`` a command accepts."""

    name: str
    help: str
    default: Any = None
    kind: type = str
    required: bool = False


@dataclass
class Parsed:
    """A command line split into checked values, data overrides and positional arguments."""

    values: dict[str, Any]
    data: list[str] = field(default_factory=list)
    positional: list[str] = field(default_factory=list)


def wants_help(args: Sequence[str]) -> bool:
    return any(arg in ("-h", "--help") for arg in args)


def usage(command: str, summary: str, keys: Sequence[Key], extra: str = "") -> str:
    """The text of ``ftcli <command> --help``."""
    width = max(len(key.name) for key in keys) + 2
    lines = [f"ftcli {command}: {summary}", "", "keys:"]
    for key in keys:
        default = " (required)" if key.required else ("" if key.default is None else f" [{key.default}]")
        lines.append(f"  {key.name + '=':<{width}} {key.help}{default}")
    if extra:
        lines += ["", extra]
    lines += ["", "Errors print a short message and exit 2; FTCLI_DEBUG=1 shows the traceback."]
    return "\n".join(lines)


def parse(
    command: str,
    args: Sequence[str],
    keys: Sequence[Key],
    accepts_data: bool = False,
    positional: str | None = None,
) -> Parsed:
    """Check and convert ``key=value`` arguments; ``positional`` names what bare arguments are."""
    known = {key.name: key for key in keys}
    parsed = Parsed(values={key.name: key.default for key in keys})
    for arg in args:
        if "=" not in arg:
            if positional is None or arg.startswith("-"):
                raise ConfigError(
                    f"ftcli {command}: expected key=value, got '{arg}'.", f"See `ftcli {command} --help`."
                )
            parsed.positional.append(arg)
            continue
        name, value = arg.split("=", 1)
        bare = name.lstrip("+")
        if accepts_data and (bare == "data" or bare.startswith("data.")):
            parsed.data.append(arg)
            continue
        if name not in known:
            valid = ", ".join([*known, *(["data", "data.KEY"] if accepts_data else [])])
            raise ConfigError(f"Unknown key '{name}' for ftcli {command}.", f"Valid keys: {valid}")
        parsed.values[name] = _convert(known[name], value)
    for key in keys:
        if key.required and parsed.values[key.name] in (None, ""):
            raise ConfigError(f"{key.name} is required: ftcli {command} {key.name}=...", key.help)
    if positional is not None and not parsed.positional:
        raise ConfigError(
            f"ftcli {command} needs at least one {positional}.", f"See `ftcli {command} --help`."
        )
    return parsed


def boolean(value: str) -> bool:
    """A ``true``/``false`` value (``Key(kind=boolean)``); anything else is refused."""
    words = {"true": True, "false": False}
    if value.lower() not in words:
        raise ValueError(value)
    return words[value.lower()]


def _convert(key: Key, value: str) -> Any:
    if value.lower() in ("null", "none", ""):
        return None
    if key.kind is str:
        return value
    try:
        return key.kind(value)
    except ValueError:
        raise ConfigError(f"{key.name}={value} must be a {key.kind.__name__}.", key.help) from None


def data_config(base: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """The data config: ``base`` (the checkpoint's), or the ``data=NAME`` group file, then ``data.KEY=VALUE``.

    A key that the chosen data config does not have is refused (a typo would otherwise be ignored),
    unless written ``+data.KEY=VALUE`` as in ``ftcli train``.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    from ftcli.command_line.config_groups import check_group_choices, compose_option

    config = OmegaConf.create(dict(base))
    for arg in overrides:
        name, value = arg.split("=", 1)
        if name.lstrip("+") == "data":
            check_group_choices([f"data={value}"])  # an unknown name lists the valid ones
            config = compose_option("data", value)
    for arg in overrides:
        name, value = arg.split("=", 1)
        key = name.lstrip("+")[len("data.") :]
        if name.lstrip("+") == "data":
            continue
        if not name.startswith("+") and not _has_key(OmegaConf.to_container(config, resolve=False), key):
            raise ConfigError(
                f"data.{key} is not a key of data={config.get('name')}.",
                f"Valid keys: {', '.join(f'data.{k}' for k in config)}; add a new one as +data.{key}=...",
            )
        try:
            config = OmegaConf.merge(config, OmegaConf.from_dotlist([f"{key}={value}"]))
        except OmegaConfBaseException as exc:
            raise ConfigError(f"Bad value in {arg}: {exc}") from None
    try:
        plain = OmegaConf.to_container(config, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as exc:
        key = str(getattr(exc, "full_key", "") or "KEY")
        raise ConfigError(
            f"data.{key} is required for data={config.get('name')}.",
            f"Set it on the command line: data.{key}=...",
        ) from None
    return dict(plain)  # type: ignore[arg-type]


def _has_key(node: Any, dotted: str) -> bool:
    """Whether a plain nested dict has ``a.b.c`` (a ``???`` value counts as present)."""
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def natural_key(path: str | os.PathLike[str]) -> list[Any]:
    """Sort key putting ``2`` before ``10`` (Hydra's job folders, numbered files)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", os.fspath(path))]
