"""timm classifiers: ``model.name=timm/<name>``, their pretrained tags, and the preprocessing they expect.

timm gives one registry and one head API for ~1,300 architectures, each with a ``pretrained_cfg``
(input size, mean/std, interpolation, crop) and stage metadata (``feature_info``, used by
``ftcli.model.timm_blocks``). ftcli builds the model here and never downloads behind the user's back:
pretrained tags are looked up in the local caches first, and offline the error names where the file
should be and what to use instead, as torchvision's weights enums do.
"""

from __future__ import annotations

import difflib
import math
import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ftcli.errors import ConfigError, WeightsError

TIMM_PREFIX = "timm/"
# ``model.weights=DEFAULT``: timm's default pretrained tag of the architecture
DEFAULT_TAG = "DEFAULT"
HUB_HOST = "huggingface.co"


def is_timm(model_name: str) -> bool:
    """Whether ``model.name`` names a timm model (``timm/<name>``)."""
    return str(model_name).startswith(TIMM_PREFIX)


def architecture(model_name: str) -> str:
    """``timm/resnet18`` -> ``resnet18``."""
    return str(model_name)[len(TIMM_PREFIX) :]


@lru_cache(maxsize=1)
def _architectures() -> frozenset[str]:
    import timm

    return frozenset(timm.list_models())


def check_name(model_name: str) -> str:
    """The timm architecture of ``model.name``; a ConfigError with close matches when timm has none."""
    arch = architecture(model_name)
    if "." in arch:
        base, _, tag = arch.partition(".")
        raise ConfigError(
            f"model.name={model_name}: a pretrained tag goes in model.weights, not in the name.",
            f"Use model.name={TIMM_PREFIX}{base} model.weights={tag}.",
        )
    names = _architectures()
    if arch not in names:
        close = difflib.get_close_matches(arch, sorted(names), n=8, cutoff=0.6)
        close += sorted(n for n in names if arch and arch in n and n not in close)[: max(0, 8 - len(close))]
        shown = ", ".join(f"{TIMM_PREFIX}{n}" for n in close) or "none"
        raise ConfigError(
            f"Unknown timm model '{arch}' (model.name={model_name}).",
            f"Close matches: {shown}. timm has {len(names)} models: "
            "python -c \"import timm; print(timm.list_models('*PATTERN*'))\" lists them.",
        )
    return arch


def pretrained_tags(arch: str) -> list[str]:
    """The pretrained tags timm knows for ``arch`` (``a1_in1k``, ``tv_in1k``...), default first."""
    import timm

    return [name.partition(".")[2] for name in timm.list_pretrained(f"{arch}.*") if "." in name]


def build(arch: str, kwargs: dict[str, Any], weights_file: Path | None = None) -> nn.Module:
    """Build ``arch`` with random init, or with timm's loader from a local pretrained file.

    ``weights_file`` is a file of timm's own pretrained layout (a cached hub download): timm adapts it
    (classifier, input channels) exactly as when it downloads it.
    """
    import timm

    extra: dict[str, Any] = {}
    if weights_file is not None:
        extra = {"pretrained": True, "pretrained_cfg_overlay": {"file": str(weights_file)}}
    try:
        model = timm.create_model(arch, **extra, **kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"model.kwargs={kwargs} is not accepted by timm/{arch} ({exc}).",
            "model.kwargs passes keyword arguments to timm.create_model; remove the unknown ones.",
        ) from exc
    if int(getattr(model, "num_classes", 0) or 0) == 0 or not hasattr(model, "get_classifier"):
        raise ConfigError(
            f"timm/{arch} is not a classifier: it has no classification head (it outputs features or "
            "embeddings), so there is no head to replace.",
            "ftcli fine-tunes classifiers: pick a timm model with an ImageNet head, e.g. "
            "timm/resnet50, timm/convnext_tiny, timm/vit_small_patch16_224.",
        )
    return model


