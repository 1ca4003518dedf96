"""What an ftcli checkpoint holds beside its tensors, written and read in one place.

A checkpoint is self-describing (docs/ARCHITECTURE.md): under the key ``ftcli`` it stores the
class names, the resolved model/recipe/strategy/data config, the eval transform, the block names,
the seed, where its weights came from, and (added at each save) the strategy's phases and the phase
reached. ``eval``, ``predict``, ``export``, ``inspect``, ``resume`` and chaining
(``model.weights=PATH``) all read it through :func:`read`, which checks the format version, that
the keys the reader needs are there, that no stored config names code to instantiate, the type of
every stored key (:func:`check_metadata`), that the head's outputs match the class names and that
every weight is finite (:func:`check_tensors`). The archive's own CRCs were checked when the file
was read (``ftcli.model.weights_file.read_file``). A value that fails says it came from the checkpoint.

Format history: 1 (this one) adds ``format``; checkpoints written before it carry no ``format``
and the same keys, and are read as format 0. Imports no torch at module level.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ftcli import __version__
from ftcli.errors import WeightsError
from ftcli.runs.safe_config import check_targets

KEY = "ftcli"
FORMAT = 1
# The keys stored under ``ftcli`` (docs/ARCHITECTURE.md, "What a checkpoint stores"): written and read
# through these names only.
FORMAT_KEY = "format"
VERSION = "version"
CLASS_NAMES = "class_names"
NUM_CLASSES = "num_classes"
MODEL = "model"
RECIPE = "recipe"
STRATEGY = "strategy"
TRANSFORM = "transform"
BLOCKS = "blocks"
DATA = "data"
SEED = "seed"
CHAINED_FROM = "chained_from"
ADVICE = "advice"
# an adapter run (strategy=lora): the adapter options, where they sit, and the fingerprint of the base
# weights the checkpoint leaves out (``ftcli.finetune.adapters``); added at each save
ADAPTERS = "adapters"
# the training options as the run used them (``with_training``): no reader needs them
LOSS = "loss"
MIXUP = "mixup"
EMA = "ema"
DECAY_NORM_AND_BIAS = "decay_norm_and_bias"
# added at every save (``attach``)
SCHEDULE = "schedule"
PHASE = "phase"
# What each reader needs (``read(..., needs=...)``).
FOR_MODEL = (MODEL, RECIPE, CLASS_NAMES, TRANSFORM)  # rebuild the trained network
FOR_RESUME = (BLOCKS, NUM_CLASSES)  # continue training the same network
CHECKPOINT_HINT = (
    "Give a checkpoint written by `ftcli train`: <run dir>/checkpoints/best.ckpt (or last.ckpt)."
)


def build(
    *,
    class_names: list[str],
    model: dict[str, Any],
    recipe: dict[str, Any],
    strategy: dict[str, Any],
    transform: dict[str, Any],
    blocks: list[str],
    data: dict[str, Any],
    seed: int,
    chained_from: str | None,
    advice: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata known before training starts (plain types only: loads with ``weights_only``)."""
    return {
        FORMAT_KEY: FORMAT,
        VERSION: __version__,
        CLASS_NAMES: list(class_names),
        NUM_CLASSES: len(class_names),
        MODEL: model,
        RECIPE: recipe,
        STRATEGY: strategy,
        TRANSFORM: transform,
        BLOCKS: list(blocks),
        # the whole data config and the seed: eval rebuilds the same splits from the checkpoint alone
        DATA: data,
        SEED: int(seed),
        CHAINED_FROM: chained_from,
        # strategy=auto: the advisor's decision and what it measured (``ftcli.advice``)
        ADVICE: advice,
    }


def with_training(
    meta: Mapping[str, Any],
    *,
    loss: dict[str, Any],
    mixup: dict[str, Any],
    ema: dict[str, Any],
    decay_norm_and_bias: bool,
) -> dict[str, Any]:
    """``meta`` plus the training options the run used (the Lightning module adds them)."""
    return {**meta, LOSS: loss, MIXUP: mixup, EMA: ema, DECAY_NORM_AND_BIAS: bool(decay_norm_and_bias)}


