"""Data sources, chosen by ``data.source`` or else ``data.name``: one module each in this folder, registered
with :func:`data_source`.

A new source is one module here (a subclass of ``ImageDataModule`` or ``FileDataModule``) plus its
YAML in ``configs/data/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ftcli.data.checks import plain_config
from ftcli.registry import Registry

if TYPE_CHECKING:
    from ftcli.data.datamodule import ImageDataModule
    from ftcli.data.images.transforms import TransformSpec

DATA_SOURCES: Registry[type[ImageDataModule]] = Registry("data", key="data.name", package=__name__)


def data_source(name: str) -> Callable[[type[ImageDataModule]], type[ImageDataModule]]:
    """Class decorator: make a datamodule available as ``data.name=<name>``."""

    def add(cls: type[ImageDataModule]) -> type[ImageDataModule]:
        cls.name = name
        return DATA_SOURCES.register(name)(cls)

    return add


def build_datamodule(cfg: Mapping[str, Any], spec: TransformSpec, seed: int) -> ImageDataModule:
    """The datamodule of ``cfg`` (the ``data`` config node): the source named by ``cfg["source"]``, else
    by ``cfg["name"]``. ``source`` is for a source whose ``name`` means something else: with
    ``data=torchvision``, ``source: torchvision`` picks the module and ``name`` is the dataset."""
    plain = plain_config(cfg)
    return DATA_SOURCES.get(plain.get("source") or plain.get("name"))(plain, spec, seed)
