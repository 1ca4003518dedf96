"""What the leak check costs beside the image store it precedes: ``python -m bench.leak_check [--images N]``.

Writes N small PNGs (shapes drawn from a seed, 32 px; 4 classes; 80% train, 20% val) into a temporary
folder, then times, for one ``data=imagefolder`` datamodule, the leak check (``check_leaks``: the file
bytes of every image compared) and the store build that follows (``setup``: header check, decoding,
the uint8 store), and 70,000 arrays of 28x28 pixels (Fashion-MNIST's size) through ``array_digests``.
The figures in docs/models-and-data.md (Leaked samples) come from it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from ftcli.data import leakage
from ftcli.data.images.transforms import TransformSpec
from ftcli.data.sources import build_datamodule
from ftcli.data.sources.shapes import SHAPES, draw_shape

SPEC = TransformSpec(resize=32, crop=32, mean=(0.5,) * 3, std=(0.25,) * 3)


def write_images(root: Path, count: int) -> None:
    for split, share, seed in (("train", 0.8, 0), ("val", 0.2, 1)):
        for c, name in enumerate(SHAPES):
            folder = root / split / name
            folder.mkdir(parents=True)
            rng = np.random.default_rng([seed, c])
            for i in range(int(count * share) // len(SHAPES)):
                draw_shape(name, 32, rng).save(folder / f"{i}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_images(Path(tmp), args.images)
        cfg = {"name": "imagefolder", "root": tmp, "num_workers": 0, "image_cache_mb": 4096}
        datamodule = build_datamodule(cfg, SPEC, 0)
        started = time.perf_counter()
        report = datamodule.check_leaks()
        checked = time.perf_counter() - started
        started = time.perf_counter()
        datamodule.setup()
        stored = time.perf_counter() - started
    arrays = np.random.default_rng(0).integers(0, 256, (70_000, 28, 28), dtype=np.uint8)
    started = time.perf_counter()
    leakage.array_digests(arrays)
    hashed = time.perf_counter() - started
    assert report is not None
    print(f"{report.checked} PNGs: leak check {checked:.2f} s, store build {stored:.2f} s")
    print(f"70,000 arrays of 28x28 pixels: {hashed:.2f} s")


if __name__ == "__main__":
    main()
