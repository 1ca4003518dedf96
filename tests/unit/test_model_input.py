"""ModelInput: every family declares what its networks take (modality, channels, a fixed side)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torchvision.models.vision_transformer import VisionTransformer

from ftcli.model.backbones import build_model, build_torchvision, to_blocknet
from ftcli.model.block_map import BlockMap
from ftcli.model.families import BACKBONE_FAMILIES
from ftcli.model.model_input import DEFAULT_INPUT_SIZE, ModelInput
from ftcli.model.surgery import apply_recipe


def test_an_image_input_of_any_side() -> None:
    any_side = ModelInput.image()
    assert (any_side.modality, any_side.channels, any_side.size, any_side.max_tokens) == (
        "image",
        3,
        None,
        None,
    )
    assert not any_side.fixed_size and any_side.accepts_size(17) and any_side.accepts_size(512)
    assert any_side.probe_size == DEFAULT_INPUT_SIZE
    assert ModelInput.image(natural_size=224).probe_size == 224  # the side it was made for, when known
    assert ModelInput() == any_side


def test_an_image_input_of_one_side() -> None:
    fixed = ModelInput.image(224, size_kwarg="img_size")
    assert fixed.fixed_size and fixed.probe_size == 224 and fixed.size_kwarg == "img_size"
    assert fixed.accepts_size(224) and not fixed.accepts_size(32)


def test_a_token_input() -> None:
    tokens = ModelInput.tokens(512)
    assert (tokens.modality, tokens.channels, tokens.size, tokens.max_tokens) == ("tokens", None, None, 512)
    assert not tokens.fixed_size and tokens.size_kwarg is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"modality": "audio"},
        {"size": 0},
        {"size": True},
        {"channels": None},
        {"max_tokens": -1},
        {"modality": "tokens"},  # channels default to 3: a token input has none
        {"modality": "tokens", "channels": None, "size": 32},
    ],
)
def test_an_impossible_input_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ModelInput(**kwargs)


def test_it_is_frozen_plain_data() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModelInput.image().size = 32  # type: ignore[misc]
    assert hash(ModelInput.image(32)) == hash(ModelInput.image(32))


def test_a_convnet_takes_rgb_images_of_any_side_and_its_blocknet_says_so() -> None:
    net, bm = to_blocknet(build_torchvision("resnet18", weights=None), "resnet18")
    assert bm.input == ModelInput.image() and net.input is bm.input
    # the older attributes read the declaration
    assert (bm.input_size, bm.fixed_input, bm.size_kwarg) == (DEFAULT_INPUT_SIZE, False, None)


def test_a_torchvision_vit_takes_its_one_side() -> None:
    model = VisionTransformer(
        image_size=32, patch_size=16, num_layers=4, num_heads=2, hidden_dim=8, mlp_dim=16
    )
    bm = BACKBONE_FAMILIES.get("vit").mapper(model)
    assert bm.input == ModelInput.image(32, size_kwarg="image_size")
    assert (bm.input_size, bm.fixed_input, bm.size_kwarg) == (32, True, "image_size")


def test_a_family_cannot_leave_its_input_undeclared() -> None:
    """``BlockMap.input`` has no default: a new family's mapper must say what its models take
    (every torchvision family's declaration: ``test_backbones.test_each_family_declares_its_input``)."""
    field = {f.name: f for f in dataclasses.fields(BlockMap)}["input"]
    assert field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


@pytest.mark.parametrize(
    ("kwargs", "size", "natural"),
    [({"img_size": 32}, 32, 32), ({"img_size": 32, "dynamic_img_size": True}, None, 32)],
    ids=["fixed", "dynamic"],
)
def test_a_timm_vit_declares_its_side_unless_dynamic(single_thread, kwargs: dict, size, natural) -> None:
    torch.manual_seed(0)
    model = build_model("timm/vit_tiny_patch16_224", kwargs)
    net, bm = to_blocknet(model, "timm/vit_tiny_patch16_224")
    assert bm.input == ModelInput.image(size, size_kwarg="img_size", natural_size=natural)
    assert net.input is bm.input and bm.input_size == 32


def test_a_timm_convnet_declares_its_channels(single_thread) -> None:
    torch.manual_seed(0)
    grey = build_model("timm/resnet18", {"in_chans": 1, "num_classes": 4})
    net, bm = to_blocknet(grey, "timm/resnet18")
    assert bm.input == ModelInput.image(channels=1, size_kwarg=None)
    # the head's width is probed with the declared channels
    report = apply_recipe(net, bm, {"name": "linear", "n": 0}, 3)
    assert report.feature_dim == 512
    assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 3)
