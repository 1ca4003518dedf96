"""Augmentation on the training device: the random part of the training transform, per image, per batch.

The per-image path (``transforms.train_transform``) decodes, crops, flips and jitters every image on
the CPU, every epoch. With ``data.augment_on_device`` the decoding and resizing are done once into a
uint8 store (``image_store``), and what must differ every epoch is drawn here, for each image of a
batch, and applied to the whole batch at once where the batch lives (the GPU):

- ``random_resized_crop``: the crop box is drawn by torchvision's own ``RandomResizedCrop`` for the
  image's *original* size; the store keeps every image whole, squashed to a square, so the box is
  mapped onto it and cut out and resized for the whole batch in one ``roi_align`` (bilinear, with
  area averaging when it shrinks).
- ``hflip``: each image mirrored with probability 0.5.
- ``color_jitter``: brightness, contrast, saturation and hue factors drawn per image, as
  ``ColorJitter`` draws them; their order is drawn once per batch.

This is statistically equivalent to the per-image path, not equal to it (docs/training-options.md):
the same distribution of crop boxes, flips and jitter factors, but the pixels are resampled from the
stored square (``data.image_size``'s resize side) rather than from the full-resolution file, so the
smallest crops are softer, and the resampling is bilinear whatever ``interpolation`` the weights use.
``rotate`` and ``policy`` stay on the per-image path. Random numbers come from torch's global
generator, which the training sampler seeds per epoch, so a resumed run draws what the first drew.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torchvision import tv_tensors
from torchvision.ops import roi_align
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2.functional._color import _hsv_to_rgb, _rgb_to_hsv

from ftcli.data.images.transforms import validate_augment

PER_IMAGE_ONLY = ("rotate", "policy")  # data.augment options that have no batched form here


class AugmentBatch(NamedTuple):
    """A training batch still to be augmented: uint8 store images, labels, each image's original (h, w).

    A tuple, so Lightning moves every field to the device; the datamodule's
    ``on_after_batch_transfer`` turns it into the usual ``(inputs, labels)``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    sizes: torch.Tensor


def unsupported(augment: Mapping[str, Any] | None) -> str | None:
    """Why ``augment`` cannot run on the device (an option with no batched form), or None when it can."""
    aug = validate_augment(augment)
    used = [f"data.augment.{key}" for key in PER_IMAGE_ONLY if aug[key]]
    return f"{', '.join(used)} runs per image" if used else None


@dataclass(frozen=True)
class DeviceAugment:
    """The random part of ``data.augment`` (crop, flip, jitter) for whole uint8 batches on any device."""

    crop: int
    random_resized_crop: bool
    scale: tuple[float, float]
    hflip: bool
    color_jitter: float

    @classmethod
    def from_config(cls, augment: Mapping[str, Any] | None, crop: int) -> DeviceAugment:
        aug = validate_augment(augment)
        return cls(crop, aug["random_resized_crop"], aug["scale"], aug["hflip"], aug["color_jitter"])

    @property
    def squashes(self) -> bool:
        """Whether the store must keep whole images (for random crops) rather than centre crops."""
        return self.random_resized_crop

    def __call__(self, images: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, S, S) -> float in [0, 1], (N, 3, crop, crop), each image augmented on its own."""
        x = F.to_dtype(images, torch.float32, scale=True)
        if self.random_resized_crop:
            x = self.resized_crops(x, self.crop_boxes(sizes.tolist(), x.shape[-1]).to(x.device))
        if self.hflip:
            flip = (torch.rand(len(x)) < 0.5).to(x.device).view(-1, 1, 1, 1)
            x = torch.where(flip, x.flip(-1), x)
        if self.color_jitter:
            x = self.jitter(x)
        return x

    def crop_boxes(self, sizes: list[list[int]], side: int) -> torch.Tensor:
        """One (x1, y1, x2, y2) box per image, drawn for its original size, in store pixels."""
        draw = v2.RandomResizedCrop(self.crop, scale=self.scale)
        boxes = []
        for height, width in sizes:
            p = draw.make_params([tv_tensors.Image(torch.empty(0, height, width))])
            sx, sy = side / width, side / height
            boxes.append(
                [p["left"] * sx, p["top"] * sy, (p["left"] + p["width"]) * sx, (p["top"] + p["height"]) * sy]
            )
        return torch.tensor(boxes, dtype=torch.float32)

    def resized_crops(self, x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Cut each image's box out and resize it to crop x crop, the whole batch in one call."""
        index = torch.arange(len(x), device=x.device, dtype=x.dtype).unsqueeze(1)
        rois = torch.cat([index, boxes.to(x.dtype)], dim=1)
        return roi_align(
            x, rois, output_size=(self.crop, self.crop), spatial_scale=1.0, sampling_ratio=-1, aligned=True
        )

    def jitter(self, x: torch.Tensor) -> torch.Tensor:
        """ColorJitter(brightness=s, contrast=s, saturation=s, hue=min(0.5, s/4)) with per-image factors."""
        n, s = len(x), self.color_jitter
        low, high, hue = max(0.0, 1 - s), 1 + s, min(0.5, s / 4)
        factors = torch.stack(
            [torch.empty(n).uniform_(low, high) for _ in range(3)] + [torch.empty(n).uniform_(-hue, hue)]
        )
        return apply_jitter(x, torch.randperm(4).tolist(), factors.to(x.device))


def apply_jitter(x: torch.Tensor, order: list[int], factors: torch.Tensor) -> torch.Tensor:
    """Brightness (0), contrast (1), saturation (2) and hue (3) in ``order``; ``factors[op]`` holds one
    factor per image, with torchvision's meaning (``adjust_brightness`` and so on) and formulas."""
    for op in order:
        f = factors[op].view(-1, 1, 1, 1)
        if op == 0:
            x = _blend(x, torch.zeros_like(x[:, :1]), f)
        elif op == 1:
            x = _blend(x, F.rgb_to_grayscale(x).mean(dim=(-3, -2, -1), keepdim=True), f)
        elif op == 2:
            x = _blend(x, F.rgb_to_grayscale(x), f)
        else:
            h, saturation, value = _rgb_to_hsv(x).unbind(dim=-3)
            h = torch.remainder(h + f.view(-1, 1, 1), 1.0)
            x = _hsv_to_rgb(torch.stack((h, saturation, value), dim=-3))
    return x


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's blend for float images: factor * x + (1 - factor) * other, kept in [0, 1]."""
    return (factor * x + (1 - factor) * other).clamp(0, 1)
