"""Preprocess once: the deterministic part of a transform kept as one uint8 tensor per split.

When a split's transform is the same every epoch (validation and test always; training when every
``data.augment`` option is off), decoding, RGB conversion, resizing and centre-cropping are done
once, into an ``(N, 3, crop, crop)`` uint8 tensor: in memory when it fits ``data.image_cache_mb``,
else a memory-mapped ``.npy`` file beside the feature cache, keyed by the images, labels and
transform. What is left per batch, uint8 to float and normalisation, is one vectorised operation on
the whole batch; the training loaders hand out uint8 batches and the datamodule normalises them after
they reach the training device (``ImageDataModule.on_after_batch_transfer``), so a GPU receives a
quarter of the bytes and does the arithmetic itself. The result equals the per-image evaluation
transform bit for bit (same operations, same order; tested).

A training split with augmentation is stored too when ``data.augment_on_device`` is on: with
``random_resized_crop`` each image is kept whole, squashed to ``resize x resize``, with its original
size beside it, so that ``device_augment`` can draw crops as the per-image path draws them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from ftcli.atomic_files import atomic_path
from ftcli.data.images.device_augment import AugmentBatch, DeviceAugment
from ftcli.data.images.transforms import INTERPOLATIONS, ToRGB, TransformSpec
from ftcli.errors import refused_writes

STORE_VERSION = 2
ENV_DIR = "FTCLI_FEATURE_CACHE"  # the feature cache's folder; stores live in its images/ subfolder
DEFAULT_DIR = "~/.cache/ftcli/features"
DISK_MARGIN = 1 << 30  # leave at least 1 GiB free on the cache's disk


def store_transform(spec: TransformSpec, squash: bool = False) -> Callable:
    """What is stored of an RGB image: the deterministic part of the eval transform (resize, centre
    crop) as uint8; with ``squash``, the whole image resized to ``resize x resize`` for random crops."""
    mode = INTERPOLATIONS[spec.interpolation]
    if squash:
        return v2.Compose(
            [v2.Resize((spec.resize, spec.resize), interpolation=mode, antialias=True), v2.ToImage()]
        )
    resize = v2.Resize(spec.resize, interpolation=mode, antialias=True)
    return v2.Compose([resize, v2.CenterCrop(spec.crop), v2.ToImage()])


def to_input(images: torch.Tensor, spec: TransformSpec) -> torch.Tensor:
    """A uint8 batch (N, 3, H, W) as the network's input: float in [0, 1], then normalised (per channel)."""
    return normalise_floats(F.to_dtype(images, torch.float32, scale=True), spec)


def normalise_floats(floats: torch.Tensor, spec: TransformSpec) -> torch.Tensor:
    """A float batch in [0, 1] normalised per channel with the spec's mean and std."""
    return F.normalize(floats, list(spec.mean), list(spec.std))


class StoredImages(Dataset):
    """One split's preprocessed images (uint8) and labels; items come out as the eval transform's output.

    ``transform`` and ``fingerprint()`` are the source dataset's, so the feature cache keys a stored
    split exactly like the split it replaces.
    """

    def __init__(
        self,
        images: torch.Tensor | np.ndarray,
        labels: torch.Tensor,
        spec: TransformSpec,
        source: Any,
        augment: DeviceAugment | None = None,
        sizes: torch.Tensor | None = None,
    ) -> None:
        self.images = images  # a tensor in memory, or a read-only memory-mapped array on disk
        self.labels = labels
        self.spec = spec
        self.augment = augment  # the random part of a training transform, applied per batch
        self.sizes = (
            sizes if sizes is not None else torch.tensor([[spec.crop, spec.crop]]).expand(len(labels), 2)
        )
        self.source = source  # the per-image dataset it was made from (its file list, its raw arrays)
        self.transform = getattr(source, "transform", None)
        self._fingerprint = getattr(source, "fingerprint", None)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.batch([index])[0][0], int(self.labels[index])

    def batch(self, indices: Sequence[int], normalise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole batches at once: one gather, and (unless left to the device) augmentation and normalisation.

        Left to the device, an augmenting store's batch is an :class:`AugmentBatch` (uint8 images,
        labels, original sizes); otherwise uint8 images and labels.
        """
        rows = torch.as_tensor(indices, dtype=torch.long)
        images, labels = self._gather(indices), self.labels[rows]
        if self.augment is None:
            return (to_input(images, self.spec) if normalise else images), labels
        if not normalise:
            return AugmentBatch(images, labels, self.sizes[rows])
        return normalise_floats(self.augment(images, self.sizes[rows]), self.spec), labels

    def _gather(self, indices: Sequence[int]) -> torch.Tensor:
        if isinstance(self.images, torch.Tensor):
            return self.images[torch.as_tensor(indices, dtype=torch.long)]
        return torch.from_numpy(self.images[np.asarray(indices, dtype=np.int64)])  # a copy off the map

    @property
    def targets(self) -> list[int]:
        """Every sample's label, in order."""
        return self.labels.tolist()

    @property
    def samples(self) -> list[tuple[str, int]]:
        """The (path, label) pairs of a split read from files, in store order."""
        return self.source.samples

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            raise AttributeError("fingerprint")
        return self._fingerprint()


