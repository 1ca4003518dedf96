"""Data sources, chosen by ``data.source`` or else ``data.name``: one module each in this folder, registered
with :func:`data_source`.

A new source is one module here (a subclass of ``ClassificationDataModule``; for images,
``ImageDataModule`` or ``FileDataModule``; for texts, ``TextDataModule``) plus its YAML in
``configs/data/``. Every module here whose name does not start with ``_`` is imported by the registry
and must register a source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ftcli.data.checks import plain_config
from ftcli.registry import Registry

if TYPE_CHECKING:
    from ftcli.data.datamodule import ClassificationDataModule

Source = type["ClassificationDataModule"]

DATA_SOURCES: Registry[Source] = Registry("data", key="data.name", package=__name__)


def data_source(name: str) -> Callable[[Source], Source]:
    """Class decorator: make a datamodule available as ``data.name=<name>``."""

    def add(cls: Source) -> Source:
        cls.name = name
        return DATA_SOURCES.register(name)(cls)

    return add


def data_source_class(cfg: Mapping[str, Any]) -> Source:
    """The datamodule class ``cfg`` (the ``data`` node) names, without building it (see below)."""
    plain = plain_config(cfg)
    return DATA_SOURCES.get(plain.get("source") or plain.get("name"))


def holds_texts(cfg: Mapping[str, Any]) -> bool:
    """Whether the source ``cfg`` names holds texts (a ``TextDataModule``), else images."""
    from ftcli.data.text.datamodule import TextDataModule

    return issubclass(data_source_class(cfg), TextDataModule)


def text_sources() -> list[str]:
    """The names of the sources that hold texts (``ftcli.data.text``), sorted."""
    from ftcli.data.text.datamodule import TextDataModule

    return sorted(name for name, cls in DATA_SOURCES.items() if issubclass(cls, TextDataModule))


def build_datamodule(cfg: Mapping[str, Any], spec: Any, seed: int) -> ClassificationDataModule:
    """The datamodule of ``cfg`` (the ``data`` config node): the source named by ``cfg["source"]``, else
    by ``cfg["name"]``. ``source`` is for a source whose ``name`` means something else: with
    ``data=torchvision``, ``source: torchvision`` picks the module and ``name`` is the dataset.
    ``spec`` is the modality's preprocessing as plain data (a ``TransformSpec`` for images)."""
    return data_source_class(cfg)(plain_config(cfg), spec, seed)
