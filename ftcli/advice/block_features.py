"""Pooled features of every backbone block, computed once per network and training split, then cached.

The advisor asks one question per block: how well does a linear classifier separate the classes
from this block's output? That needs each block's output pooled to one vector per sample (the
network's own head pooling where it is parameter-free, so Swin's NHWC maps, ViT tokens and a text
model's token states pool the way the model pools them). The raw input gives the no-knowledge
baseline: an image average-pooled to 16 x 16 pixels, a text as counts of its token ids (a bag of
words). The files sit beside the feature cache, keyed the same way (weights, structure, transform or
tokenizer, samples), so a second ``advise`` on the same data and weights only loads them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from ftcli.data.images.store import in_order
from ftcli.features.cache import Cut, cache_key, cut_of, evaluated, load_tensors, save_tensors
from ftcli.model.blocks import HEAD, BlockNet

# Raw-pixel baseline: the input image average-pooled to this side (3 x 16 x 16 = 768 numbers).
PIXEL_SIDE = 16
# Bag-of-tokens baseline: a text's token ids counted into this many bins (id modulo bins), log(1 + count).
TOKEN_BINS = 4096
# key of the raw-input baseline among the blocks' features (stored files of an older layout differ in key)
RAW_INPUT = "raw_input"
RAW_INPUT_NAMES = {"image": "raw pixels", "text": "token counts"}
# key prefix of a block's features in the stored file
BLOCK = "block/"


@dataclass
class BlockFeatures:
    """One vector per sample for every probed block (and the raw-input baseline), plus the labels."""

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


def raw_input_kind(x: torch.Tensor) -> str:
    """``text`` for a batch of token ids and masks ``(N, 2, L)`` (integers), else ``image``."""
    return "image" if torch.is_floating_point(x) else "text"


def raw_input(x: torch.Tensor) -> torch.Tensor:
    """The no-knowledge features of a batch: pixels pooled to 16 x 16, or a text's token counts."""
    if raw_input_kind(x) == "image":
        return nn.functional.adaptive_avg_pool2d(x, PIXEL_SIDE).flatten(1).float()
    ids, mask = x[:, 0], x[:, 1]
    counts = torch.zeros(ids.shape[0], TOKEN_BINS, device=x.device)
    counts.scatter_add_(1, ids % TOKEN_BINS, mask.float())
    return counts.log1p()


@torch.no_grad()
def compute(
    net: BlockNet, dataset: Dataset, batch_size: int, device: torch.device, baseline: bool
) -> BlockFeatures:
    """Run the backbone (eval mode) over ``dataset`` and pool each block's output (and, with
    ``baseline``, the raw input's features); CPU float32."""
    loader = in_order(dataset, batch_size)
    names = net.backbone_names
    pooler = _pooler(net)
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    raw_chunks: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    unprobed: dict[str, str] = {}
    with evaluated(net, device):
        for inputs, targets in loader:
            x = inputs.to(device)
            if baseline:
                raw_chunks.append(raw_input(x).cpu())
            for name in names:
                x = net.blocks[name](x)
                if name in unprobed:
                    continue
                try:
                    chunks[name].append(_pool(x, pooler).float().cpu())
                except ValueError as e:
                    unprobed[name] = str(e)
            labels.append(torch.as_tensor(targets))
    features = BlockFeatures(torch.cat(labels).long(), unprobed=unprobed)
    for name in names:
        if name not in unprobed:
            features.by_block[name] = torch.cat(chunks[name])
    if baseline:
        features.by_block[RAW_INPUT] = torch.cat(raw_chunks)
    return features


def cached(
    net: BlockNet,
    dataset: Dataset,
    indices: list[int],
    directory: Path,
    batch_size: int,
    device: torch.device,
    baseline: bool,
) -> BlockFeatures:
    """:func:`compute` on ``dataset[indices]``, from ``directory`` when an identical run stored it.

    Without a dataset fingerprint (nothing to key on) the features are computed and not stored.
    """
    whole = Cut(len(net.backbone_names), pooled=False)
    key = cache_key(net, whole, dataset, device)
    path = None
    if key is not None:
        raw = f"{RAW_INPUT} {PIXEL_SIDE} {TOKEN_BINS}" if baseline else "none"
        digest = hashlib.sha256(f"{key} {raw} {indices}".encode()).hexdigest()
        path = directory / f"advice-{net.family}-{digest[:32]}.pt"
        stored = load_tensors(path)
        if stored is not None and "labels" in stored:
            blocks = {k.removeprefix(BLOCK): v for k, v in stored.items() if k.startswith(BLOCK)}
            return BlockFeatures(stored["labels"], blocks, loaded=True, path=path)
    features = compute(net, Subset(dataset, indices), batch_size, device, baseline)
    if path is not None and not features.unprobed:
        tensors = {f"{BLOCK}{name}": value for name, value in features.by_block.items()}
        save_tensors(path, {"labels": features.labels, **tensors})
        features.path = path
    return features
