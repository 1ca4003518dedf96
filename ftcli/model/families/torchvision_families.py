"""The torchvision families: one mapper each from a torchvision classifier to its BlockMap.

A mapper reuses the model's own submodules (no copies): the pretrained parameters are the same
objects, each lives in exactly one block, and in eval mode the block-by-block network computes exactly
what ``model(x)`` computes. Functional ops from torchvision's ``forward`` (ViT's input reshaping, the
class-token selection) become small parameter-free modules so that they can sit in a block.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.ops.misc import Permute

from ftcli.model.block_map import BlockMap, near_equal_chunks, stage_blocks
from ftcli.model.families import family
from ftcli.model.model_input import ModelInput

# what every family here but ViT takes: RGB images of any side
ANY_IMAGE = ModelInput.image()

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


def _has_stride2(module: nn.Module) -> bool:
    """Whether the module downsamples: it holds a Conv2d with a stride above 1."""
    return any(isinstance(m, nn.Conv2d) and max(m.stride) > 1 for m in module.modules())


# --- one mapper per family ----------------------------------------------------------------------


@family("resnet", "resnet", "resnext", "wide_resnet")
def _resnet(model: nn.Module) -> BlockMap:
    """ResNet / ResNeXt / Wide ResNet: stem (conv1, bn1, relu, maxpool), layer1..layer4."""
    stem = _seq(conv1=model.conv1, bn1=model.bn1, relu=model.relu, maxpool=model.maxpool)
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    return BlockMap(
        family="resnet",
        blocks=[("stem", stem), *stage_blocks(stages)],
        pool=_seq(avgpool=model.avgpool, flatten=nn.Flatten(1)),
        global_pool=_avg_flatten(),
        classifier=model.fc,
        input=ANY_IMAGE,
    )


@family("efficientnet", "efficientnet_b", "efficientnet_v2_")
def _efficientnet(model: nn.Module) -> BlockMap:
    """EfficientNet v1 and v2: features[0] is the stem, each MBConv stage a stage, + the last 1x1 conv."""
    features = list(model.features)
    stages: list[nn.Module] = features[1:-2]
    stages.append(_seq(features[-2], features[-1]))
    return BlockMap(
        family="efficientnet",
        blocks=[("stem", features[0]), *stage_blocks(stages)],
        pool=_seq(avgpool=model.avgpool, flatten=nn.Flatten(1)),
        global_pool=_avg_flatten(),
        classifier=model.classifier,
        input=ANY_IMAGE,
    )


def _mobilenetstage_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """MobileNet v2/v3: group the inverted-residual blocks by resolution (a stride-2 block opens a stage)."""
    features = list(model.features)
    groups: list[list[nn.Module]] = []
    for block in features[1:-1]:
        if not groups or _has_stride2(block):
            groups.append([])
        groups[-1].append(block)
    groups[-1].append(features[-1])
    return [("stem", features[0]), *stage_blocks([_seq(*group) for group in groups])]


@family("mobilenet_v2", "mobilenet_v2")
def _mobilenet_v2(model: nn.Module) -> BlockMap:
    """MobileNet v2 (its forward pools functionally; the pool here is the module equivalent)."""
    return BlockMap(
        family="mobilenet_v2",
        blocks=_mobilenetstage_blocks(model),
        pool=_avg_flatten(),
        global_pool=_avg_flatten(),
        classifier=model.classifier,
        input=ANY_IMAGE,
    )


@family("mobilenet_v3", "mobilenet_v3_")
def _mobilenet_v3(model: nn.Module) -> BlockMap:
    """MobileNet v3 small and large."""
    return BlockMap(
        family="mobilenet_v3",
        blocks=_mobilenetstage_blocks(model),
        pool=_seq(avgpool=model.avgpool, flatten=nn.Flatten(1)),
        global_pool=_avg_flatten(),
        classifier=model.classifier,
        input=ANY_IMAGE,
    )


@family("convnext", "convnext_")
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
        blocks=[("stem", f[0]), *stage_blocks(stages)],
        pool=model.classifier[1],
        global_pool=_avg_flatten(),
        classifier=model.classifier[2],
        input=ANY_IMAGE,
    )


@family("vit", "vit_")
def _vit(model: nn.Module) -> BlockMap:
    """Vision Transformer: the encoder layers in 4 near-equal stages, the final LayerNorm in the last."""
    chunks = near_equal_chunks(list(model.encoder.layers), 4)
    chunks[-1].append(model.encoder.ln)
    return BlockMap(
        family="vit",
        blocks=[("stem", _ViTStem(model)), *stage_blocks([_seq(*chunk) for chunk in chunks])],
        pool=_ClassToken(),
        global_pool=_ClassToken(),
        classifier=model.heads,
        input=ModelInput.image(model.image_size, size_kwarg="image_size"),
    )


@family("swin", "swin_")
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
        blocks=[("stem", f[0]), *stage_blocks(stages)],
        pool=_seq(permute=model.permute, avgpool=model.avgpool, flatten=model.flatten),
        global_pool=_seq(
            permute=Permute([0, 3, 1, 2]), avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(1)
        ),
        classifier=model.head,
        input=ANY_IMAGE,
    )


@family("densenet", "densenet")
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
        blocks=[("stem", stem), *stage_blocks(stages)],
        pool=_avg_flatten(),
        global_pool=_avg_flatten(),
        classifier=model.classifier,
        input=ANY_IMAGE,
    )


@family("regnet", "regnet_")
def _regnet(model: nn.Module) -> BlockMap:
    """RegNet X/Y: the stem and trunk_output.block1..block4."""
    trunk = model.trunk_output
    stages = [trunk.block1, trunk.block2, trunk.block3, trunk.block4]
    return BlockMap(
        family="regnet",
        blocks=[("stem", model.stem), *stage_blocks(stages)],
        pool=_seq(avgpool=model.avgpool, flatten=nn.Flatten(1)),
        global_pool=_avg_flatten(),
        classifier=model.fc,
        input=ANY_IMAGE,
    )


@family("vgg", "vgg")
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
        blocks=[("stem", _seq(*stem)), *stage_blocks([_seq(*group) for group in groups])],
        pool=_seq(avgpool=model.avgpool, flatten=nn.Flatten(1)),
        global_pool=_avg_flatten(),
        classifier=model.classifier,
        input=ANY_IMAGE,
    )
