"""A trained model rebuilt from its ftcli checkpoint alone: network, class names, eval preprocessing.

``eval``, ``predict`` and ``export`` need nothing but the checkpoint (a checkpoint is
self-describing, docs/ARCHITECTURE.md): its metadata (``ftcli.runs.checkpoint_schema``) names the
backbone, the recipe, the classes and the eval transform, and its tensors load with
``weights_only=True`` through :func:`ftcli.model.weights_file.read_file`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftcli.errors import FtcliError, WeightsError
from ftcli.runs import checkpoint_schema
from ftcli.runs.checkpoint_schema import CHECKPOINT_HINT


@dataclass
class TrainedModel:
    """A network in eval mode with what it needs to be used: its classes and its preprocessing."""

    path: Path
    net: Any  # BlockNet (typed loosely so this module imports no torch at import time)
    class_names: list[str]
    transform: Any  # TransformSpec (images) or TextSpec (text)
    meta: dict[str, Any]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def reads_text(self) -> bool:
        """Whether the network takes token ids (a text model) rather than images: what its family
        declared (``BlockNet.input``), so every command feeds it the same way."""
        return getattr(getattr(self.net, "input", None), "modality", "image") == "tokens"

    @property
    def run_dir(self) -> Path:
        """The training run the checkpoint belongs to (where later commands write by default)."""
        return run_dir_of(self.path)

    @property
    def label(self) -> str:
        """e.g. ``resnet18 · last_layers · 5 classes``."""
        strategy = self.meta.get(checkpoint_schema.STRATEGY, {}).get("name", "?")
        return f"{self.meta[checkpoint_schema.MODEL]['name']} · {strategy} · {self.num_classes} classes"


def run_dir_of(checkpoint: Path) -> Path:
    """``<run>/checkpoints/best.ckpt`` -> ``<run>``; a checkpoint elsewhere -> its folder."""
    parent = checkpoint.resolve().parent
    return parent.parent if parent.name == "checkpoints" else parent


def checkpoint_path(value: str | None) -> Path:
    """Check ``ckpt=`` before anything heavy is imported: the file must exist."""
    if value in (None, ""):
        raise WeightsError("ckpt= is required: the checkpoint of a training run.", CHECKPOINT_HINT)
    path = Path(str(value)).expanduser()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "no such file"
        raise WeightsError(f"ckpt={value}: {what}.", CHECKPOINT_HINT)
    return path


def input_spec(stored: dict[str, Any], tokenizer_folder: Path | None) -> Any:
    """The stored preprocessing: a ``TextSpec`` for a text model (its tokenizer found again on this
    machine: the folder in the checkpoint may be another machine's), else a ``TransformSpec``."""
    from ftcli.data.images.transforms import TransformSpec
    from ftcli.data.text.spec import KIND, TextSpec

    if stored.get("kind") == KIND:
        spec = TextSpec.from_dict(stored)
        if tokenizer_folder is not None and not Path(spec.tokenizer).is_dir():
            spec = TextSpec(str(tokenizer_folder), spec.max_length)
        return spec
    return TransformSpec.from_dict(stored)


def load(path: Path) -> TrainedModel:
    """Rebuild the trained network from the checkpoint's metadata and load every tensor (strict). A LoRA
    checkpoint holds its adapters and head only: its base is rebuilt from the weights the run started
    from and must have the fingerprint the checkpoint stored."""
    from ftcli.model import hf_models
    from ftcli.model.weights_file import read_file
    from ftcli.runs.weights_source import build_network, starting_weights

    loaded = read_file(path)
    meta = checkpoint_schema.read(loaded, path, needs=checkpoint_schema.FOR_MODEL)
    model_meta = meta[checkpoint_schema.MODEL]
    model_name = str(model_meta["name"])
    class_names = [str(c) for c in meta[checkpoint_schema.CLASS_NAMES]]
    adapters = meta.get(checkpoint_schema.ADAPTERS)
    try:  # every value here comes from the checkpoint: an error says so
        recipe = dict(meta[checkpoint_schema.RECIPE])
        kwargs = dict(model_meta.get("kwargs") or {})
        kwargs.pop(hf_models.REMOTE_CODE, None)  # a checkpoint never turns a model folder's own code on
        # a LoRA checkpoint's base from its source; otherwise every tensor is in the checkpoint: no weights
        start = starting_weights(model_name, model_meta.get("weights") if adapters else None)
        grouping = model_meta.get("layers_per_block", "auto")  # absent in checkpoints before the key
        net, _ = build_network(model_name, kwargs, start, recipe, len(class_names), layers_per_block=grouping)
        transform = input_spec(meta[checkpoint_schema.TRANSFORM], start.hf_folder)
    except (FtcliError, TypeError, ValueError, KeyError, RuntimeError) as err:
        message = err.message if isinstance(err, FtcliError) else f"{type(err).__name__}: {err}"
        raise WeightsError(
            f"{path}: the network its ftcli metadata describes cannot be rebuilt: {message}",
            checkpoint_schema.DAMAGED_HINT,
        ) from err
    state = checkpoint_schema.model_state(loaded)
    if adapters:
        state = _with_base(net, state, adapters, path, start.source.label)
    try:
        result = net.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a tensor of another shape than the network the metadata describes
        first = next((line.strip() for line in str(err).splitlines() if "size mismatch" in line), str(err))
        raise WeightsError(
            f"{path}: its tensors do not fit the {model_name} it describes ({first[:300]}).",
            checkpoint_schema.DAMAGED_HINT,
        ) from err
    if result.missing_keys or result.unexpected_keys:
        example = (result.missing_keys or result.unexpected_keys)[0]
        raise WeightsError(
            f"{path}: its tensors do not fit the {model_name} it describes "
            f"({len(result.missing_keys)} missing, {len(result.unexpected_keys)} unexpected, "
            f"e.g. {example}).",
            "Was it written by another ftcli version? Re-train, or chain from it with model.weights=PATH.",
        )
    net.eval()
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return TrainedModel(path, net, class_names, transform, meta)


def _with_base(
    net: Any, state: dict[str, Any], stored: dict[str, Any], path: Path, source: str
) -> dict[str, Any]:
    """A LoRA checkpoint's tensors completed with the base: adapters inserted as the run inserted them,
    the base's fingerprint checked against the stored one."""
    from ftcli.model.adapters import AdapterOptions, base_fingerprint, check_base, insert

    insert(net, AdapterOptions.from_dict(stored["options"]))
    check_base(stored["base_fingerprint"], base_fingerprint(net, set(state)), str(path), source)
    return {**net.state_dict(), **state}
