"""Image preprocessing described as plain data.

A pretrained network expects its inputs resized, cropped and normalised exactly as during its
pretraining. :class:`TransformSpec` holds those few numbers so that a checkpoint can record them
(as plain Python types, loadable with ``torch.load(weights_only=True)``) and ``predict`` can
rebuild the same evaluation transform later without the training config.

Every transform built here starts with :func:`to_rgb`, so whatever opens an image (the training
datasets, ``predict``) gets 3-channel RGB from grayscale, palette, 16-bit or RGBA files alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms import InterpolationMode, v2

from ftcli.errors import ConfigError, reject_unknown_keys

INTERPOLATIONS = {mode.value: mode for mode in InterpolationMode}
AUGMENT_KEYS = ("random_resized_crop", "scale", "hflip", "rotate", "color_jitter", "policy")
# data.augment.policy: a learned or random augmentation policy, at torchvision's defaults
# (RandAugment: 2 ops at magnitude 9; AutoAugment: the ImageNet policy).
AUGMENT_POLICIES: dict[str, Callable[[], Callable]] = {
    "randaugment": v2.RandAugment,
    "trivialaugment": v2.TrivialAugmentWide,
    "autoaugment": v2.AutoAugment,
}
DEFAULT_SCALE = (0.08, 1.0)
EXIF_ORIENTATION = 0x0112
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 224


@dataclass
class TransformSpec:
    """How to turn an image into the network's input: resize, centre crop, normalise."""

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        self.resize = _positive_int("resize", self.resize)
        self.crop = _positive_int("crop", self.crop)
        self.mean = _triple("mean", self.mean)
        self.std = _triple("std", self.std)
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"Transform std must be positive, got {list(self.std)}.")
        self.interpolation = str(self.interpolation).lower()
        if self.interpolation not in INTERPOLATIONS:
            valid = ", ".join(sorted(INTERPOLATIONS))
            raise ConfigError(
                f"Unknown interpolation '{self.interpolation}'.", f"Valid interpolation names: {valid}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain ints, floats, lists and str only, safe for a ``weights_only`` checkpoint."""
        return {
            "resize": int(self.resize),
            "crop": int(self.crop),
            "mean": [float(m) for m in self.mean],
            "std": [float(s) for s in self.std],
            "interpolation": str(self.interpolation),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TransformSpec:
        """Rebuild a spec from :meth:`to_dict` output (extra keys are ignored)."""
        missing = [k for k in ("resize", "crop", "mean", "std") if k not in d]
        if missing:
            found = ", ".join(map(str, d)) or "none"
            raise ConfigError(
                f"Transform description lacks {', '.join(missing)} (found: {found}).",
                "It should come from TransformSpec.to_dict(); re-save the checkpoint with this ftcli.",
            )
        return cls(
            resize=d["resize"],
            crop=d["crop"],
            mean=tuple(d["mean"]),
            std=tuple(d["std"]),
            interpolation=d.get("interpolation", "bilinear"),
        )

    @classmethod
    def from_weights(cls, weights: Any) -> TransformSpec | None:
        """Read the preset of a torchvision weights enum; None when it has no classification preset."""
        make = getattr(weights, "transforms", None)
        if make is None:
            return None
        preset = make()
        if not all(hasattr(preset, a) for a in ("crop_size", "resize_size", "mean", "std")):
            return None
        interpolation = getattr(preset, "interpolation", InterpolationMode.BILINEAR)
        return cls(
            resize=_first(preset.resize_size),
            crop=_first(preset.crop_size),
            mean=tuple(preset.mean),
            std=tuple(preset.std),
            interpolation=getattr(interpolation, "value", str(interpolation)),
        )


def input_transform(data_cfg: Mapping[str, Any], base: TransformSpec | None) -> TransformSpec:
    """Eval preprocessing: ``base`` (the weights' own, when they define one), else the data config's.

    ``data.image_size`` (when set) overrides the input side, keeping the weights' resize ratio;
    ``data.mean``/``data.std`` (when set) override the normalisation.
    """
    size = data_cfg.get("image_size")
    if base is None:
        side = int(size or DEFAULT_SIZE)
        base = TransformSpec(resize=side, crop=side, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    elif size:
        base = replace(base, resize=round(int(size) * base.resize / base.crop), crop=int(size))
    if data_cfg.get("mean") is not None:
        base = replace(base, mean=tuple(float(v) for v in data_cfg["mean"]))
    if data_cfg.get("std") is not None:
        base = replace(base, std=tuple(float(v) for v in data_cfg["std"]))
    return base


def _first(size: int | list[int] | tuple[int, ...]) -> int:
    """Torchvision presets store sizes as one-element lists."""
    return int(size) if isinstance(size, int) else int(size[0])


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"Transform {name} must be a positive integer, got {value!r}.")
    return int(value)


def _triple(name: str, value: Any) -> tuple[float, float, float]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3:
        raise ConfigError(f"Transform {name} must be three numbers (R, G, B), got {value!r}.")
    return out  # type: ignore[return-value]


# ---------------------------------------------------------------------------- RGB conversion


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL image as 8-bit RGB: EXIF rotation applied, transparency composited onto white."""
    if img.getexif().get(EXIF_ORIENTATION, 1) != 1:
        img = ImageOps.exif_transpose(img)
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        img = _to_8bit(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and float grayscale to 8-bit (PIL's own conversion would clip at 255)."""
    arr = np.asarray(img, dtype=np.float64)
    top = arr.max() if arr.size else 0.0
    if img.mode == "F" and top <= 1.0:
        arr = arr * 255.0
    elif top > 255:
        arr = arr * (255.0 / 65535.0)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")


class ToRGB:
    """Transform wrapper of :func:`to_rgb`; a class (not a lambda) so DataLoader workers can pickle it."""

    def __call__(self, img: Image.Image) -> Image.Image:
        return to_rgb(img) if isinstance(img, Image.Image) else img

    def __repr__(self) -> str:
        return "ToRGB()"


# ---------------------------------------------------------------------------- transforms


def _tail(spec: TransformSpec) -> list[Callable]:
    """PIL image -> normalised float tensor."""
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(spec.mean, spec.std)]


def _resize_crop(spec: TransformSpec) -> list[Callable]:
    mode = INTERPOLATIONS[spec.interpolation]
    return [v2.Resize(spec.resize, interpolation=mode, antialias=True), v2.CenterCrop(spec.crop)]


def eval_transform(spec: TransformSpec) -> Callable:
    """RGB, resize the shorter side, centre crop, to float tensor, normalise."""
    return v2.Compose([ToRGB(), *_resize_crop(spec), *_tail(spec)])


def train_transform(spec: TransformSpec, augment: Mapping[str, Any] | None) -> Callable:
    """Like :func:`eval_transform` plus the augmentations switched on in ``augment``."""
    aug = validate_augment(augment)
    steps: list[Callable] = [ToRGB()]
    if aug["random_resized_crop"]:
        mode = INTERPOLATIONS[spec.interpolation]
        steps.append(v2.RandomResizedCrop(spec.crop, scale=aug["scale"], interpolation=mode, antialias=True))
    else:
        steps.extend(_resize_crop(spec))
    if aug["hflip"]:
        steps.append(v2.RandomHorizontalFlip())
    if aug["policy"]:
        # on the cropped PIL image (uint8), as the policies were designed for, before rotate and jitter
        steps.append(AUGMENT_POLICIES[aug["policy"]]())
    if aug["rotate"]:
        steps.append(v2.RandomRotation(aug["rotate"]))
    if aug["color_jitter"]:
        s = aug["color_jitter"]
        steps.append(v2.ColorJitter(brightness=s, contrast=s, saturation=s, hue=min(0.5, s / 4)))
    return v2.Compose([*steps, *_tail(spec)])


def is_deterministic(augment: Mapping[str, Any] | None) -> bool:
    """True when every augmentation is off, so the train transform equals the eval transform."""
    aug = validate_augment(augment)
    return not (
        aug["random_resized_crop"] or aug["hflip"] or aug["rotate"] or aug["color_jitter"] or aug["policy"]
    )


def validate_augment(augment: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``data.augment`` mapping checked and completed with defaults (everything off)."""
    augment = dict(augment or {})
    reject_unknown_keys(augment, AUGMENT_KEYS, "data.augment", kind="augmentation", list_prefix=False)
    return {
        "random_resized_crop": _flag(augment, "random_resized_crop"),
        "scale": _scale(augment.get("scale")),
        "hflip": _flag(augment, "hflip"),
        "rotate": _non_negative(augment, "rotate", 180.0),  # the schema's range (ftcli.config.schema)
        "color_jitter": _non_negative(augment, "color_jitter", 1.0),
        "policy": _policy(augment.get("policy")),
    }


def _flag(augment: Mapping[str, Any], key: str) -> bool:
    value = augment.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConfigError(f"data.augment.{key} must be true or false, got {value!r}.")
    return value


def _non_negative(augment: Mapping[str, Any], key: str, maximum: float) -> float:
    value = augment.get(key)
    if value is None or value is False:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= maximum:
        raise ConfigError(f"data.augment.{key} must be a number from 0 (off) to {maximum:g}, got {value!r}.")
    return float(value)


def _policy(value: Any) -> str | None:
    """``data.augment.policy``: null (off) or one of :data:`AUGMENT_POLICIES`, case-insensitive."""
    if value is None or value is False:
        return None
    name = str(value).lower() if isinstance(value, str) else None
    if name in ("null", "none", "off"):
        return None
    if name not in AUGMENT_POLICIES:
        valid = ", ".join(AUGMENT_POLICIES)
        raise ConfigError(
            f"data.augment.policy={value!r} is not an augmentation policy: it must be null (off) or one "
            f"of {valid}.",
            "For example data.augment.policy=randaugment",
        )
    return name


def _scale(value: Any) -> tuple[float, float]:
    if value is None:
        return DEFAULT_SCALE
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        lo, hi = math.nan, math.nan
    if not 0 < lo <= hi <= 1:
        raise ConfigError(
            f"data.augment.scale must be two numbers 0 < min <= max <= 1, got {value!r}.",
            "For example data.augment.scale=[0.5,1.0]",
        )
    return lo, hi
