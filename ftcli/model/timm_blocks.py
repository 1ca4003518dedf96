"""Cut a timm classifier into ftcli's blocks (stem, stages, head) from timm's own stage metadata.

timm describes every model's stages in ``feature_info`` (the module that ends each stage, its
channels and stride) and names its classifier in ``pretrained_cfg["classifier"]``. For the convnets
(EfficientNet, ResNet, ConvNeXt, MobileNetV3, RegNet and most others) ``forward`` runs the model's
children in order, the convention timm's own ``features_only`` wrapper relies on; so the children,
read in order and cut after each stage's last module, are the blocks. Vision transformers add their
position embedding functionally and get a small stem module of their own.

Parameters that timm applies after pooling (MobileNetV3's ``conv_head``, ConvNeXt's head norm, a
ViT's final norm) are pretrained, so they join the last stage: the head ftcli replaces holds only the
classifier and parameter-free pooling. Every mapping is checked numerically when it is made (the
blocks must compute the model's own logits), so a model whose forward does something else is refused
with a clear message instead of being trained wrong.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import replace

import torch
from torch import nn

from ftcli.errors import ConfigError
from ftcli.model.block_map import BlockMap, near_equal_chunks, stage_blocks
from ftcli.model.model_input import DEFAULT_INPUT_SIZE, ModelInput

Named = list[tuple[str, nn.Module]]


def family(model: nn.Module) -> str:
    """``timm-efficientnet``, ``timm-visiontransformer``...: the model's class (used in file names too)."""
    return f"timm-{type(model).__name__.lower()}"


def to_blocks(model: nn.Module, arch: str) -> BlockMap:
    """The block map of a timm classifier, checked against the model's own forward pass."""
    from timm.models.vision_transformer import VisionTransformer

    try:
        block_map = _vit(model) if isinstance(model, VisionTransformer) else _sequential(model)
    except _Unmappable as exc:
        raise _unsupported(arch, str(exc)) from exc
    _check_same_logits(model, block_map, arch)
    return block_map


class _Unmappable(Exception):
    """The model's layout is not one the mappers here understand."""


def _unsupported(arch: str, why: str) -> ConfigError:
    return ConfigError(
        f"timm/{arch} cannot be cut into ftcli's blocks: {why}.",
        "Supported: timm convnets whose forward runs their stages in order (EfficientNet, ResNet, ConvNeXt, "
        "MobileNet, RegNet, ...) and VisionTransformer models (vit_*, deit_*).",
    )


# --- convnets: the children in order ------------------------------------------------------------


def _ordered_children(model: nn.Module, opened: set[str]) -> Named:
    """The model's children in order; a child named in ``opened`` contributes its own children instead."""
    out: Named = []
    for name, child in model.named_children():
        if name in opened:
            out += [(f"{name}.{sub}", module) for sub, module in child.named_children()]
        else:
            out.append((name, child))
    return out


def _sequential(model: nn.Module) -> BlockMap:
    stage_ends = [str(info["module"]) for info in model.feature_info]
    classifier_name = model.pretrained_cfg.get("classifier")
    if not isinstance(classifier_name, str):
        raise _Unmappable(f"it has {classifier_name or 'no'} classifier(s), not one")
    opened = {name.split(".")[0] for name in [*stage_ends, classifier_name] if "." in name}
    items = _ordered_children(model, opened)
    position = {name: i for i, (name, _) in enumerate(items)}
    missing = [name for name in [*stage_ends, classifier_name] if name not in position]
    if missing:
        raise _Unmappable(f"its stage metadata names modules nested too deep ({', '.join(missing)})")
    ends = [position[name] for name in stage_ends]
    cls = position[classifier_name]
    if ends != sorted(ends) or ends[-1] >= cls:
        raise _Unmappable("its stages are not in forward order before the classifier")
    after = [module for _, module in items[cls + 1 :]]
    if any(not isinstance(m, (nn.Identity, nn.Flatten)) for m in after):
        raise _Unmappable("it runs layers after its classifier")

    # A first stage inside a container (blocks.0, stages.0) starts after the stem, at the container's
    # first module; a top-level one (act1, bn1, stem) is the stem's own last module.
    if "." in stage_ends[0]:
        container = stage_ends[0].split(".")[0] + "."
        first = next(i for i, (name, _) in enumerate(items) if name.startswith(container))
        starts = [first, *[end + 1 for end in ends[:-1]]]
        groups = [items[:first], *[items[a : b + 1] for a, b in zip(starts, ends, strict=True)]]
    else:
        groups = [items[: ends[0] + 1], *[items[a + 1 : b + 1] for a, b in itertools.pairwise(ends)]]
    if not groups[0] or not all(groups) or len(groups) < 2:
        raise _Unmappable("its stage metadata does not give a stem and stages")

    tail = items[ends[-1] + 1 : cls]
    with_params = [i for i, (_, m) in enumerate(tail) if _holds_tensors(m)]
    cut = with_params[-1] + 1 if with_params else 0
    groups[-1] = groups[-1] + tail[:cut]
    pool = _named_seq(tail[cut:])
    blocks = [("stem", _named_seq(groups[0])), *stage_blocks([_named_seq(g) for g in groups[1:]])]
    return BlockMap(
        family=family(model),
        blocks=blocks,
        pool=pool,
        global_pool=_average_pool(str(getattr(model, "output_fmt", "NCHW"))),
        classifier=items[cls][1],
        # any side, until _check_same_logits finds that only the pretraining side works
        input=ModelInput.image(channels=_in_channels(model), size_kwarg=None),
    )


# --- vision transformers ------------------------------------------------------------------------


