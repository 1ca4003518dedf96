"""What an ftcli checkpoint holds beside its tensors, written and read in one place.

A checkpoint is self-describing (docs/ARCHITECTURE.md): under the key ``ftcli`` it stores the
class names, the resolved model/recipe/strategy/data config, the eval transform, the block names,
the seed, where its weights came from, and (added at each save) the strategy's phases and the phase
reached. ``eval``, ``predict``, ``export``, ``inspect``, ``resume`` and chaining
(``model.weights=PATH``) all read it through :func:`read`, which checks the format version, that
the keys the reader needs are there, and that no stored config names code to instantiate.

Format history: 1 (this one) adds ``format``; checkpoints written before it carry no ``format``
and the same keys, and are read as format 0. Imports no torch at module level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ftcli import __version__
from ftcli.errors import WeightsError
from ftcli.runs.safe_config import check_targets

KEY = "ftcli"
FORMAT = 1
# What each reader needs (``read(..., needs=...)``).
FOR_MODEL = ("model", "recipe", "class_names", "transform")  # rebuild the trained network
FOR_RESUME = ("blocks", "num_classes")  # continue training the same network
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
        "format": FORMAT,
        "version": __version__,
        "class_names": list(class_names),
        "num_classes": len(class_names),
        "model": model,
        "recipe": recipe,
        "strategy": strategy,
        "transform": transform,
        "blocks": list(blocks),
        # the whole data config and the seed: eval rebuilds the same splits from the checkpoint alone
        "data": data,
        "seed": int(seed),
        "chained_from": chained_from,
        # strategy=auto: the advisor's decision and what it measured (``ftcli.training.advice``)
        "advice": advice,
    }


def attach(
    checkpoint: dict[str, Any], meta: Mapping[str, Any], schedule: list[dict[str, Any]], phase: dict[str, Any]
) -> None:
    """Store ``meta`` plus the training progress (phases, the phase reached) in a checkpoint being saved."""
    checkpoint[KEY] = {**meta, "schedule": schedule, "phase": phase}


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
    written = meta.get("format", 0)
    if not isinstance(written, int) or written > FORMAT:
        raise WeightsError(
            f"{path} was written by a newer ftcli (checkpoint format {written}, "
            f"ftcli {meta.get('version', '?')}); this ftcli {__version__} reads formats up to {FORMAT}.",
            "Upgrade ftcli (pip install -U ftcli) to read it.",
        )
    missing = [key for key in needs if key not in meta]
    if missing:
        raise WeightsError(f"{path}: its ftcli metadata lacks {', '.join(missing)}.", CHECKPOINT_HINT)
    # The stored config is data: refuse it when it names code to instantiate outside the allowlist.
    check_targets(meta, str(path))
    return meta


def find(loaded: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """:func:`read` for a file that may be any weights file: ``{}`` when it is not an ftcli checkpoint."""
    return read(loaded, path) if is_ftcli_checkpoint(loaded) else {}


def model_state(loaded: Mapping[str, Any]) -> dict[str, Any]:
    """An ftcli checkpoint's network tensors in BlockNet names, head included (chaining, eval, export)."""
    import torch  # here, not at the top: the commands' --help reads CHECKPOINT_HINT without torch

    state = loaded.get("state_dict", {})
    prefix = "model."
    return {
        k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix) and isinstance(v, torch.Tensor)
    }
