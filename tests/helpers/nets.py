"""A tiny BlockNet built through the real pipeline: backbone -> blocks -> the recipe's new head."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ftcli.model.backbones import build_torchvision, to_blocknet
from ftcli.model.blocks import BlockNet
from ftcli.model.surgery import apply_recipe

LINEAR_RECIPE = {"name": "linear", "n": 0, "hidden": [], "dropout": 0.0, "activation": "relu"}


def make_net(
    name: str = "resnet18",
    recipe: Mapping[str, Any] | None = None,
    num_classes: int = 3,
    seed: int = 0,
    **kwargs: Any,
) -> BlockNet:
    """A randomly initialised backbone, cut into blocks, with the recipe's new head on top."""
    torch.manual_seed(seed)
    model = build_torchvision(name, None, **kwargs)
    net, block_map = to_blocknet(model, name)
    apply_recipe(net, block_map, dict(recipe or LINEAR_RECIPE), num_classes)
    return net
