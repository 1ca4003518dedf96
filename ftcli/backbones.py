"""Build a torchvision backbone and cut it into the same kind of blocks for every model family.

Fine-tuning strategies ("freeze all but the last 2 blocks", "discriminative learning rates per block",
"drop the last stage") must mean the same thing for a ResNet, a ViT or a VGG. Leaf modules cannot
give that: a ResNet-50 has ~160 of them, a ViT-B ~150, grouped in unrelated ways. So every supported
family is mapped onto one shape, the model's *natural stages*::

    stem, stage1, ..., stageK, head        (head = pool + the original classifier)

A mapper reuses the model's own submodules (no copies): the pretrained parameters are the same
objects, each lives in exactly one block, and in eval mode the block-by-block network computes exactly
what ``model(x)`` computes. Functional ops from torchvision's ``forward`` (ViT's input reshaping, the
class-token selection) become small parameter-free modules so that they can sit in a block.

Each family has one mapper in ``_FAMILIES``; ``family_of`` finds it by the model name's prefix.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
import torchvision
from torch import nn
from torchvision.ops.misc import Permute

from ftcli.blocks import BlockNet
from ftcli.errors import unknown_name

DEFAULT_INPUT_SIZE = 64


@dataclass
class BlockMap:
    """A torchvision classifier cut into named blocks (see the module docstring)."""

    family: str
    blocks: list[tuple[str, nn.Module]]
    pool: nn.Module
    global_pool: nn.Module
    classifier: nn.Module
    input_size: int = DEFAULT_INPUT_SIZE
    # True when the network only accepts input_size x input_size images (ViT's position embedding)
    fixed_input: bool = False

    @property
    def block_names(self) -> list[str]:
        """The backbone block names in forward order: ``stem``, ``stage1``, ..."""
        return [name for name, _ in self.blocks]


# --- small parameter-free wrappers for torchvision's inline functional ops -----------------------


class _ViTStem(nn.Module):
    """ViT input: patchify (``_process_input``), prepend the class token, add positions, dropout.

    It owns the model's ``conv_proj``, ``class_token`` and ``encoder.pos_embedding`` (shared objects),
    so the pretrained parameters of the stem live in this block.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.image_size: int = model.image_size
        self.patch_size: int = model.patch_size
        self.hidden_dim: int = model.hidden_dim
        self.conv_proj = model.conv_proj
        self.class_token = model.class_token
        self.pos_embedding = model.encoder.pos_embedding
        self.dropout = model.encoder.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        torch._assert(h == self.image_size, f"Wrong image height! Expected {self.image_size} but got {h}!")
        torch._assert(w == self.image_size, f"Wrong image width! Expected {self.image_size} but got {w}!")
        x = self.conv_proj(x)
        x = x.reshape(n, self.hidden_dim, (h // self.patch_size) * (w // self.patch_size))
        x = x.permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        return self.dropout(x + self.pos_embedding)


class _ClassToken(nn.Module):
    """Select the class token of a token sequence: ``(N, S, D) -> (N, D)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]


# --- helpers ------------------------------------------------------------------------------------


def _seq(*modules: nn.Module, **named: nn.Module) -> nn.Sequential:
    """A Sequential of positional modules, or of named ones (names show up in state_dict keys)."""
    if modules and named:
        raise ValueError("pass modules either positionally or by name, not both")
    return nn.Sequential(OrderedDict(named)) if named else nn.Sequential(*modules)


def _avg_flatten() -> nn.Sequential:
    """Global average pool of an NCHW map to an (N, C) vector."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))


def _stages(groups: Sequence[nn.Module]) -> list[tuple[str, nn.Module]]:
    """Name consecutive stage modules ``stage1``, ``stage2``, ..."""
    return [(f"stage{i}", group) for i, group in enumerate(groups, start=1)]


def _has_stride2(module: nn.Module) -> bool:
    """Whether the module downsamples: it holds a Conv2d with a stride above 1."""
    return any(isinstance(m, nn.Conv2d) and max(m.stride) > 1 for m in module.modules())


def _chunks(items: Sequence[nn.Module], n: int) -> list[list[nn.Module]]:
    """Split ``items`` into ``n`` consecutive, near-equal chunks (the first ones get the extras)."""
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        stop = start + size + (1 if i < extra else 0)
        out.append(list(items[start:stop]))
        start = stop
    return [chunk for chunk in out if chunk]


# --- one mapper per family ----------------------------------------------------------------------


def _resnet(model: nn.Module) -> BlockMap:
    """ResNet / ResNeXt / Wide ResNet: stem (conv1, bn1, relu, maxpool), layer1..layer4."""
    stem = _seq(conv1=model.conv1, bn1=model.bn1, relu=model.relu, maxpool=model.maxpool)
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    return BlockMap(
        family="resnet",
        blocks=[("stem", stem), *_stages(stages)],
        pool=_seq(avgpool=model.avgpool, flatten=nn.Flatten(1)),
        global_pool=_avg_flatten(),
        classifier=model.fc,
    )


def _efficientnet(model: nn.Module) -> BlockMap:
    """EfficientNet v1 and v2: features[0] is the stem, each MBConv stage a stage, + the last 1x1 conv."""
    features = list(model.features)
    stages: list[nn.Module] = features[1:-2]
    stages.append(_seq(features[-2], features[-1]))
    return BlockMap(
        family="efficientnet",
        blocks=[("stem", features[0]), *_stages(stages)],
        pool=_seq(avgpool=model.avgpool, flatten=nn.Flatten(1)),
        global_pool=_avg_flatten(),
        classifier=model.classifier,
    )


def _mobilenet_stages(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """MobileNet v2/v3: group the inverted-residual blocks by resolution (a stride-2 block opens a stage)."""
    features = list(model.features)
    groups: list[list[nn.Module]] = []
    for block in features[1:-1]:
        if not groups or _has_stride2(block):
            groups.append([])
        groups[-1].append(block)
    groups[-1].append(features[-1])
    return [("stem", features[0]), *_stages([_seq(*group) for group in groups])]


def _mobilenet_v2(model: nn.Module) -> BlockMap:
    """MobileNet v2 (its forward pools functionally; the pool here is the module equivalent)."""
    return BlockMap(
        family="mobilenet_v2",
        blocks=_mobilenet_stages(model),
        pool=_avg_flatten(),
        global_pool=_avg_flatten(),
        classifier=model.classifier,
    )


def _mobilenet_v3(model: nn.Module) -> BlockMap:
    """MobileNet v3 small and large."""
    return BlockMap(
        family="mobilenet_v3",
        blocks=_mobilenet_stages(model),
        pool=_seq(avgpool=model.avgpool, flatten=nn.Flatten(1)),
        global_pool=_avg_flatten(),
        classifier=model.classifier,
    )


def _convnext(model: nn.Module) -> BlockMap:
    """ConvNeXt: each downsample joins the stage after it; the pre-head LayerNorm joins stage4."""
    f = model.features
    stages = [
        f[1],
        _seq(downsample=f[2], blocks=f[3]),
        _seq(downsample=f[4], blocks=f[5]),
        _seq(downsample=f[6], blocks=f[7], avgpool=model.avgpool, norm=model.classifier[0]),
    ]
    return BlockMap(
        family="convnext",
        blocks=[("stem", f[0]), *_stages(stages)],
        pool=model.classifier[1],
        global_pool=_avg_flatten(),
        classifier=model.classifier[2],
    )


def _vit(model: nn.Module) -> BlockMap:
    """Vision Transformer: the encoder layers in 4 near-equal stages, the final LayerNorm in the last."""
    chunks = _chunks(list(model.encoder.layers), 4)
    chunks[-1].append(model.encoder.ln)
    return BlockMap(
        family="vit",
        blocks=[("stem", _ViTStem(model)), *_stages([_seq(*chunk) for chunk in chunks])],
        pool=_ClassToken(),
        global_pool=_ClassToken(),
        classifier=model.heads,
        input_size=model.image_size,
        fixed_input=True,
    )


def _swin(model: nn.Module) -> BlockMap:
    """Swin v1/v2: each patch merging joins the stage after it; the final norm joins stage4."""
    f = model.features
    stages = [
        f[1],
        _seq(merge=f[2], blocks=f[3]),
        _seq(merge=f[4], blocks=f[5]),
        _seq(merge=f[6], blocks=f[7], norm=model.norm),
    ]
    return BlockMap(
        family="swin",
        blocks=[("stem", f[0]), *_stages(stages)],
        pool=_seq(permute=model.permute, avgpool=model.avgpool, flatten=model.flatten),
        global_pool=_seq(
            permute=Permute([0, 3, 1, 2]), avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(1)
        ),
        classifier=model.head,
    )


def _densenet(model: nn.Module) -> BlockMap:
    """DenseNet: each dense block with its transition; the last one with norm5 and the final ReLU."""
    f = model.features
    stem = _seq(conv0=f.conv0, norm0=f.norm0, relu0=f.relu0, pool0=f.pool0)
    stages = [
        _seq(denseblock1=f.denseblock1, transition1=f.transition1),
        _seq(denseblock2=f.denseblock2, transition2=f.transition2),
        _seq(denseblock3=f.denseblock3, transition3=f.transition3),
        _seq(denseblock4=f.denseblock4, norm5=f.norm5, relu5=nn.ReLU(inplace=True)),
    ]
    return BlockMap(
        family="densenet",
        blocks=[("stem", stem), *_stages(stages)],
        pool=_avg_flatten(),
        global_pool=_avg_flatten(),
        classifier=model.classifier,
    )


def _regnet(model: nn.Module) -> BlockMap:
    """RegNet X/Y: the stem and trunk_output.block1..block4."""
    trunk = model.trunk_output
    return BlockMap(
        family="regnet",
        blocks=[("stem", model.stem), *_stages([trunk.block1, trunk.block2, trunk.block3, trunk.block4])],
        pool=_seq(avgpool=model.avgpool, flatten=nn.Flatten(1)),
        global_pool=_avg_flatten(),
        classifier=model.fc,
    )


def _vgg(model: nn.Module) -> BlockMap:
    """VGG with or without BN: stem = first conv (+BN) + ReLU; each later stage ends at a MaxPool."""
    layers = list(model.features)
    first_relu = next(i for i, m in enumerate(layers) if isinstance(m, nn.ReLU))
    stem, rest = layers[: first_relu + 1], layers[first_relu + 1 :]
    groups: list[list[nn.Module]] = [[]]
    for layer in rest:
        groups[-1].append(layer)
        if isinstance(layer, nn.MaxPool2d):
            groups.append([])
    if not groups[-1]:
        groups.pop()
    return BlockMap(
        family="vgg",
        blocks=[("stem", _seq(*stem)), *_stages([_seq(*group) for group in groups])],
        pool=_seq(avgpool=model.avgpool, flatten=nn.Flatten(1)),
        global_pool=_avg_flatten(),
        classifier=model.classifier,
    )


@dataclass(frozen=True)
class _Family:
    """A supported family: the model-name prefixes that belong to it and its block mapper."""

    prefixes: tuple[str, ...]
    mapper: Callable[[nn.Module], BlockMap]


_FAMILIES: dict[str, _Family] = {
    "resnet": _Family(("resnet", "resnext", "wide_resnet"), _resnet),
    "efficientnet": _Family(("efficientnet_b", "efficientnet_v2_"), _efficientnet),
    "mobilenet_v2": _Family(("mobilenet_v2",), _mobilenet_v2),
    "mobilenet_v3": _Family(("mobilenet_v3_",), _mobilenet_v3),
    "convnext": _Family(("convnext_",), _convnext),
    "vit": _Family(("vit_",), _vit),
    "swin": _Family(("swin_",), _swin),
    "densenet": _Family(("densenet",), _densenet),
    "regnet": _Family(("regnet_",), _regnet),
    "vgg": _Family(("vgg",), _vgg),
}


def _match_family(name: str) -> str | None:
    """The family whose prefix the name starts with, or None."""
    return next((fam for fam, spec in _FAMILIES.items() if name.startswith(spec.prefixes)), None)


@lru_cache(maxsize=1)
def _backbones() -> tuple[str, ...]:
    names = torchvision.models.list_models(module=torchvision.models)
    return tuple(sorted(name for name in names if _match_family(name) is not None))


# --- public API ---------------------------------------------------------------------------------


def supported_families() -> list[str]:
    """The supported model families, e.g. ``resnet``, ``vit``."""
    return sorted(_FAMILIES)


def list_backbones() -> list[str]:
    """Every torchvision classification model name of a supported family, sorted."""
    return list(_backbones())


def family_of(name: str) -> str:
    """The family of a torchvision model name; a ConfigError listing valid names if unsupported."""
    family = _match_family(name) if name in _backbones() else None
    if family is None:
        raise unknown_name("model", name, list_backbones(), key="model.name")
    return family


def build_torchvision(name: str, weights: object | None = None, **kwargs: object) -> nn.Module:
    """Build a supported torchvision classifier (``weights`` as ``torchvision.models.get_model`` takes)."""
    family_of(name)
    return torchvision.models.get_model(name, weights=weights, **kwargs)


def to_blocks(model: nn.Module, name: str) -> BlockMap:
    """Cut a torchvision model into its block map, reusing (not copying) its submodules."""
    return _FAMILIES[family_of(name)].mapper(model)


def to_blocknet(model: nn.Module, name: str) -> tuple[BlockNet, BlockMap]:
    """The model as a BlockNet (stem, stages..., head = pool + classifier) and its block map."""
    bm = to_blocks(model, name)
    head = nn.Sequential(OrderedDict(pool=bm.pool, classifier=bm.classifier))
    return BlockNet(bm.blocks, head=head, family=bm.family), bm
