"""``data=shapes``: coloured shapes drawn from a seed, written once as PNG files, read as a folder."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ftcli.atomic_files import atomic_path
from ftcli.data.checks import expand_path, int_option, per_class_option
from ftcli.data.sources import data_source
from ftcli.data.sources.imagefolder import ImageFolderDataModule
from ftcli.data.splits import Sample
from ftcli.errors import DataError

SHAPES = ("circle", "square", "triangle", "star")


@data_source("shapes")
class ShapesDataModule(ImageFolderDataModule):
    """Coloured geometric shapes drawn from a seed and written once as PNG files, then read
    like an ``imagefolder``: a dataset that needs no download but exercises the file code path."""

    default_fractions = (0.2, 0.2)

    def _resolve_root(self, cfg: Mapping[str, Any]) -> Path:
        self.shape_classes = _shape_classes(cfg.get("classes"))
        self.per_class = per_class_option(cfg.get("per_class"), "data.per_class", 60)
        self.size_on_disk = int_option(cfg, "image_size_on_disk", 64, minimum=8)
        base = cfg.get("root")
        if base in (None, ""):
            base = os.path.join(os.environ.get("FTCLI_DATA_DIR") or "~/.cache/ftcli", "shapes")
        self.base = expand_path(base)
        params = {
            "version": 1,
            "classes": self.shape_classes,
            "per_class": self.per_class,
            "size": self.size_on_disk,
            "seed": self.seed,
        }
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
        return self.base / digest

    def _init_classes(self, cfg: Mapping[str, Any]) -> None:
        self.class_names = list(self.shape_classes)
        self.has_test = self.test_fraction > 0

    def prepare_data(self) -> None:
        """Draw and write the images unless this parameter set is already on disk."""
        if self.root.is_dir():
            return
        staging = contextlib.ExitStack()
        try:
            self.base.mkdir(parents=True, exist_ok=True)
            tmp = staging.enter_context(atomic_path(self.root, directory=True))
        except OSError as e:
            raise DataError(
                f"Cannot write generated shapes under {self.base}: {e}",
                "Set data.root (or the FTCLI_DATA_DIR environment variable) to a writable folder.",
            ) from e
        try:
            with staging:  # the folder is written whole, then moved onto self.root
                self._write(tmp)
        except OSError as e:
            if not self.root.is_dir():  # else another process finished first: use its copy
                raise DataError(f"Cannot write generated shapes to {self.base}: {e}") from e

    def _write(self, directory: Path) -> None:
        for name in self.shape_classes:
            (directory / name).mkdir()
            rng = np.random.default_rng([self.seed, SHAPES.index(name)])
            for i in range(self.per_class):
                draw_shape(name, self.size_on_disk, rng).save(directory / name / f"{i:04d}.png")

    def _scan(self) -> tuple[list[str], dict[str, list[Sample]]]:
        self.prepare_data()
        return super()._scan()


def _shape_classes(value: Any) -> list[str]:
    if value is None:
        return sorted(SHAPES)
    names = [value] if isinstance(value, str) else [str(v) for v in value]
    for name in names:
        if name not in SHAPES:
            raise DataError(
                f"data.classes lists unknown shape '{name}'.", f"Valid shapes: {', '.join(SHAPES)}"
            )
    if len(set(names)) < 2:
        raise DataError(f"data.classes={names} has fewer than 2 shapes; a classifier needs at least 2.")
    return sorted(set(names))


def draw_shape(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One ``size`` x ``size`` RGB image of a shape with random position, size, angle and colours."""
    scale = 4  # draw large, then downsample: smooth edges
    big = size * scale
    background, colour = _colour_pair(rng)
    img = Image.new("RGB", (big, big), background)
    radius = rng.uniform(0.2, 0.42) * big
    cx, cy = rng.uniform(radius, big - radius, size=2)
    angle = rng.uniform(0, 2 * math.pi)
    draw = ImageDraw.Draw(img)
    if kind == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
    else:
        draw.polygon(_polygon(kind, cx, cy, radius, angle), fill=colour)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if kind == "star":
        radii = [r if k % 2 == 0 else 0.42 * r for k in range(10)]
    else:
        radii = [r] * {"square": 4, "triangle": 3}[kind]
    n = len(radii)
    return [
        (cx + rk * math.cos(angle + 2 * math.pi * k / n), cy + rk * math.sin(angle + 2 * math.pi * k / n))
        for k, rk in enumerate(radii)
    ]


def _colour_pair(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A background and a foreground colour far enough apart to see the shape."""
    background = rng.integers(0, 256, size=3)
    for _ in range(100):
        colour = rng.integers(0, 256, size=3)
        if np.linalg.norm(colour - background) > 150:
            break
    else:
        colour = 255 - background
    return tuple(int(c) for c in background), tuple(int(c) for c in colour)
