"""Feature caching: when every pretrained block is frozen, run them once per split, not once per epoch.

A frozen backbone with a deterministic input transform maps each image to the same features every
epoch, yet the live path pays for that forward pass over and over. When the plan trains only the
head, ftcli computes the frozen blocks' output (plus the head's parameter-free pooling) once per
split, stores it on disk keyed by everything that determines it, and trains the head on the stored
tensors. The checkpoint still holds the whole network, so it runs on images exactly as before.

A strategy whose first phase(s) train only the head (``lp_ft``'s probe, ``gradual``'s first phase,
a user's probe phase) trains those phases on the cached features and then switches to the live
network, with the head it trained (features/datamodules.py, ``PhasedDataModule``).

Used when (see :func:`cache_eligible`): only the head trains, the training transform is
deterministic (no ``data.augment``), no MixUp/CutMix mixes its batches (``mixup.*``, off in head-only
phases by default), and BatchNorm in the frozen blocks is frozen (``strategy.bn``).
Switched by ``data.cache_features`` (``auto`` | ``false``); stored under ``data.feature_cache_dir``,
else ``$FTCLI_FEATURE_CACHE``, else ``~/.cache/ftcli/features`` (one ``.pt`` file per split).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ftcli.atomic_files import atomic_write
from ftcli.data.images import store as image_store
from ftcli.data.images.store import ENV_DIR, cache_root  # noqa: F401 (ENV_DIR: re-exported for features.datamodules)
from ftcli.data.images.transforms import is_deterministic
from ftcli.errors import ConfigError
from ftcli.finetune.freeze_plan import Schedule
from ftcli.model.blocks import HEAD, BlockNet

CACHE_VERSION = 1
# Features are held in memory while training; above this the live path is used instead.
MAX_BYTES = 4 * 2**30
SPLITS = ("train", "val", "test")


def cache_eligible(
    schedule: Schedule, augment: Mapping[str, Any] | None, mixing: bool = False
) -> tuple[bool, str]:
    """Whether the frozen blocks' output can be computed once; otherwise why not.

    The reason is empty when caching does not apply at all (pretrained blocks train, or will in a
    later phase), and says what to change when only the transform, batch mixing (``mixing``: MixUp or
    CutMix applies to the head-only phase, training/mixing.py) or the BatchNorm policy stands in the way.
    """
    if not cached_phases(schedule):
        return False, ""
    plan = schedule.first
    if any(block.bn == "affine" for block in plan.blocks if block.name != HEAD):
        return False, "strategy.bn=affine trains the frozen blocks' BatchNorm scale and shift"
    if not is_deterministic(augment):
        return False, "data.augment is on, so the frozen blocks see a new version of each image every epoch"
    if mixing:
        return False, "mixup.* mixes the images of each batch, so the frozen blocks see new images every step"
    if any(block.bn == "train" for block in plan.blocks if block.name != HEAD):
        return False, "strategy.bn=train keeps changing the frozen blocks' BatchNorm statistics"
    return True, ""


def cached_phases(schedule: Schedule) -> tuple[int, ...]:
    """The leading phases that train only the head: the ones the feature cache can serve.

    Only leading ones: after a phase that trains pretrained blocks, their features have changed.
    """
    leading = []
    for phase in schedule.phases:
        if not phase.head_only:
            break
        leading.append(phase.index)
    return tuple(leading)


def cache_mode(data_cfg: Mapping[str, Any]) -> bool:
    """``data.cache_features``: ``auto`` (cache when eligible) or ``false`` (always the live path)."""
    value = data_cfg.get("cache_features", "auto")
    if value in ("auto", True, "true"):
        return True
    if value in (False, "false", None):
        return False
    raise ConfigError(f"data.cache_features={value!r} is not allowed.", "Use auto or false.")


def cache_dir(data_cfg: Mapping[str, Any]) -> Path:
    """Where feature files live: ``data.feature_cache_dir``, ``$FTCLI_FEATURE_CACHE`` or the default."""
    return cache_root(data_cfg)


# ---------------------------------------------------------------------------- what is cached


@dataclass(frozen=True)
class Cut:
    """The cached part of the network: the first ``stop`` blocks, plus the head's pooling if ``pooled``."""

    stop: int
    pooled: bool

    def prefix(self, net: BlockNet, x: torch.Tensor) -> torch.Tensor:
        """Images -> what the cache stores."""
        x = net.forward_until(x, self.stop)
        return _head_pool(net)(x) if self.pooled else x

    def tail(self, net: BlockNet, x: torch.Tensor) -> torch.Tensor:
        """Cached features -> logits: the part of the network that trains."""
        if self.pooled:
            return net.blocks[HEAD].classifier(x)
        return net.forward_from(x, self.stop)


