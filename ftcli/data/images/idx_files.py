"""MNIST-format IDX files: finding the four files of an MNIST-style dataset and reading them with numpy.

Read here rather than through torchvision so that a folder holding the four files directly, the way
Debian's ``dataset-fashion-mnist`` installs them (``/usr/share/datasets/fashion-mnist``), works as it
is, beside torchvision's own ``<root>/<Name>/raw`` layout. The format (LeCun's): two zero bytes, a
type code, the number of dimensions, each dimension as a big-endian int32, then the values in C
order. A gzipped file (``.gz``) reads the same.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ftcli.errors import DataError

# split -> (images, labels), the names MNIST, Fashion-MNIST and KMNIST share
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_NAMES = tuple(stem for pair in IDX_FILES.values() for stem in pair)
# the IDX type codes; every MNIST-style file is 0x08 (unsigned bytes)
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def idx_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` or ``folder/stem.gz``, whichever is a file (the plain one first)."""
    for name in (stem, f"{stem}.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def find_idx_folder(candidates: Sequence[Path]) -> Path | None:
    """The first folder that holds all four files (each gzipped or not); None when none does."""
    for folder in candidates:
        if all(idx_file(folder, stem) is not None for stem in IDX_NAMES):
            return folder
    return None


def load_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The images (N, H, W) as uint8 and their labels (N,) as int64 of one split (train or test)."""
    images_stem, labels_stem = IDX_FILES[split]
    images_path = idx_file(folder, images_stem)
    labels_path = idx_file(folder, labels_stem)
    if images_path is None or labels_path is None:
        missing = images_stem if images_path is None else labels_stem
        raise DataError(f"{folder} has no {missing} (nor {missing}.gz).")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{images_path} holds {images.dtype} of shape {images.shape}, not images (N, H, W) of bytes."
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_path} holds {labels.shape} labels for the {len(images)} images of {images_path}.",
            "The two files must come from the same release of the dataset.",
        )
    return images, labels.astype(np.int64)


def read_idx(path: Path) -> np.ndarray:
    """Every value of one IDX file, shaped by its header; a DataError naming the file when it is not one."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"Cannot read {path}: {exc}", "Replace the file with an intact copy.") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(f"{path} is not an IDX file (its first bytes are {raw[:4].hex() or 'missing'}).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is cut short inside its header.")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path} holds {len(raw) - header} bytes of data; its header {shape} says {expected}.",
            "The file is truncated or damaged: replace it with an intact copy.",
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