def eval_preprocessing(arch: str, tag: str | None = None) -> dict[str, Any]:
    """The eval transform timm's pretrained ``arch.tag`` (default tag if None) was made with.

    From timm's ``pretrained_cfg``, with timm's own arithmetic: resize the short side to
    floor(size / crop_pct), centre-crop ``size``.
    """
    import timm

    cfg = timm.models.get_pretrained_cfg(f"{arch}.{tag}" if tag else arch)
    side = int((cfg.input_size if cfg else (3, 224, 224))[-1])
    crop_pct = float((cfg.crop_pct if cfg else None) or 0.875)
    interpolation = str((cfg.interpolation if cfg else None) or "bicubic")
    return {
        "resize": math.floor(side / crop_pct),
        "crop": side,
        "mean": tuple(float(v) for v in (cfg.mean if cfg else (0.485, 0.456, 0.406))),
        "std": tuple(float(v) for v in (cfg.std if cfg else (0.229, 0.224, 0.225))),
        "interpolation": interpolation if interpolation in ("bilinear", "bicubic", "nearest") else "bicubic",
    }


def check_tag(arch: str, tag: str) -> str:
    """``tag`` if timm has pretrained weights of that tag for ``arch``; else a WeightsError listing them."""
    tags = pretrained_tags(arch)
    if tag == DEFAULT_TAG and tags:
        return tags[0]
    if tag in tags:
        return tag
    shown = ", ".join([DEFAULT_TAG, *tags]) if tags else "none"
    raise WeightsError(
        f"model.weights={tag} is not a pretrained tag of timm/{arch} (its tags: {shown}).",
        "Use one of those tags, model.weights=null (random init) or model.weights=PATH to a weights file.",
    )


def cached_weights(arch: str, tag: str) -> Path:
    """The local file of timm's pretrained ``arch.tag``: from the caches, else downloaded when online.

    Offline and uncached is a WeightsError naming the cache location, found in seconds (the hub
    client would otherwise retry for about a minute).
    """
    import timm

    cfg = timm.models.get_pretrained_cfg(f"{arch}.{tag}")
    hub_id = getattr(cfg, "hf_hub_id", None)
    url = getattr(cfg, "url", None)
    found = _in_hub_cache(hub_id) if hub_id else None
    if found is None and url:
        candidate = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])
        found = candidate if candidate.is_file() else None
    if found is not None:
        return found
    where = _cache_location(hub_id)
    reason = _offline_reason()
    if reason is None:
        try:
            return _download(hub_id, url)
        except Exception as exc:  # hub errors, HTTP errors, a truncated download
            reason = f"{type(exc).__name__}: {exc}"
    raise WeightsError(
        f"The weights timm/{arch}.{tag} are not in the cache and could not be downloaded ({reason}).",
        f"Cache location: {where}\n"
        "Download them there on a machine with internet (the same ftcli command does it), or use "
        "model=efficientnet_lite0 (ImageNet weights installed with ftcli), model.weights=null "
        "(random init), or model.weights=PATH to a .safetensors / .pth / .bin file.",
    )


def _in_hub_cache(hub_id: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    repo, _, revision = hub_id.partition("@")
    for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename, revision=revision or None)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def _cache_location(hub_id: str | None) -> str:
    if hub_id:
        from huggingface_hub.constants import HF_HUB_CACHE

        return f"{HF_HUB_CACHE} (Hugging Face hub, repo {hub_id})"
    return str(Path(torch.hub.get_dir()) / "checkpoints")


def _offline_reason() -> str | None:
    """Why a download cannot work, found quickly; None when the hub host answers."""
    for variable in ("FTCLI_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(variable, "") not in ("", "0"):
            return f"{variable} is set"
    try:
        socket.create_connection((HUB_HOST, 443), timeout=5).close()
    except OSError as exc:
        return f"{HUB_HOST} cannot be reached: {exc}"
    return None


def _download(hub_id: str | None, url: str | None) -> Path:
    if hub_id:
        from huggingface_hub import hf_hub_download

        repo, _, revision = hub_id.partition("@")
        return Path(hf_hub_download(repo, "model.safetensors", revision=revision or None))
    assert url, "a pretrained cfg has a hub id or a url"
    torch.hub.load_state_dict_from_url(url, progress=True)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])