def attach(
    checkpoint: dict[str, Any], meta: Mapping[str, Any], schedule: list[dict[str, Any]], phase: dict[str, Any]
) -> None:
    """Store ``meta`` plus the training progress (phases, the phase reached) in a checkpoint being saved."""
    checkpoint[KEY] = {**meta, SCHEDULE: schedule, PHASE: phase}


def is_ftcli_checkpoint(loaded: Mapping[str, Any]) -> bool:
    """Whether a loaded file is a checkpoint written by ftcli (self-describing)."""
    return isinstance(loaded.get(KEY), dict) and "state_dict" in loaded


def read(loaded: Mapping[str, Any], path: Path, needs: Iterable[str] = ()) -> dict[str, Any]:
    """The metadata of an ftcli checkpoint, checked; a WeightsError saying what is wrong otherwise."""
    if not is_ftcli_checkpoint(loaded):
        raise WeightsError(
            f"{path} is not an ftcli checkpoint (it has no '{KEY}' metadata).", CHECKPOINT_HINT
        )
    meta = dict(loaded[KEY])
    written = meta.get(FORMAT_KEY, 0)
    if not isinstance(written, int) or written > FORMAT:
        raise WeightsError(
            f"{path} was written by a newer ftcli (checkpoint format {written}, "
            f"ftcli {meta.get(VERSION, '?')}); this ftcli {__version__} reads formats up to {FORMAT}.",
            "Upgrade ftcli (pip install -U ftcli) to read it.",
        )
    missing = [key for key in needs if key not in meta]
    if missing:
        raise WeightsError(f"{path}: its ftcli metadata lacks {', '.join(missing)}.", CHECKPOINT_HINT)
    # The stored config is data: refuse it when it names code to instantiate outside the allowlist.
    check_targets(meta, str(path))
    check_metadata(meta, path)
    check_tensors(loaded, meta, path)
    return meta


# The type of every stored key (checked when present: older checkpoints may lack some).
_MAPPING, _TEXT, _WHOLE, _LIST, _FLAG = "a mapping", "a string", "a whole number", "a list", "true or false"
FIELD_TYPES: dict[str, tuple[str, bool]] = {  # key -> (what it must be, whether null is allowed)
    VERSION: (_TEXT, True),
    CLASS_NAMES: (_LIST, False),
    NUM_CLASSES: (_WHOLE, False),
    MODEL: (_MAPPING, False),
    RECIPE: (_MAPPING, False),
    STRATEGY: (_MAPPING, False),
    TRANSFORM: (_MAPPING, False),
    BLOCKS: (_LIST, False),
    DATA: (_MAPPING, True),
    SEED: (_WHOLE, False),
    CHAINED_FROM: (_TEXT, True),
    ADVICE: (_MAPPING, True),
    LOSS: (_MAPPING, True),
    MIXUP: (_MAPPING, True),
    EMA: (_MAPPING, True),
    DECAY_NORM_AND_BIAS: (_FLAG, True),
    SCHEDULE: (_LIST, True),
    PHASE: (_MAPPING, True),
    ADAPTERS: (_MAPPING, True),
}
DAMAGED_HINT = (
    "The checkpoint was edited or damaged after `ftcli train` wrote it; use another checkpoint of the run "
    "(best.ckpt or last.ckpt) or train again."
)


def _is(value: Any, kind: str) -> bool:
    if kind == _MAPPING:
        return isinstance(value, Mapping)
    if kind == _TEXT:
        return isinstance(value, str)
    if kind == _WHOLE:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _FLAG:
        return isinstance(value, bool)
    return isinstance(value, list)


def _damaged(path: Path, what: str) -> WeightsError:
    return WeightsError(f"{path}: the checkpoint's ftcli metadata is invalid: {what}.", DAMAGED_HINT)


