"""The note on pretrained transformer layers trained at a rate that usually undoes their pretraining."""

from __future__ import annotations

from typing import Any

import pytest
from torch import nn

from ftcli.finetune.phases import make_schedule
from ftcli.finetune.transformer_rate import high_rate_note
from ftcli.model.blocks import BlockNet


def blocks(family: str) -> BlockNet:
    """Three backbone blocks and a head; only the family and the block names matter to the note."""
    backbone = [(name, nn.Linear(4, 4)) for name in ("stem", "stage1", "stage2")]
    return BlockNet(backbone, head=nn.Linear(4, 2), family=family)


def note(strategy: dict[str, Any], lr: float, family: str = "hf", pretrained: bool = True) -> str | None:
    net = blocks(family)
    return high_rate_note(net, make_schedule(strategy, net), lr, pretrained)


def test_full_fine_tuning_of_a_pretrained_transformer_at_ftclis_default_rate_is_flagged() -> None:
    text = note({"name": "full"}, 1e-3)
    assert text is not None
    assert "up to 1.0e-03 here (3 blocks, stem to stage2)" in text
    assert "optimizer.lr=1e-4" in text and "strategy.backbone_lr_mult=0.1" in text


def test_only_the_trained_pretrained_blocks_are_named() -> None:
    text = note({"name": "last_layers", "n": 1}, 1e-3)
    assert text is not None and "here (stage2)" in text


@pytest.mark.parametrize(
    ("strategy", "lr"),
    [
        ({"name": "full"}, 1e-4),  # the usual transformer rate
        ({"name": "full", "backbone_lr_mult": 0.1}, 1e-3),  # the head at 1e-3, the layers at 1e-4
        ({"name": "feature_extraction"}, 1e-2),  # only the new head trains
    ],
    ids=["lr-1e-4", "backbone-mult-0.1", "head-only"],
)
def test_usual_rates_and_head_only_training_pass_quietly(strategy: dict[str, Any], lr: float) -> None:
    assert note(strategy, lr) is None


def test_random_init_and_image_networks_are_not_flagged() -> None:
    assert note({"name": "full"}, 1e-3, pretrained=False) is None  # scratch or model.weights=null
    assert note({"name": "full"}, 1e-3, family="timm") is None  # 1e-3 suits convolutional backbones
