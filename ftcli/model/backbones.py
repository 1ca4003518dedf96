"""Build a supported backbone (torchvision or timm) and cut it into blocks: the model layer's public face.

Every supported torchvision family (``ftcli.model.families``) and every timm model
(``ftcli.model.timm_blocks``) maps onto the same block shape (``BlockMap``), so strategies and
recipes mean the same thing for a ResNet, a ViT or an EfficientNet-Lite. ``model.name=timm/<name>``
selects timm; any other name is a torchvision model.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import torchvision
from torch import nn

from ftcli.errors import ConfigError, unknown_name
from ftcli.model import hf_models, text_blocks, timm_blocks, timm_models
from ftcli.model.block_map import BlockMap
from ftcli.model.blocks import BlockNet
from ftcli.model.families import BACKBONE_FAMILIES

TIMM = "timm"
HF = "hf"


def _match_family(name: str) -> str | None:
    """The family whose prefix the name starts with, or None."""
    return next((fam for fam, spec in BACKBONE_FAMILIES.items() if name.startswith(spec.prefixes)), None)


@lru_cache(maxsize=1)
def _backbones() -> tuple[str, ...]:
    names = torchvision.models.list_models(module=torchvision.models)
    return tuple(sorted(name for name in names if _match_family(name) is not None))


def supported_families() -> list[str]:
    """The supported model families, e.g. ``resnet``, ``vit``."""
    return BACKBONE_FAMILIES.names()


def list_backbones() -> list[str]:
    """Every torchvision classification model name of a supported family, sorted."""
    return list(_backbones())


def family_of(name: str) -> str:
    """The family of a torchvision model name (``timm`` for ``timm/<name>``); a ConfigError if unknown.

    The error lists the valid torchvision names, or timm's closest names for a ``timm/`` name.
    """
    if timm_models.is_timm(name):
        timm_models.check_name(name)
        return TIMM
    if hf_models.is_hf(name):
        hf_models.check_name(name)
        return HF
    family = _match_family(name) if name in _backbones() else None
    if family is None:
        raise unknown_name("model", name, list_backbones(), key="model.name")
    return family


def build_torchvision(name: str, weights: object | None = None, **kwargs: object) -> nn.Module:
    """Build a supported torchvision classifier (``weights`` as ``torchvision.models.get_model`` takes)."""
    family_of(name)
    try:
        return torchvision.models.get_model(name, weights=weights, **kwargs)
    except (TypeError, ValueError) as exc:  # the builder's signature (or its checks) refused model.kwargs
        if not kwargs:
            raise
        import re

        found = re.search(r"keyword argument '(\w+)'", str(exc))
        key = f"model.kwargs.{found.group(1)}" if found and found.group(1) in kwargs else "model.kwargs"
        raise ConfigError(
            f"{key}: {dict(kwargs)} is not accepted by the builder of {name} ({exc}).",
            "model.kwargs passes keyword arguments to torchvision.models.get_model; remove the unknown ones.",
        ) from exc


def build_model(
    name: str,
    kwargs: dict[str, object],
    enum_member: object | None = None,
    timm_file: Path | None = None,
    hf_folder: Path | None = None,
    hf_pretrained: bool = False,
) -> nn.Module:
    """Build ``model.name``: a torchvision model (``enum_member`` weights or random init), a timm one
    (random init, or timm's loader on ``timm_file``, a pretrained file of timm's own layout) or a
    transformers one (from ``hf_folder``: its weights when ``hf_pretrained``, else random init)."""
    if hf_models.is_hf(name):
        if hf_folder is None:
            raise ValueError("a transformers model is built from its folder (hf_models.model_folder)")
        return hf_models.build(hf_folder, hf_pretrained, dict(kwargs))
    if timm_models.is_timm(name):
        return timm_models.build(timm_models.check_name(name), kwargs, timm_file)
    return build_torchvision(name, enum_member, **kwargs)


def to_blocks(
    model: nn.Module, name: str, pool: str = "auto", layers_per_block: int | str = "auto"
) -> BlockMap:
    """Cut a model into its block map, reusing (not copying) its submodules; ``pool`` and
    ``layers_per_block``: a text model's pooling (``recipe.pool``) and grouping of transformer layers
    into blocks (``model.layers_per_block``, ``ftcli.model.text_blocks``), ``auto`` for images."""
    if hf_models.is_hf(name):
        block_map = text_blocks.to_blocks(model, text_blocks.check_pool(pool), layers_per_block)
        text_blocks.check_blocks_reproduce(model, block_map)
        return block_map
    if pool != "auto":
        raise ConfigError(
            f"recipe.pool={pool} applies to text models only.",
            "An image model pools with its own pooling layer: remove recipe.pool (or set it to auto).",
        )
    if layers_per_block != "auto":
        raise ConfigError(
            f"model.layers_per_block={layers_per_block} applies to text models only.",
            "An image model's blocks are its own stages: remove model.layers_per_block (or set it to auto).",
        )
    if timm_models.is_timm(name):
        return timm_blocks.to_blocks(model, timm_models.check_name(name))
    return BACKBONE_FAMILIES.get(family_of(name)).mapper(model)


def to_blocknet(
    model: nn.Module, name: str, pool: str = "auto", layers_per_block: int | str = "auto"
) -> tuple[BlockNet, BlockMap]:
    """The model as a BlockNet (stem, stages..., head = pool + classifier) and its block map."""
    bm = to_blocks(model, name, pool, layers_per_block)
    head = nn.Sequential(OrderedDict(pool=bm.pool, classifier=bm.classifier))
    return BlockNet(bm.blocks, head=head, family=bm.family, input=bm.input, notes=bm.notes), bm