def check_metadata(meta: Mapping[str, Any], path: Path) -> None:
    """Types of the stored keys, and their consistency with each other; values that fail say they came
    from the checkpoint (a WeightsError naming ``ftcli.KEY``)."""
    for key, (kind, nullable) in FIELD_TYPES.items():
        if key not in meta or (nullable and meta[key] is None):
            continue
        if not _is(meta[key], kind):
            raise _damaged(path, f"ftcli.{key} is {type(meta[key]).__name__} {meta[key]!r:.60}, not {kind}")
    names = meta.get(CLASS_NAMES)
    if names is not None:
        if not names or not all(isinstance(n, str) and n for n in names):
            raise _damaged(path, f"ftcli.class_names must be non-empty strings, got {names!r:.80}")
        if len(set(names)) != len(names):
            raise _damaged(path, f"ftcli.class_names repeats a name: {names!r:.80}")
        if NUM_CLASSES in meta and meta[NUM_CLASSES] != len(names):
            raise _damaged(
                path, f"ftcli.num_classes is {meta['num_classes']} but it lists {len(names)} class names"
            )
    if BLOCKS in meta and not all(isinstance(b, str) for b in meta[BLOCKS]):
        raise _damaged(path, f"ftcli.blocks must be block names, got {meta['blocks']!r:.80}")
    model = meta.get(MODEL)
    if model is not None:
        if not isinstance(model.get("name"), str) or not model.get("name"):
            raise _damaged(path, f"ftcli.model.name must be a model name, got {model.get('name')!r:.60}")
        if model.get("kwargs") is not None and not isinstance(model["kwargs"], Mapping):
            raise _damaged(path, f"ftcli.model.kwargs must be a mapping, got {model['kwargs']!r:.60}")
    for key in (RECIPE, STRATEGY):
        name = (meta.get(key) or {}).get("name")
        if key in meta and name is not None and not isinstance(name, str):
            raise _damaged(path, f"ftcli.{key}.name must be a name, got {name!r:.60}")
    phase = meta.get(PHASE)
    if phase:
        for key in ("index", "count"):
            if key in phase and not _is(phase[key], _WHOLE):
                raise _damaged(path, f"ftcli.phase.{key} must be a whole number, got {phase[key]!r:.60}")
    for item in meta.get(SCHEDULE) or []:
        if not isinstance(item, Mapping):
            raise _damaged(path, "ftcli.schedule must be a list of phases (mappings)")
        for key in ("start_epoch", "epochs"):
            if item.get(key) is not None and not _is(item[key], _WHOLE):
                raise _damaged(path, f"ftcli.schedule[].{key} must be a whole number, got {item[key]!r:.60}")
    adapters = meta.get(ADAPTERS)
    if adapters:
        fingerprint = adapters.get("base_fingerprint")
        if not isinstance(fingerprint, str) or len(fingerprint) != 64:
            raise _damaged(path, f"ftcli.adapters.base_fingerprint must be a sha256, got {fingerprint!r:.60}")
        if not isinstance(adapters.get("options"), Mapping):
            raise _damaged(path, "ftcli.adapters.options must be a mapping of the adapter keys")
    if TRANSFORM in meta:
        check_transform(meta[TRANSFORM], path)


def check_transform(stored: Mapping[str, Any], path: Path) -> None:
    """The stored preprocessing of either modality: a text model's ``TextSpec`` (``kind: tokens``: a
    tokenizer folder and a ``max_length`` of at least 2), else an image ``TransformSpec``."""
    from ftcli.data.images.transforms import TransformSpec  # torch: imported when a checkpoint is read
    from ftcli.data.text.spec import KIND
    from ftcli.errors import FtcliError

    if stored.get("kind") == KIND:
        tokenizer, max_length = stored.get("tokenizer"), stored.get("max_length")
        if not isinstance(tokenizer, str) or not tokenizer:
            raise _damaged(path, f"ftcli.transform.tokenizer must be a folder, got {tokenizer!r:.60}")
        if not _is(max_length, _WHOLE) or max_length < 2:
            raise _damaged(
                path, f"ftcli.transform.max_length must be a whole number >= 2, got {max_length!r:.60}"
            )
        return
    try:
        TransformSpec.from_dict(stored)
    except (FtcliError, TypeError, ValueError) as err:
        message = err.message if isinstance(err, FtcliError) else str(err)
        raise _damaged(path, f"ftcli.transform: {message.rstrip('.')}") from err