class StoredBatches(Dataset):
    """The loader's view of a :class:`StoredImages`: ``__getitems__`` returns a whole collated batch.

    Kept apart from :class:`StoredImages` so that any other DataLoader over a stored split (with the
    default collate) still receives one sample at a time.
    """

    def __init__(self, store: StoredImages, normalise: bool) -> None:
        self.store = store
        self.normalise = normalise

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([index])

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.store.batch(indices, normalise=self.normalise)


def batch_as_is(batch: Any) -> Any:
    """``__getitems__`` already returned a collated batch."""
    return batch


def in_order(dataset: Dataset, batch_size: int, num_workers: int = 0) -> DataLoader:
    """Normalised batches in dataset order: whole-batch gathers for a stored split, else a plain loader."""
    if isinstance(dataset, StoredImages):
        view = StoredBatches(dataset, normalise=True)
        return DataLoader(view, batch_size=batch_size, shuffle=False, collate_fn=batch_as_is)
    # texts pad their batches (ClassificationDataModule.loader), also when a Subset of them is read
    collate = getattr(dataset, "collate", None) or getattr(getattr(dataset, "dataset", None), "collate", None)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate
    )


@dataclass
class StoreReport:
    """How one split was stored, for the run's console line."""

    split: str
    images: int
    shape: tuple[int, ...]
    nbytes: int
    where: str  # "memory" | a file path | "" (not stored)
    built: bool
    reason: str = ""
    augmented: bool = False  # stored for augmentation on the device
    rebuilt: bool = False  # a stored file was there but unreadable: built again, never used

    def text(self) -> str:
        if not self.where:
            return f"{self.split}: not stored ({self.reason})"
        place = "in memory" if self.where == "memory" else f"on disk ({'built' if self.built else 'reused'})"
        size = f"{self.nbytes / 2**20:.0f} MiB"
        augmented = ", augmented per batch on the device" if self.augmented else ""
        rebuilt = " (the stored file was unreadable: built again)" if self.rebuilt else ""
        return (
            f"{self.split} {self.images} x {'x'.join(map(str, self.shape))} uint8, {size} {place}"
            f"{augmented}{rebuilt}"
        )


def cache_root(data_cfg: Any) -> Path:
    """The cache folder: ``data.feature_cache_dir``, else ``$FTCLI_FEATURE_CACHE``, else the default."""
    value = data_cfg.get("feature_cache_dir") or os.environ.get(ENV_DIR) or DEFAULT_DIR
    return Path(os.path.expandvars(os.path.expanduser(str(value)))).absolute()


def store_dir(data_cfg: Any) -> Path:
    """Where stores too big for memory live: the feature cache's folder / images."""
    return cache_root(data_cfg) / "images"


