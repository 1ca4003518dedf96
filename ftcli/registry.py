"""One registry idiom for every pluggable family: backbone families, strategies, data sources,
optimizers, schedulers and loggers.

A family is a package whose ``__init__`` creates a :class:`Registry`; every other module in that
package registers its members with ``@REGISTRY.register("name")``. The registry imports the
package's modules the first time it is asked for a name, so adding a member means adding one
module (plus its YAML in ``configs/``), never editing a list elsewhere. An unknown name is a
ConfigError that lists the valid ones. Imports no torch (docs/ARCHITECTURE.md, import rules).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ftcli.errors import ConfigError, unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> member (a builder function or class) of one pluggable family."""

    def __init__(self, kind: str, key: str, package: str | None = None) -> None:
        """``kind`` names the family in errors, ``key`` is the config key that picks a member,
        ``package`` is the package whose modules register members (imported on first use)."""
        self.kind = kind
        self.key = key
        self.package = package
        self._members: dict[str, T] = {}
        self._discovered = package is None

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: make the decorated builder available under ``name``."""

        def add(member: T) -> T:
            if name in self._members and self._members[name] is not member:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._members[name] = member
            return member

        return add

    def get(self, name: object) -> T:
        """The member called ``name``; a ConfigError listing the valid names otherwise."""
        self._discover()
        if not isinstance(name, str) or name not in self._members:
            raise self.unknown(name)
        return self._members[name]

    def unknown(self, name: object) -> ConfigError:
        """The error for a name that is not registered (for callers that look names up themselves)."""
        return unknown_name(self.kind, name, self.names(), key=self.key)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._discover()
        return sorted(self._members)

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, member) pairs in registration order."""
        self._discover()
        return iter(list(self._members.items()))

    def __iter__(self) -> Iterator[str]:
        """The registered names, sorted."""
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._members

    def _discover(self) -> None:
        """Import every module of the family's package once, so each registers its members."""
        if self._discovered or self.package is None:
            return
        self._discovered = True
        package = importlib.import_module(self.package)
        for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if not module.name.startswith("_"):
                importlib.import_module(f"{self.package}.{module.name}")