def check_tensors(loaded: Mapping[str, Any], meta: Mapping[str, Any], path: Path) -> None:
    """The tensors fit the metadata (the head's outputs are the class names) and are all finite."""
    state = loaded.get("state_dict")
    if not isinstance(state, Mapping):
        raise _damaged(path, f"its state_dict is {type(state).__name__}, not a mapping of tensors")
    tensors = model_state(loaded)
    names = meta.get(CLASS_NAMES)
    if names is not None:
        head = [(k, v) for k, v in tensors.items() if k.startswith("blocks.head.") and v.dim() >= 1]
        weights = [(k, v) for k, v in head if k.endswith(".weight") and v.dim() == 2]
        last = weights[-1] if weights else None
        if last is not None and last[1].shape[0] != len(names):
            raise _damaged(
                path,
                f"it lists {len(names)} class names but its head ({last[0]}) has {last[1].shape[0]} outputs",
            )
    check_finite(tensors, path)


def check_finite(tensors: Mapping[str, Any], path: Path) -> None:
    """Refuse weights holding NaN or inf (a run that diverged): no reader may use them."""
    import torch

    bad = [
        name
        for name, t in tensors.items()
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if bad:
        raise WeightsError(
            f"{path}: the checkpoint holds NaN/inf weights in {len(bad)} tensor(s), e.g. {bad[0]}.",
            "The run that wrote it diverged or the file was damaged: use an earlier checkpoint "
            "(best.ckpt), or train again with a lower optimizer.lr.",
        )


def check_optimizer_states(loaded: Mapping[str, Any], path: Path) -> None:
    """Refuse to resume from optimizer and LR-scheduler states holding NaN or inf (a moment estimate or a
    learning rate gone non-finite): the first step would turn every weight into NaN."""
    import torch

    def non_finite(value: Any, where: str) -> Iterator[str]:
        if isinstance(value, torch.Tensor):
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                yield where
        elif isinstance(value, float) and not math.isfinite(value):
            yield where
        elif isinstance(value, Mapping):
            for key, item in value.items():
                yield from non_finite(item, f"{where}.{key}")
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                yield from non_finite(item, f"{where}[{index}]")

    bad = [
        where for key in ("optimizer_states", "lr_schedulers") for where in non_finite(loaded.get(key), key)
    ]
    if bad:
        raise WeightsError(
            f"{path}: the checkpoint's optimizer state holds NaN/inf in {len(bad)} value(s), e.g. {bad[0]}; "
            "resuming would make every weight NaN.",
            "Resume from an earlier checkpoint, or start from its weights with a fresh optimizer: "
            f"model.weights={path} (the weights are checked too).",
        )


def find(loaded: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """:func:`read` for a file that may be any weights file: ``{}`` when it is not an ftcli checkpoint
    (whose tensors must be finite all the same)."""
    if is_ftcli_checkpoint(loaded):
        return read(loaded, path)
    state = loaded["state_dict"] if isinstance(loaded.get("state_dict"), Mapping) else loaded
    check_finite(state, path)
    return {}


def model_state(loaded: Mapping[str, Any]) -> dict[str, Any]:
    """An ftcli checkpoint's network tensors in BlockNet names, head included (chaining, eval, export)."""
    import torch  # here, not at the top: the commands' --help reads CHECKPOINT_HINT without torch

    state = loaded.get("state_dict", {})
    prefix = "model."
    return {
        k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix) and isinstance(v, torch.Tensor)
    }
