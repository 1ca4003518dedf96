"""The one registry idiom: names list themselves in errors, a family's modules register on first use,
and every registered name is an option of its config group (so `ftcli ls` lists it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ftcli.command_line.config_groups import group_options
from ftcli.data.sources import DATA_SOURCES
from ftcli.errors import ConfigError
from ftcli.finetune.strategies import STRATEGIES
from ftcli.registry import Registry
from ftcli.training.loggers import LOGGERS
from ftcli.training.optimizers import OPTIMIZERS
from ftcli.training.schedulers import SCHEDULERS

REGISTRIES = {
    "data": DATA_SOURCES,
    "strategy": STRATEGIES,
    "optimizer": OPTIMIZERS,
    "scheduler": SCHEDULERS,
    "logger": LOGGERS,
}


def test_an_unknown_name_lists_the_valid_ones() -> None:
    registry: Registry[int] = Registry("colour", key="paint.colour")
    registry.register("red")(1)
    registry.register("blue")(2)

    with pytest.raises(ConfigError) as err:
        registry.get("green")
    assert "Unknown colour 'green' (paint.colour=green)" in str(err.value)
    assert "blue, red" in str(err.value)
    assert registry.get("red") == 1 and list(registry) == ["blue", "red"] and "blue" in registry


def test_a_name_registered_twice_for_different_members_is_a_bug() -> None:
    registry: Registry[int] = Registry("colour", key="paint.colour")
    registry.register("red")(1)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("red")(2)


def test_adding_a_module_to_a_family_package_adds_a_member(tmp_path: Path) -> None:
    """A new member is one new module: the registry imports the package's modules on first use."""
    package = tmp_path / "ftcli_test_family"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from ftcli.registry import Registry\n"
        "WIDGETS = Registry('widget', key='widget.name', package=__name__)\n"
    )
    (package / "round.py").write_text(
        "from ftcli_test_family import WIDGETS\n\n@WIDGETS.register('round')\ndef build():\n    return 'o'\n"
    )
    (package / "_private.py").write_text("raise RuntimeError('modules starting with _ are not members')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        from ftcli_test_family import WIDGETS  # type: ignore[import-not-found]

        assert WIDGETS.get("round")() == "o"
        assert WIDGETS.names() == ["round"]
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("ftcli_test_family")]:
            del sys.modules[name]


@pytest.mark.parametrize("group", sorted(REGISTRIES))
def test_every_registered_name_has_its_config_file(group: str) -> None:
    """`ftcli ls` reads the config folders: a registered name without a YAML would be invisible there."""
    options = group_options()[group]
    configured_names = set()
    from omegaconf import OmegaConf

    from ftcli.command_line.config_groups import config_dir

    for option in options:
        node = OmegaConf.load(config_dir() / group / f"{option}.yaml")
        # data=torchvision is dispatched on data.source (its data.name is the torchvision dataset)
        configured_names.add(str(node.get("source") or node.get("name")))
    # strategy=auto is not a strategy of its own: the advisor replaces it with one of the registered ones
    expected = set(REGISTRIES[group].names()) | ({"auto"} if group == "strategy" else set())
    assert expected == configured_names