def build(
    split: str,
    dataset: Any,
    spec: TransformSpec,
    budget_bytes: int,
    directory: Path,
    threads: int,
    augment: DeviceAugment | None = None,
) -> tuple[StoredImages | None, StoreReport]:
    """Store one split: in memory within ``budget_bytes``, else memory-mapped under ``directory``.

    With ``augment`` the split is stored for augmentation on the device (whole images squashed to
    ``resize x resize`` when it crops at random, with their original sizes). Returns (None, report
    with the reason) when neither fits: no fingerprint to key a file on, or not enough free disk.
    ``dataset`` must have a ``transform`` attribute that this replaces while it reads the images
    (PIL in, uint8 tensor out) and then restores.
    """
    squash = augment is not None and augment.squashes
    n = len(dataset)
    side = spec.resize if squash else spec.crop
    shape = (3, side, side)
    nbytes = n * int(np.prod(shape))
    labels = torch.as_tensor(list(dataset.targets), dtype=torch.long)
    report = StoreReport(split, n, shape, nbytes, "", built=True, augmented=augment is not None)
    over = f"{nbytes / 2**20:.0f} MiB, over data.image_cache_mb,"
    if nbytes <= budget_bytes:
        images = torch.empty((n, *shape), dtype=torch.uint8)
        sizes = _fill(dataset, spec, squash, images.numpy(), threads)
        report.where = "memory"
        return StoredImages(images, labels, spec, dataset, augment, sizes if squash else None), report
    fingerprint = getattr(dataset, "fingerprint", None)
    if fingerprint is None:
        report.reason = f"{over} and no fingerprint to key a file on"
        return None, report
    key = hashlib.sha256(
        f"v{STORE_VERSION}\0{sorted(spec.to_dict().items())}\0{squash}\0{fingerprint()}".encode()
    ).hexdigest()[:32]
    path = directory / f"{split}-{key}.npy"
    sizes_path = path.with_suffix(".sizes.npy")  # original (h, w) of each image, for a squashed store
    if path.is_file():
        images_np = _open(path, (n, *shape))
        sizes_np = _open(sizes_path, (n, 2), np.int64, mmap=False) if squash else None
        if images_np is not None and (sizes_np is not None or not squash):
            report.where, report.built = str(path), False
            sizes = torch.from_numpy(sizes_np) if sizes_np is not None else None
            return StoredImages(images_np, labels, spec, dataset, augment, sizes), report
        report.rebuilt = True  # damaged, cut short, or of another shape: never used, stored again
    directory.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(directory).free < nbytes + DISK_MARGIN:
        report.reason = f"{over} and not enough free disk in {directory}"
        return None, report
    elsewhere = (
        f"set data.feature_cache_dir (or ${ENV_DIR}) to another folder, or a larger data.image_cache_mb"
    )
    with refused_writes(path, elsewhere):
        sizes = _write(path, sizes_path, dataset, spec, squash, threads)
    report.where = str(path)
    return StoredImages(
        _open(path, (n, *shape)), labels, spec, dataset, augment, sizes if squash else None
    ), report


def _write(
    path: Path, sizes_path: Path, dataset: Any, spec: TransformSpec, squash: bool, threads: int
) -> torch.Tensor:
    """Write a store under ``path`` (and its sizes), atomically: complete or absent, never half written.

    Two runs storing the same split at once each write a temporary of their own and move it onto the
    same name: the files are equal (same key, same images), the later move wins, and a reader that
    opened the earlier one keeps reading it. So no lock is needed.
    """
    n = len(dataset)
    side = spec.resize if squash else spec.crop
    with atomic_path(path) as partial:
        images_np = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(n, 3, side, side))
        sizes = _fill(dataset, spec, squash, images_np, threads)
        images_np.flush()
        del images_np
        if squash:  # the sizes first: the images file is what marks a store complete
            with atomic_path(sizes_path) as partial_sizes, open(partial_sizes, "wb") as handle:
                np.save(handle, sizes.numpy())
    return sizes


def _open(path: Path, shape: tuple[int, ...], dtype: type = np.uint8, mmap: bool = True) -> np.ndarray | None:
    """A stored ``.npy`` (memory-mapped unless ``mmap`` is off), or None when unreadable or unexpected."""
    try:
        array = np.load(path, mmap_mode="r" if mmap else None)
    except (OSError, ValueError):
        return None
    return array if array.shape == shape and array.dtype == dtype else None


def _fill(dataset: Any, spec: TransformSpec, squash: bool, out: np.ndarray, threads: int) -> torch.Tensor:
    """Store every image into ``out`` (threads: PIL resizes outside the GIL); returns each original (h, w)."""
    kept = dataset.transform
    dataset.transform = ToRGB()  # what the per-image transforms start with
    stored = store_transform(spec, squash)
    sizes = torch.empty((len(dataset), 2), dtype=torch.int64)
    try:

        def one(index: int) -> None:
            image = dataset[index][0]
            sizes[index] = torch.tensor(F.get_size(image))
            out[index] = np.asarray(stored(image))

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            list(pool.map(one, range(len(dataset))))
    finally:
        dataset.transform = kept
    return sizes
