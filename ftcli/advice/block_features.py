"""Pooled features of every backbone block, computed once per network and training split, then cached.

The advisor asks one question per block: how well does a linear classifier separate the classes
from this block's output? That needs each block's output pooled to one vector per image (the
network's own head pooling where it is parameter-free, so Swin's NHWC maps and ViT tokens pool the
way the model pools them). The files sit beside the feature cache, keyed the same way (weights,
structure, transform, images), so a second ``advise`` on the same data and weights only loads them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from ftcli.data.images.store import in_order
from ftcli.features.cache import Cut, cache_key, cut_of, load_tensors, save_tensors
from ftcli.model.blocks import HEAD, BlockNet

# Raw-pixel baseline: the input image average-pooled to this side (3 x 16 x 16 = 768 numbers).
PIXEL_SIDE = 16
PIXELS = "pixels"
# key prefix of a block's features in the stored file
BLOCK = "block/"


@dataclass
class BlockFeatures:
    """One vector per image for every probed block (and the raw-pixel baseline), plus the labels."""

    labels: torch.Tensor
    by_block: dict[str, torch.Tensor] = field(default_factory=dict)
    # blocks whose output could not be pooled to a vector, with the reason
    unprobed: dict[str, str] = field(default_factory=dict)
    loaded: bool = False
    # where they are stored (None: not stored, the dataset has no fingerprint)
    path: Path | None = None


def _generic_pool(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> mean over H, W; (N, T, C) tokens -> mean over tokens; (N, C) as it is."""
    if x.dim() == 4:
        return x.mean(dim=(2, 3))
    if x.dim() == 3:
        return x.mean(dim=1)
    if x.dim() == 2:
        return x
    raise ValueError(f"an output of shape {tuple(x.shape)} has no pooling rule")


def _pooler(net: BlockNet) -> nn.Module | None:
    """The head's own parameter-free pooling (it knows the model's layout), when there is one."""
    cut = cut_of(net)
    return net.blocks[HEAD].pool if cut.pooled else None


def _pool(x: torch.Tensor, pooler: nn.Module | None) -> torch.Tensor:
    if pooler is not None:
        try:
            pooled = pooler(x)
            if pooled.dim() == 2:
                return pooled
        except (RuntimeError, ValueError, IndexError):
            pass  # an intermediate block in another layout than the last: the generic rule
    return _generic_pool(x)


@torch.no_grad()
def compute(
    net: BlockNet, dataset: Dataset, batch_size: int, device: torch.device, pixels: bool
) -> BlockFeatures:
    """Run the backbone (eval mode) over ``dataset`` and pool each block's output; CPU float32."""
    loader = in_order(dataset, batch_size)
    names = net.backbone_names
    pooler = _pooler(net)
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    pixel_chunks: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    unprobed: dict[str, str] = {}
    was_training = net.training
    original = next(net.parameters()).device
    net.eval().to(device)
    try:
        for images, targets in loader:
            x = images.to(device)
            if pixels:
                small = nn.functional.adaptive_avg_pool2d(x, PIXEL_SIDE)
                pixel_chunks.append(small.flatten(1).float().cpu())
            for name in names:
                x = net.blocks[name](x)
                if name in unprobed:
                    continue
                try:
                    chunks[name].append(_pool(x, pooler).float().cpu())
                except ValueError as e:
                    unprobed[name] = str(e)
            labels.append(torch.as_tensor(targets))
    finally:
        net.to(original).train(was_training)
    features = BlockFeatures(torch.cat(labels).long(), unprobed=unprobed)
    for name in names:
        if name not in unprobed:
            features.by_block[name] = torch.cat(chunks[name])
    if pixels:
        features.by_block[PIXELS] = torch.cat(pixel_chunks)
    return features


def cached(
    net: BlockNet,
    dataset: Dataset,
    indices: list[int],
    directory: Path,
    batch_size: int,
    device: torch.device,
    pixels: bool,
) -> BlockFeatures:
    """:func:`compute` on ``dataset[indices]``, from ``directory`` when an identical run stored it.

    Without a dataset fingerprint (nothing to key on) the features are computed and not stored.
    """
    whole = Cut(len(net.backbone_names), pooled=False)
    key = cache_key(net, whole, dataset, device)
    path = None
    if key is not None:
        digest = hashlib.sha256(f"{key} {PIXEL_SIDE if pixels else 0} {indices}".encode()).hexdigest()
        path = directory / f"advice-{net.family}-{digest[:32]}.pt"
        stored = load_tensors(path)
        if stored is not None and "labels" in stored:
            blocks = {k.removeprefix(BLOCK): v for k, v in stored.items() if k.startswith(BLOCK)}
            return BlockFeatures(stored["labels"], blocks, loaded=True, path=path)
    features = compute(net, Subset(dataset, indices), batch_size, device, pixels)
    if path is not None and not features.unprobed:
        tensors = {f"{BLOCK}{name}": value for name, value in features.by_block.items()}
        save_tensors(path, {"labels": features.labels, **tensors})
        features.path = path
    return features
