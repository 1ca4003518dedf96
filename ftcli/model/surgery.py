"""Head surgery: apply a recipe (remove the last blocks, put a new head on top).

A recipe is pure data, so users write new ones in YAML without code. Its vocabulary is small:
``n`` last backbone blocks removed; a new head = pooling (the family's own after the last stage, a
global pooling after a truncated one) + ``hidden`` Linear layers with ``activation`` and ``dropout``
+ a final Linear to the dataset's number of classes (never typed in the recipe).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ftcli.errors import ConfigError
from ftcli.model.block_map import BlockMap
from ftcli.model.blocks import BlockNet, dummy_input

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


@dataclass
class SurgeryReport:
    """What a recipe did, for ``inspect`` and the run log."""

    recipe: str
    removed: list[str] = field(default_factory=list)
    feature_dim: int = 0
    head: list[str] = field(default_factory=list)


def apply_recipe(
    net: BlockNet, block_map: BlockMap, recipe: Mapping[str, Any], num_classes: int
) -> SurgeryReport:
    """Cut ``recipe.n`` blocks and replace the head in place."""
    n, hidden, dropout, activation = _validated(recipe, net)
    removed = net.remove_last_blocks(n)
    pool = block_map.pool if n == 0 else block_map.global_pool
    dim = feature_dim(net, pool)
    classifier = make_classifier(dim, hidden, num_classes, dropout, activation)
    net.replace_head(nn.Sequential(OrderedDict(pool=pool, classifier=classifier)))
    head_desc = [f"{type(m).__name__}({_shape(m)})" for m in classifier]
    return SurgeryReport(str(recipe.get("name", "custom")), removed, dim, head_desc)


def make_classifier(
    in_dim: int, hidden: list[int], num_classes: int, dropout: float, activation: str
) -> nn.Sequential:
    """Fresh layers: ([Dropout] Linear activation) per hidden width, then [Dropout] Linear(num_classes)."""
    layers: list[nn.Module] = []
    for width in hidden:
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(in_dim, width), ACTIVATIONS[activation]()]
        in_dim = width
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(in_dim, num_classes))
    return nn.Sequential(*layers)


@torch.no_grad()
def feature_dim(net: BlockNet, pool: nn.Module) -> int:
    """Width of the pooled features, found by a dummy forward pass of one input the network takes
    (``dummy_input``: an image or a short text; works for any cut)."""
    was_training = net.training
    net.eval()
    try:
        x = net.features(dummy_input(net.input))
        return int(pool(x).flatten(1).shape[1])
    finally:
        net.train(was_training)


def _validated(recipe: Mapping[str, Any], net: BlockNet) -> tuple[int, list[int], float, str]:
    max_n = len(net.backbone_names) - 1
    n = recipe.get("n", 0) or 0
    if not isinstance(n, int) or not 0 <= n <= max_n:
        raise ConfigError(
            f"recipe.n={n} is out of range: {net.family} has {max_n} blocks after the stem.",
            f"Use an integer from 0 (keep all) to {max_n}.",
        )
    raw_hidden = recipe.get("hidden") or []
    # a scalar (recipe.hidden=256 on the command line) or a string is not a list of widths
    is_list = isinstance(raw_hidden, Sequence) and not isinstance(raw_hidden, str)
    hidden = list(raw_hidden) if is_list else []
    if not is_list or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden):
        raise ConfigError(
            f"recipe.hidden={raw_hidden} must be a list of positive integers, e.g. [256] or []."
        )
    raw_dropout = recipe.get("dropout", 0.0) or 0.0
    try:
        dropout = float(raw_dropout)
    except (TypeError, ValueError):
        dropout = -1.0  # not a number: reported below
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"recipe.dropout={raw_dropout} must be a number in [0, 1).")
    activation = str(recipe.get("activation", "relu"))
    if activation not in ACTIVATIONS:
        raise ConfigError(
            f"Unknown recipe.activation '{activation}'.", f"Valid names: {', '.join(sorted(ACTIVATIONS))}"
        )
    return n, hidden, dropout, activation


def _shape(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return f"{module.in_features}->{module.out_features}"
    if isinstance(module, nn.Dropout):
        return f"p={module.p}"
    return ""
