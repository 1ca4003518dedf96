"""Block maps: the block-by-block network equals the torchvision model and partitions its parameters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ftcli.errors import ConfigError
from ftcli.model.backbones import (
    BlockMap,
    build_torchvision,
    family_of,
    list_backbones,
    supported_families,
    to_blocknet,
    to_blocks,
)
from ftcli.model.blocks import HEAD
from ftcli.model.model_input import ModelInput

# One representative per family, with the expected family and number of stages after the stem.
REPRESENTATIVES = [
    ("resnet18", "resnet", 4),
    ("efficientnet_b0", "efficientnet", 7),
    ("mobilenet_v2", "mobilenet_v2", 5),
    ("mobilenet_v3_small", "mobilenet_v3", 4),
    ("convnext_tiny", "convnext", 4),
    ("vit_b_16", "vit", 4),
    ("swin_t", "swin", 4),
    ("densenet121", "densenet", 4),
    ("regnet_y_400mf", "regnet", 4),
    ("vgg11_bn", "vgg", 5),
]


def _ids(tensors) -> list[int]:
    return [id(t) for t in tensors]


@pytest.fixture(scope="module", params=REPRESENTATIVES, ids=[r[0] for r in REPRESENTATIVES])
def built(request):
    name, family, n_stages = request.param
    torch.manual_seed(0)
    model = build_torchvision(name, weights=None).eval()
    net, bm = to_blocknet(model, name)
    net.eval()
    return name, family, n_stages, model, net, bm


def test_each_family_declares_its_input(built) -> None:
    _, family, _, _, net, bm = built
    assert {fam for _, fam, _ in REPRESENTATIVES} == set(supported_families())  # every family is here
    fixed = ModelInput.image(224, size_kwarg="image_size")
    assert bm.input == (fixed if family == "vit" else ModelInput.image())
    assert net.input is bm.input


def test_blocknet_matches_torchvision(built) -> None:
    _, family, _, model, net, bm = built
    assert bm.family == family == net.family
    assert bm.input_size == (224 if family == "vit" else 64)
    torch.manual_seed(1)
    x = torch.randn(2, 3, bm.input_size, bm.input_size)
    with torch.no_grad():
        expected = model(x)
        got = net(x)
    assert got.shape == expected.shape == (2, 1000)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def test_block_names(built) -> None:
    _, _, n_stages, _, net, bm = built
    stages = [f"stage{i}" for i in range(1, n_stages + 1)]
    assert bm.block_names == ["stem", *stages]
    assert net.block_names == ["stem", *stages, HEAD]


@pytest.mark.parametrize("kind", ["parameters", "buffers"])
def test_blocks_partition_the_model(built, kind: str) -> None:
    _, _, _, model, net, _ = built
    everything = _ids(getattr(model, kind)())
    per_block = [_ids(getattr(block, kind)()) for block in net.blocks.values()]
    flat = [i for ids in per_block for i in ids]
    assert len(flat) == len(set(flat)), "a tensor lives in more than one block"
    assert set(flat) == set(everything), "blocks miss tensors of the model (or hold foreign ones)"


def test_pool_and_classifier_are_shared(built) -> None:
    _, _, _, model, _, bm = built
    assert not list(bm.pool.parameters()) and not list(bm.global_pool.parameters())
    classifier_ids = set(_ids(bm.classifier.parameters()))
    assert classifier_ids and classifier_ids <= set(_ids(model.parameters()))
    assert isinstance(list(bm.classifier.modules())[-1], nn.Linear)


def test_global_pool_after_every_block(built) -> None:
    _, _, _, _, net, bm = built
    x = torch.randn(1, 3, bm.input_size, bm.input_size)
    with torch.no_grad():
        for name in net.backbone_names:
            x = net.blocks[name](x)
            pooled = bm.global_pool(x)
            assert pooled.dim() == 2 and pooled.shape[0] == 1, (name, tuple(pooled.shape))


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("resnet50", "resnet"),
        ("resnext50_32x4d", "resnet"),
        ("wide_resnet50_2", "resnet"),
        ("efficientnet_b7", "efficientnet"),
        ("efficientnet_v2_s", "efficientnet"),
        ("mobilenet_v2", "mobilenet_v2"),
        ("mobilenet_v3_large", "mobilenet_v3"),
        ("convnext_base", "convnext"),
        ("vit_l_32", "vit"),
        ("swin_t", "swin"),
        ("swin_v2_b", "swin"),
        ("densenet201", "densenet"),
        ("regnet_x_400mf", "regnet"),
        ("vgg16", "vgg"),
        ("vgg19_bn", "vgg"),
    ],
)
def test_family_of(name: str, family: str) -> None:
    assert family_of(name) == family


@pytest.mark.parametrize("name", ["resnet19", "squeezenet1_0", "maxvit_t", "alexnet", "", "vit"])
def test_family_of_rejects_unknown_and_unsupported(name: str) -> None:
    with pytest.raises(ConfigError) as err:
        family_of(name)
    text = str(err.value)
    assert "model.name" in text and "resnet18" in text and "vit_b_16" in text
    assert "squeezenet" not in text.split("\n", 1)[1]


def test_build_torchvision_rejects_unknown_names() -> None:
    for name in ("resnet19", "googlenet"):
        with pytest.raises(ConfigError, match="resnet18"):
            build_torchvision(name)


def test_list_backbones() -> None:
    names = list_backbones()
    assert names == sorted(names)
    for preset in (
        "resnet18",
        "resnet50",
        "efficientnet_b0",
        "mobilenet_v3_large",
        "convnext_tiny",
        "vit_b_16",
    ):
        assert preset in names
    for unsupported in ("squeezenet", "shufflenet", "googlenet", "inception", "mnasnet", "maxvit", "alexnet"):
        assert not any(name.startswith(unsupported) for name in names)
    assert {family_of(name) for name in names} == set(supported_families())


def test_to_blocks_reuses_modules() -> None:
    model = build_torchvision("resnet18", weights=None)
    bm = to_blocks(model, "resnet18")
    assert isinstance(bm, BlockMap)
    assert bm.classifier is model.fc
    assert dict(bm.blocks)["stage4"] is model.layer4
    assert dict(bm.blocks)["stem"].conv1 is model.conv1


def test_vit_stages_split_encoder_layers_evenly() -> None:
    model = build_torchvision("vit_b_16", weights=None, image_size=32)
    bm = to_blocks(model, "vit_b_16")
    assert bm.input_size == 32
    sizes = [len(block) for name, block in bm.blocks if name != "stem"]
    assert sizes == [3, 3, 3, 4]  # 12 layers, 3 per stage; the last stage also holds encoder.ln