def cut_of(net: BlockNet) -> Cut:
    """Every block but the head; the head's pooling too when it is parameter-free (far smaller files)."""
    head = net.blocks[HEAD]
    pool = getattr(head, "pool", None)
    classifier = getattr(head, "classifier", None)
    pooled = (
        isinstance(head, nn.Sequential)
        and list(dict(head.named_children())) == ["pool", "classifier"]
        and pool is not None
        and classifier is not None
        and not any(True for _ in pool.parameters())
        and not any(True for _ in pool.buffers())
    )
    return Cut(len(net.block_names) - 1, pooled)


def _head_pool(net: BlockNet) -> nn.Module:
    return net.blocks[HEAD].pool


# ---------------------------------------------------------------------------- the key


def cache_key(net: BlockNet, cut: Cut, dataset: Dataset, device: torch.device) -> str | None:
    """A hash of everything the features depend on, or None when the dataset cannot be fingerprinted.

    Weights and structure of the cached blocks (so the recipe's truncation and chained weights count),
    the pooling, the transform, the images and labels, the device type and the torch version.
    """
    fingerprint = getattr(dataset, "fingerprint", None)
    if fingerprint is None:
        return None
    digest = hashlib.sha256()

    def add(text: str) -> None:
        digest.update(text.encode())
        digest.update(b"\0")

    add(f"v{CACHE_VERSION} torch {torch.__version__} {device.type} float32 {net.family}")
    blocks = list(net.blocks.items())[: cut.stop]
    for name, block in blocks:
        add(name)
        add(repr(block))
        for key, tensor in block.state_dict().items():
            add(f"{key} {tensor.dtype} {tuple(tensor.shape)}")
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    add(repr(_head_pool(net)) if cut.pooled else "unpooled")
    add(repr(getattr(dataset, "transform", None)))
    add(fingerprint())
    return digest.hexdigest()


# ---------------------------------------------------------------------------- compute, store, load


@contextmanager
def evaluated(net: nn.Module, device: torch.device | None = None) -> Iterator[nn.Module]:
    """``net`` in eval mode (moved to ``device`` when given), put back afterwards as it was: what is
    cached or probed is the network as a fixed function."""
    was_training = net.training
    original = next(net.parameters()).device
    net.eval().to(device or original)
    try:
        yield net
    finally:
        net.to(original).train(was_training)


def shortest_first(dataset: Dataset, batch_size: int) -> tuple[DataLoader, list[int]]:
    """A text split's loader, shortest texts first so each batch pads little, and that order (the
    position in the split of each text the loader yields)."""
    lengths = dataset.lengths  # type: ignore[attr-defined]
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    loader = DataLoader(Subset(dataset, order), batch_size=batch_size, collate_fn=dataset.collate)  # type: ignore[attr-defined]
    return loader, order


@torch.no_grad()
def compute(
    net: BlockNet, cut: Cut, dataset: Dataset, batch_size: int, num_workers: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the cached part of the network (eval mode) over a split: (features, labels) on the CPU, in the
    split's order. Texts (a split with ``lengths``) run shortest first, so each batch pads little."""
    order: list[int] | None = None
    if getattr(dataset, "lengths", None) is not None:
        loader, order = shortest_first(dataset, batch_size)
    else:
        loader = image_store.in_order(dataset, batch_size, num_workers)
    chunks: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    with evaluated(net, device):
        for x, y in loader:
            chunks.append(cut.prefix(net, x.to(device)).float().cpu())
            labels.append(torch.as_tensor(y))
    features, targets = torch.cat(chunks), torch.cat(labels).long()
    if order is not None:  # back to the split's order
        back = torch.empty(len(order), dtype=torch.long)
        back[torch.tensor(order)] = torch.arange(len(order))
        features, targets = features[back], targets[back]
    return features, targets


def save(path: Path, features: torch.Tensor, labels: torch.Tensor) -> None:
    """Write one split's (features, labels) atomically (see :func:`save_tensors`)."""
    save_tensors(path, {"features": features, "labels": labels})


def save_tensors(path: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    """Write atomically: a crash or a parallel run never leaves half a file under the final name.

    Two runs computing the same split at once need no lock: each writes a temporary of its own and
    moves it onto the name; the files are equal (same key), and a reader opens one whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda temp: save_through_file(dict(tensors), temp))


def save_through_file(obj: Any, path: Path) -> None:
    """``torch.save`` into a Python file: a full or read-only disk is then the ``OSError`` it is
    (torch's own file writer, given a path, reports it as a ``RuntimeError`` that names no cause)."""
    with open(path, "wb") as handle:
        torch.save(obj, handle)


def load(path: Path) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The stored (features, labels), or None when the file is missing or unreadable."""
    data = load_tensors(path)
    if data is None or "features" not in data or "labels" not in data:
        return None
    return data["features"], data["labels"]


def load_tensors(path: Path) -> dict[str, torch.Tensor] | None:
    """A file written by :func:`save_tensors`, or None when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (OSError, RuntimeError, KeyError, EOFError, ValueError):
        return None  # truncated or foreign file: recompute and overwrite
    return data if isinstance(data, dict) else None
