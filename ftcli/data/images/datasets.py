"""The two kinds of torch Dataset behind every data source: image files on disk, and arrays in memory.

Both expose ``targets`` (labels in order) and ``fingerprint()`` (the identity of their images and
labels, part of the feature cache's key).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ftcli.data.images.files import load_image, load_or_none
from ftcli.data.splits import Sample


class FileDataset(Dataset):
    """Images read from disk on demand, or decoded once and kept (:meth:`preload`) when they fit."""

    def __init__(self, samples: Sequence[Sample], transform: Callable) -> None:
        self.samples = list(samples)
        self.transform = transform
        # None entries failed to decode: __getitem__ reads them again and raises, naming the file.
        self.decoded: list[Image.Image | None] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        img = self.decoded[index] if self.decoded is not None else None
        return self.transform(img if img is not None else load_image(path)), label

    def preload(self, threads: int) -> None:
        """Decode every image now, so later epochs never touch the disk or the decoder again."""
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:  # PIL decodes outside the GIL
            self.decoded = list(pool.map(load_or_none, [path for path, _ in self.samples]))

    def decoded_bytes_estimate(self, sample: int = 64) -> int:
        """Memory the decoded images would take, from the headers of up to ``sample`` files."""
        if not self.samples:
            return 0
        step = max(1, len(self.samples) // sample)
        sizes = []
        for path, _ in self.samples[::step][:sample]:
            with Image.open(path) as img:
                sizes.append(img.size[0] * img.size[1] * len(img.getbands()))
        return int(sum(sizes) / len(sizes) * len(self.samples))

    def fingerprint(self) -> str:
        """Identity of the files and labels (path, size, mtime): a feature-cache key part."""
        digest = hashlib.sha256()
        for path, label in self.samples:
            stat = os.stat(path)
            digest.update(f"{path}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    @property
    def targets(self) -> list[int]:
        """Every sample's label, in order."""
        return [label for _, label in self.samples]


class ArrayDataset(Dataset):
    """Grayscale images kept in memory as one uint8 array (N, H, W)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable) -> None:
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(self.images[index], mode="L")
        return self.transform(img), int(self.labels[index])

    @property
    def targets(self) -> list[int]:
        """Every sample's label, in order."""
        return [int(x) for x in self.labels]

    def fingerprint(self) -> str:
        """Identity of the pixels and labels: a feature-cache key part."""
        digest = hashlib.sha256(str(self.images.shape).encode())
        digest.update(np.ascontiguousarray(self.images).tobytes())
        digest.update(np.ascontiguousarray(self.labels).tobytes())
        return digest.hexdigest()