class _ViTTokens(nn.Module):
    """Patchify, add the class/register tokens and position embedding (timm's ``_pos_embed``).

    The embedding parameters are registered here (the same objects as in the model) so that they
    belong to the stem block; the model is kept only to call its ``_pos_embed``, which reads them.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.patch_embed = model.patch_embed
        for name in ("cls_token", "reg_token", "pos_embed"):
            value = getattr(model, name, None)
            if isinstance(value, nn.Parameter):
                self.register_parameter(name, value)
        self.pos_drop = model.pos_drop
        self.patch_drop = model.patch_drop
        self.norm_pre = model.norm_pre
        object.__setattr__(self, "_vit", model)  # not a submodule: its tensors live in the blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = self._vit._pos_embed(x)
        x = self.patch_drop(x)
        return self.norm_pre(x)


class _TokenPool(nn.Module):
    """timm's ViT pooling of a token sequence (class token, or mean of the patch tokens)."""

    def __init__(self, pool_type: str, num_prefix_tokens: int, include_prefix: bool = False) -> None:
        super().__init__()
        self.pool_type = pool_type
        self.num_prefix_tokens = num_prefix_tokens
        self.include_prefix = include_prefix

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from timm.layers import global_pool_nlc

        return global_pool_nlc(
            x,
            pool_type=self.pool_type,
            num_prefix_tokens=self.num_prefix_tokens,
            reduce_include_prefix=self.include_prefix,
        )


def _vit(model: nn.Module) -> BlockMap:
    if getattr(model, "attn_pool", None) is not None:
        raise _Unmappable("it pools with attention (global_pool='map')")
    prefix = int(model.num_prefix_tokens)
    pool_type = str(model.global_pool or "token")
    if pool_type not in ("token", "avg", "max", "avgmax"):
        raise _Unmappable(f"its pooling '{pool_type}' is not supported")
    pool = _TokenPool(pool_type, prefix, bool(getattr(model, "pool_include_prefix", False)))
    layers = list(model.blocks)
    if len(layers) < 4:
        raise _Unmappable("it has fewer than 4 transformer blocks")
    chunks = near_equal_chunks([(str(j), layer) for j, layer in enumerate(layers)], 4)
    chunks[-1].append(("norm", model.norm))
    fc_norm = [("pool", pool), ("fc_norm", model.fc_norm)] if _holds_tensors(model.fc_norm) else []
    chunks[-1] += fc_norm
    head_pool = nn.Identity() if fc_norm else pool
    side = int(model.patch_embed.img_size[0]) if model.patch_embed.img_size else DEFAULT_INPUT_SIZE
    has_class_token = prefix > 0 and getattr(model, "cls_token", None) is not None
    truncated = _TokenPool("token" if has_class_token else "avg", prefix)
    return BlockMap(
        family=family(model),
        blocks=[("stem", _ViTTokens(model)), *stage_blocks([_named_seq(c) for c in chunks])],
        pool=_named_seq([("pool", head_pool), ("head_drop", model.head_drop)]),
        global_pool=truncated,
        classifier=model.head,
        input=ModelInput.image(
            None if getattr(model, "dynamic_img_size", False) else side,
            channels=_in_channels(model),
            size_kwarg="img_size",
            natural_size=side,
        ),
    )


# --- helpers ------------------------------------------------------------------------------------


def _average_pool(fmt: str) -> nn.Module:
    """Global average pooling to (N, C) of a feature map in the model's layout (Swin's is NHWC)."""
    from timm.layers import SelectAdaptivePool2d

    return SelectAdaptivePool2d(pool_type="avg", flatten=True, input_fmt=fmt)


def _named_seq(items: Named) -> nn.Sequential:
    """A Sequential keeping timm's names (``blocks.3`` becomes ``blocks_3``: dots are not allowed)."""
    return nn.Sequential(OrderedDict((name.replace(".", "_"), module) for name, module in items))


def _in_channels(model: nn.Module) -> int:
    """The image channels the model takes: its first convolution's (3 when it has none)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return int(first.in_channels) if first is not None else 3


def _holds_tensors(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def _check_same_logits(model: nn.Module, block_map: BlockMap, arch: str) -> None:
    """The blocks, run in order, must give the model's own logits (eval mode, a small random input).

    A model that only takes its pretraining size (Swin, MaxViT) fails at the small size and passes at
    its own: it is marked as taking fixed-size input, like a ViT.
    """
    native = int(model.pretrained_cfg.get("input_size", (3, DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE))[-1])
    try:
        _same_logits(model, block_map, block_map.input.probe_size)
        return
    except Exception as exc:  # a shape or size error means the children are not the forward pass
        if block_map.input.fixed_size or native == block_map.input.probe_size:
            raise _unsupported(arch, _why(exc)) from exc
    try:
        _same_logits(model, block_map, native)
    except Exception as exc:
        raise _unsupported(arch, _why(exc)) from exc
    block_map.input = replace(block_map.input, size=native, size_kwarg="img_size")


def _why(exc: Exception) -> str:
    if isinstance(exc, _Unmappable):
        return str(exc)
    return f"running its children in order fails ({type(exc).__name__})"


@torch.no_grad()
def _same_logits(model: nn.Module, block_map: BlockMap, side: int) -> None:
    was_training = model.training
    model.eval()
    try:
        channels = block_map.input.channels or 3
        x = torch.randn(2, channels, side, side, generator=torch.Generator().manual_seed(0))
        expected = model(x)
        out = x
        for _, block in block_map.blocks:
            out = block(out)
        out = block_map.classifier(block_map.pool(out))
    finally:
        model.train(was_training)
    if out.shape != expected.shape or not torch.allclose(out, expected, rtol=1e-4, atol=1e-4):
        raise _Unmappable("its forward pass is not its children run in order")
