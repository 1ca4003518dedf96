"""Backbone families: which model names belong to a family, and how its models are cut into blocks.

Each module here registers its families with :func:`family`; ``ftcli.model.backbones`` finds a
model's family by its name's prefix. A new family is one new module in this folder; its mapper's
``BlockMap`` declares what the models take as input (``BlockMap.input``, a ``ModelInput``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ftcli.model.block_map import BlockMap
from ftcli.registry import Registry

Mapper = Callable[[nn.Module], BlockMap]


@dataclass(frozen=True)
class Family:
    """A supported family: the model-name prefixes that belong to it and its block mapper."""

    prefixes: tuple[str, ...]
    mapper: Mapper


BACKBONE_FAMILIES: Registry[Family] = Registry("model family", key="model.name", package=__name__)


def family(name: str, *prefixes: str) -> Callable[[Mapper], Mapper]:
    """Decorator: register a block mapper for the models whose names start with ``prefixes``."""

    def add(mapper: Mapper) -> Mapper:
        BACKBONE_FAMILIES.register(name)(Family(tuple(prefixes), mapper))
        return mapper

    return add
