"""Head surgery: every shipped recipe on every family gives (B, num_classes) from a fresh head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from ftcli.errors import ConfigError
from ftcli.model.backbones import build_torchvision, to_blocknet
from ftcli.model.blocks import HEAD
from ftcli.model.surgery import ACTIVATIONS, apply_recipe

pytestmark = pytest.mark.usefixtures("single_thread")

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
NUM_CLASSES = 4

# One representative per family: (name, builder kwargs, test input side). ViT is built for 32 px
# inputs (2x2 patches), which is far faster than its 224 px default.
FAMILIES: list[tuple[str, dict[str, Any], int]] = [
    ("resnet18", {}, 32),
    ("efficientnet_b0", {}, 32),
    ("mobilenet_v2", {}, 32),
    ("mobilenet_v3_small", {}, 32),
    ("convnext_tiny", {}, 32),
    ("vit_b_16", {"image_size": 32}, 32),
    ("swin_t", {}, 32),
    ("densenet121", {}, 32),
    ("regnet_y_400mf", {}, 32),
    ("vgg11_bn", {}, 32),
]


def shipped_recipe(name: str, **overrides: Any) -> dict[str, Any]:
    """A recipe YAML from recipes/, as a plain dict, with test overrides."""
    recipe = OmegaConf.to_container(OmegaConf.load(RECIPES_DIR / f"{name}.yaml"))
    return {**recipe, **overrides}


# The three shipped recipes; mlp kept small for speed.
RECIPES = {
    "linear": lambda: shipped_recipe("linear"),
    "mlp": lambda: shipped_recipe("mlp", hidden=[16], dropout=0.1),
    "truncate": lambda: shipped_recipe("truncate", n=1),
}


@pytest.fixture(scope="module", params=FAMILIES, ids=[f[0] for f in FAMILIES])
def torchvision_model(request) -> tuple[str, nn.Module, int]:
    """One build per family (the slow part); each test cuts a fresh BlockNet from it.

    Surgery only edits the BlockNet's block dict, never the torchvision model, so the model can be
    reused; ``test_surgery_leaves_the_source_model_intact`` checks that.
    """
    name, kwargs, side = request.param
    torch.manual_seed(0)
    return name, build_torchvision(name, None, **kwargs).eval(), side


def linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def test_shipped_recipes_are_the_expected_ones() -> None:
    assert sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")) == sorted(RECIPES)
    for name in RECIPES:
        recipe = shipped_recipe(name)
        assert recipe["name"] == name
        assert "num_classes" not in recipe  # it comes from the dataset


@pytest.mark.parametrize("recipe_name", list(RECIPES))
def test_every_recipe_on_every_family(torchvision_model, recipe_name) -> None:
    name, model, side = torchvision_model
    recipe = RECIPES[recipe_name]()
    net, block_map = to_blocknet(model, name)
    old_blocks = net.block_names
    old_tensors = {id(t) for t in [*model.parameters(), *model.buffers()]}

    report = apply_recipe(net, block_map, recipe, NUM_CLASSES)

    # blocks: truncate removes exactly the last backbone block, the others keep every block
    if recipe["n"]:
        assert report.removed == [old_blocks[-2]]
        assert net.block_names == [*old_blocks[:-2], HEAD]
    else:
        assert report.removed == []
        assert net.block_names == old_blocks

    # the classifier is new: none of its tensors come from the torchvision model
    classifier = net.blocks[HEAD].classifier
    assert classifier is not block_map.classifier
    assert not {id(t) for t in classifier.parameters()} & old_tensors
    layers = linears(classifier)
    assert [m.out_features for m in layers] == [*recipe["hidden"], NUM_CLASSES]
    assert layers[0].in_features == report.feature_dim
    dropouts = [m.p for m in classifier.modules() if isinstance(m, nn.Dropout)]
    assert dropouts == ([recipe["dropout"]] * len(layers) if recipe["dropout"] else [])
    if recipe["hidden"]:
        assert sum(isinstance(m, ACTIVATIONS[recipe["activation"]]) for m in classifier) == 1

    torch.manual_seed(1)
    net.eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, side, side))
    assert out.shape == (2, NUM_CLASSES)
    assert torch.isfinite(out).all()


def test_surgery_leaves_the_source_model_intact(torchvision_model) -> None:
    name, model, side = torchvision_model
    net, block_map = to_blocknet(model, name)
    apply_recipe(net, block_map, RECIPES["truncate"](), NUM_CLASSES)
    model.eval()  # the shared modules follow the BlockNet's train/eval mode
    with torch.no_grad():
        assert model(torch.randn(1, 3, side, side)).shape == (1, 1000)


def test_truncated_feature_dim_is_the_width_of_the_new_last_block() -> None:
    torch.manual_seed(0)
    net, block_map = to_blocknet(build_torchvision("resnet18", None), "resnet18")
    report = apply_recipe(net, block_map, shipped_recipe("truncate", n=2), NUM_CLASSES)
    assert report.removed == ["stage3", "stage4"]
    assert report.feature_dim == 128  # resnet18's layer2 output channels
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, NUM_CLASSES)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"n": -1}, "recipe.n"),
        ({"n": 5}, "recipe.n"),  # resnet18 has 4 blocks after the stem: n=5 would cut the stem
        ({"n": 99}, "recipe.n"),
        ({"n": "1"}, "recipe.n"),
        ({"n": 1.5}, "recipe.n"),
        ({"hidden": [0]}, "recipe.hidden"),
        ({"hidden": [-16]}, "recipe.hidden"),
        ({"hidden": [16.5]}, "recipe.hidden"),
        ({"hidden": ["wide"]}, "recipe.hidden"),
        ({"hidden": 16}, "recipe.hidden"),
        ({"hidden": "16"}, "recipe.hidden"),
        ({"dropout": 1.0}, "recipe.dropout"),
        ({"dropout": -0.1}, "recipe.dropout"),
        ({"dropout": "lots"}, "recipe.dropout"),
        ({"activation": "swish"}, "recipe.activation"),
    ],
)
def test_bad_recipe_raises_config_error_and_leaves_the_net_untouched(overrides, key) -> None:
    torch.manual_seed(0)
    net, block_map = to_blocknet(build_torchvision("resnet18", None), "resnet18")
    head = net.blocks[HEAD]
    with pytest.raises(ConfigError) as err:
        apply_recipe(net, block_map, shipped_recipe("mlp", **overrides), NUM_CLASSES)
    assert key in str(err.value)
    assert net.block_names == ["stem", "stage1", "stage2", "stage3", "stage4", HEAD]
    assert net.blocks[HEAD] is head


def test_unknown_activation_lists_the_valid_ones() -> None:
    torch.manual_seed(0)
    net, block_map = to_blocknet(build_torchvision("resnet18", None), "resnet18")
    with pytest.raises(ConfigError) as err:
        apply_recipe(net, block_map, shipped_recipe("mlp", activation="swish"), NUM_CLASSES)
    for valid in ACTIVATIONS:
        assert valid in str(err.value)


def test_recipe_n_range_is_stated_per_family() -> None:
    torch.manual_seed(0)
    net, block_map = to_blocknet(build_torchvision("efficientnet_b0", None), "efficientnet_b0")
    with pytest.raises(ConfigError, match=r"from 0 \(keep all\) to 7"):
        apply_recipe(net, block_map, shipped_recipe("truncate", n=8), NUM_CLASSES)
