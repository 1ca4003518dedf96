"""The JPEG folder rows: ftcli against the raw loop on real-size JPEGs a user's ``data=imagefolder``
run decodes, where the digits rows (tiny arrays in memory) would hide the cost of reading images."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any, NamedTuple

from bench.contenders import LIVE, Suite, contend
from bench.stats import ratio_keys, ratios

# the JPEG folder: full in every round against the raw loop, last_layers once
JPEG_ROUNDS = ("full",)
JPEG_ONCE = ("last_layers",)
# ... and full with a training augmentation (random crop + flip), per image in loader workers vs per
# batch on the training device from images stored once (data.augment_on_device)
AUGMENT = ["data.augment.random_resized_crop=true", "data.augment.hflip=true"]
JPEG_AUGMENTED = (
    ("full", [*LIVE, *AUGMENT, "data.augment_on_device=false"], "full augmented per image"),
    ("full", [*LIVE, *AUGMENT, "data.augment_on_device=true"], "full augmented on the device"),
)
# scikit-image's bundled colour photos (no download), one class each (skimage's cat() is chelsea())
JPEG_SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field")
JPEG_VAL_FRACTION = 0.2


class JpegResults(NamedTuple):
    """What the JPEG suite adds to the report: its rows, its config block and its ratio keys."""

    rows: list[dict[str, Any]]
    config: dict[str, Any]
    ratios: dict[str, Any]


def jpeg_overrides(args: argparse.Namespace, root: Path) -> list[str]:
    """The JPEG config: the model's default (pretrained) weights, ``data.num_workers`` at auto, and a
    deterministic training transform (resize + normalise, no random crop or flip), so that ftcli and the
    raw loop do the same work per image."""
    return [
        f"model={args.jpeg_model}",
        *([f"model.weights={args.jpeg_weights}"] if args.jpeg_weights else []),
        "data=imagefolder",
        f"data.root={root}",
        f"data.image_size={args.jpeg_image_size}",
        f"data.batch_size={args.jpeg_batch_size}",
        "data.augment.random_resized_crop=false",
        "data.augment.hflip=false",
    ]


def make_jpeg_folder(root: Path, images: int, size: int, seed: int = 0) -> dict[str, Any]:
    """``root/train|val/<photo>/*.jpg``: random crops of scikit-image's sample photos, rescaled to
    sides drawn from ``0.6 * size`` to ``size`` px, one class per photo; returns what it made."""
    import numpy as np
    from PIL import Image
    from skimage import data as samples

    rng = np.random.default_rng(seed)
    per_class = max(2, images // len(JPEG_SOURCES))
    val = max(1, round(per_class * JPEG_VAL_FRACTION))
    smallest = max(1, round(0.6 * size))
    made = {"train": 0, "val": 0}
    for name in JPEG_SOURCES:
        photo = Image.fromarray(getattr(samples, name)()).convert("RGB")
        width, height = photo.size
        for split in ("train", "val"):
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            split = "val" if i < val else "train"
            w, h = (int(v) for v in rng.integers(smallest, size + 1, size=2))
            # a box of the output's aspect covering 40-100% of the largest such box inside the photo
            box_w = min(width, height * w / h) * math.sqrt(rng.uniform(0.4, 1.0))
            box_h = box_w * h / w
            x0, y0 = rng.uniform(0, width - box_w), rng.uniform(0, height - box_h)
            crop = photo.resize((w, h), Image.Resampling.BICUBIC, box=(x0, y0, x0 + box_w, y0 + box_h))
            crop.save(root / split / name / f"{name}-{i:04d}.jpg", quality=90)
            made[split] += 1
    return {
        "root": str(root),
        "classes": list(JPEG_SOURCES),
        "train_images": made["train"],
        "val_images": made["val"],
        "side_px": [smallest, size],
    }


def run_jpeg_suite(
    args: argparse.Namespace, work: Path, cache: Path, phase_seconds: dict[str, float]
) -> JpegResults:
    """Make the folder, then the rounds of raw loop and ``ftcli full`` and the once-only rows on it;
    the folder's and the suite's seconds go into ``phase_seconds``."""
    phase = time.perf_counter()
    folder = make_jpeg_folder(work / "jpeg-folder", args.jpeg_images, args.jpeg_size)
    phase_seconds["jpeg_folder"] = time.perf_counter() - phase
    print(
        f"  jpeg folder: {folder['train_images']} train + {folder['val_images']} val JPEGs, "
        f"{folder['side_px'][0]}-{folder['side_px'][1]} px ({phase_seconds['jpeg_folder']:.1f} s)",
        flush=True,
    )
    phase = time.perf_counter()
    suite = Suite(
        "jpeg",
        "jpeg · ",
        tuple(jpeg_overrides(args, Path(folder["root"]))),
        args.jpeg_epochs,
    )
    once = [*((s, LIVE, s) for s in JPEG_ONCE), *JPEG_AUGMENTED]
    rows, runs = contend(args, suite, JPEG_ROUNDS, once, work, cache)
    by_name = {name: row for name, row in zip(runs, rows, strict=True)}
    phase_seconds["jpeg"] = time.perf_counter() - phase
    config = {
        "model": args.jpeg_model,
        "weights": args.jpeg_weights or "the model config's default",
        "image_size": args.jpeg_image_size,
        "batch_size": args.jpeg_batch_size,
        "epochs": args.jpeg_epochs,
        "augment": "off, but in the two augmented rows (random_resized_crop, hflip)",
        "num_workers": "auto",
        **{k: v for k, v in folder.items() if k != "root"},
    }
    found = {
        **ratio_keys("jpeg_full_vs_raw", ratios(runs["full"], runs["raw"])),
        "jpeg_last_layers_vs_full": (
            by_name["last_layers"]["images_per_second"] / by_name["full"]["images_per_second"]
        ),
        "jpeg_first_step_seconds": by_name["full"]["first_step_seconds"],
        "jpeg_augment_on_device_vs_per_image": (
            by_name["full augmented on the device"]["images_per_second"]
            / by_name["full augmented per image"]["images_per_second"]
        ),
    }
    return JpegResults(rows, config, found)
