"""Datasets as LightningDataModules, chosen by ``data.name``.

Every module knows its class names right after construction (scanning folders or reading a CSV,
never decoding images), so the caller can size the classifier head before any data is loaded.
Splits are stratified per class and driven only by the ``seed`` argument, so two runs with the
same seed see the same train/val/test images; the digits test set does not depend on
``per_class``, which makes few-shot runs comparable.

Unreadable files are found at :meth:`ImageDataModule.setup` with a cheap header parse and either
stop the run with the file's name (``data.on_bad_image=error``) or are dropped and listed in
``bad_images`` (``data.on_bad_image=skip``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.seed import seed_everything
from PIL import Image, ImageDraw
from torch.utils.data import DataLoader, Dataset, RandomSampler

from ftcli.errors import ConfigError, DataError, unknown_name
from ftcli.transforms import TransformSpec, eval_transform, train_transform, validate_augment

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
SHAPES = ("circle", "square", "triangle", "star")
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
LAYOUT_HINT = "Point data.root at a folder with one sub-folder per class (or train/ and val/ sub-folders)."

Sample = tuple[str, int]

REGISTRY: dict[str, type[ImageDataModule]] = {}


def register(name: str) -> Callable[[type[ImageDataModule]], type[ImageDataModule]]:
    """Class decorator: make a datamodule available as ``data.name=<name>``."""

    def add(cls: type[ImageDataModule]) -> type[ImageDataModule]:
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return add


def build_datamodule(cfg: Mapping[str, Any], spec: TransformSpec, seed: int) -> ImageDataModule:
    """The datamodule named by ``cfg["name"]`` (``cfg`` is the ``data`` config node)."""
    plain = _plain(cfg)
    name = plain.get("name")
    if name not in REGISTRY:
        raise unknown_name("data", name, list(REGISTRY), key="data.name")
    return REGISTRY[name](plain, spec, seed)


# ---------------------------------------------------------------------------- datasets


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open and fully decode an image; a broken file raises DataError naming it."""
    try:
        with Image.open(path) as img:
            img.load()
            return img
    except DECODE_ERRORS as e:
        raise DataError(
            f"Cannot decode image {path}: {e}",
            "Delete or replace the file (data.on_bad_image=skip only drops files with unreadable headers).",
        ) from None  # short: it may cross a DataLoader worker boundary as formatted text


def _load_or_none(path: str) -> Image.Image | None:
    try:
        return load_image(path)
    except DataError:
        return None


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
            self.decoded = list(pool.map(_load_or_none, [path for path, _ in self.samples]))

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


# ---------------------------------------------------------------------------- base module


class EpochShuffle(RandomSampler):
    """Shuffles by (seed, epoch) and, when an epoch's iteration starts, seeds every RNG for that epoch.

    Lightning builds the first iterator of a fit (and of a resumed fit) before any epoch hook runs,
    so the epoch is read from the trainer here, where the iteration begins. Shuffling, augmentation
    (in this process) and dropout then depend on the epoch alone: a run resumed from a checkpoint
    draws what the uninterrupted run drew. A subclass of RandomSampler, so DDP still swaps in a
    DistributedSampler.
    """

    def __init__(self, data_source: Sized, seed: int, epoch: Callable[[], int]) -> None:
        super().__init__(data_source)
        self.seed = seed
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        epoch_seed = self.seed + 1000 * self.epoch()
        seed_everything(epoch_seed, workers=True, verbose=False)
        generator = torch.Generator().manual_seed(epoch_seed)
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


class ImageDataModule(L.LightningDataModule):
    """Common config keys, loaders and description; subclasses provide the splits."""

    name: ClassVar[str] = ""
    in_memory: ClassVar[bool] = False

    def __init__(self, cfg: Mapping[str, Any], spec: TransformSpec, seed: int) -> None:
        super().__init__()
        self.cfg = dict(cfg)
        self.spec = spec
        self.seed = int(seed)
        self.batch_size = _int_option(cfg, "batch_size", 32, minimum=1)
        self.num_workers = _num_workers(cfg.get("num_workers", "auto"), self.in_memory)
        self.augment = validate_augment(cfg.get("augment"))
        self.on_bad_image = _choice(cfg, "on_bad_image", ("error", "skip"), "error")
        self.cache_images = _auto_flag(cfg, "cache_images")
        self.image_cache_bytes = _int_option(cfg, "image_cache_mb", 1024, minimum=0) * 2**20
        self.class_names: list[str] = []
        self.has_test = False
        self.bad_images: list[str] = []
        self._datasets: dict[str, Dataset] = {}

    @property
    def num_classes(self) -> int:
        """How many classes the classifier head must predict."""
        return len(self.class_names)

    @property
    def root(self) -> Path | None:
        """Where the images live on disk (None for in-memory datasets)."""
        return None

    def _make_datasets(self) -> dict[str, Dataset]:
        raise NotImplementedError

    def _planned_sizes(self) -> dict[str, int]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets once (later calls are no-ops)."""
        if not self._datasets:
            self._datasets = self._make_datasets()

    def dataset(self, split: str) -> Dataset:
        """The dataset of one split (``train`` uses the augmenting transform)."""
        if split == "test" and not self.has_test:
            raise DataError(
                f"data.name={self.name} has no test split.",
                "Add a test/ folder (imagefolder), test rows (csv) or set data.test_fraction>0.",
            )
        self.setup()
        return self._datasets[split]

    def loader(self, split: str, shuffle: bool = False) -> DataLoader:
        """A DataLoader over one split; shuffled batches are drawn by (seed, epoch), see EpochShuffle."""
        dataset = self.dataset(split)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochShuffle(dataset, self.seed, self._epoch) if shuffle else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            drop_last=False,
        )

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def train_dataloader(self) -> DataLoader:
        """Shuffled, augmented training batches."""
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in a fixed order."""
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        """Test batches in a fixed order (DataError when there is no test split)."""
        return self.loader("test")

    def split_sizes(self) -> dict[str, int]:
        """Images per split (after dropping bad images once :meth:`setup` ran)."""
        if self._datasets:
            sizes = {split: len(ds) for split, ds in self._datasets.items()}  # type: ignore[arg-type]
        else:
            sizes = self._planned_sizes()
        return {split: sizes.get(split, 0) for split in SPLITS}

    def describe(self) -> dict[str, Any]:
        """A summary for printing: name, root, images per split, classes, skipped files."""
        return {
            "name": self.name,
            "root": str(self.root) if self.root is not None else None,
            **self.split_sizes(),
            "num_classes": self.num_classes,
            "classes": list(self.class_names),
            "bad_images": len(self.bad_images),
        }

    def _transforms(self) -> dict[str, Callable]:
        evaluate = eval_transform(self.spec)
        return {"train": train_transform(self.spec, self.augment), "val": evaluate, "test": evaluate}


# ---------------------------------------------------------------------------- digits


@register("digits")
class DigitsDataModule(ImageDataModule):
    """scikit-learn's 8x8 handwritten digits (1797 images, no download), kept in memory."""

    in_memory = True

    def __init__(self, cfg: Mapping[str, Any], spec: TransformSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        from sklearn.datasets import load_digits

        digits = _digit_classes(cfg.get("classes"))
        self.class_names = [str(d) for d in digits]
        val_fraction, test_fraction = _fractions(cfg, 0.2, 0.3)
        per_class = _per_class(cfg.get("per_class"), "data.per_class", None)
        if val_fraction <= 0:
            raise ConfigError("data.val_fraction must be above 0 for digits.", "e.g. data.val_fraction=0.2")
        self.has_test = test_fraction > 0

        bunch = load_digits()
        keep = np.isin(bunch.target, digits)
        self.images = np.round(bunch.images[keep] * (255.0 / 16.0)).astype(np.uint8)
        remap = {d: i for i, d in enumerate(digits)}
        self.labels = np.array([remap[int(t)] for t in bunch.target[keep]], dtype=np.int64)

        where = "scikit-learn's digits"
        self.indices = stratified_split(
            self.labels.tolist(), self.class_names, val_fraction, test_fraction, self.seed, where
        )
        if per_class is not None:
            self.indices["train"] = _first_per_class(self.indices["train"], self.labels, per_class, self.seed)

    def _planned_sizes(self) -> dict[str, int]:
        return {split: len(idx) for split, idx in self.indices.items()}

    def _make_datasets(self) -> dict[str, Dataset]:
        transforms = self._transforms()
        return {
            split: ArrayDataset(self.images[idx], self.labels[idx], transforms[split])
            for split, idx in self.indices.items()
        }


def _digit_classes(value: Any) -> list[int]:
    if value is None:
        return list(range(10))
    if isinstance(value, (str, int)) or not isinstance(value, Iterable):
        raise ConfigError(f"data.classes must be a list of digits such as [5,6,7], got {value!r}.")
    digits: list[int] = []
    for item in value:
        try:
            d = int(str(item).strip())
        except ValueError:
            d = -1
        if isinstance(item, bool) or not 0 <= d <= 9 or str(d) != str(item).strip():
            raise DataError(
                f"data.classes lists '{item}', which is not a digit.",
                "Use digits 0-9, e.g. data.classes=[5,6,7].",
            )
        if d in digits:
            raise ConfigError(f"data.classes lists digit {d} twice.")
        digits.append(d)
    if len(digits) < 2:
        raise DataError(f"data.classes={digits} has fewer than 2 classes; a classifier needs at least 2.")
    return digits


def _first_per_class(indices: list[int], labels: np.ndarray, per_class: int, seed: int) -> list[int]:
    """The first ``per_class`` indices of each label after a seeded shuffle (returned sorted)."""
    rng = np.random.default_rng([seed, 1])
    shuffled = rng.permutation(np.asarray(indices, dtype=np.int64))
    kept: list[int] = []
    counts: dict[int, int] = defaultdict(int)
    for i in shuffled.tolist():
        label = int(labels[i])
        if counts[label] < per_class:
            counts[label] += 1
            kept.append(i)
    return sorted(kept)


# ---------------------------------------------------------------------------- files on disk


class FileDataModule(ImageDataModule):
    """Base of the modules that read image files: header check, skipping and lazy scanning."""

    def __init__(self, cfg: Mapping[str, Any], spec: TransformSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        self._samples: dict[str, list[Sample]] | None = None

    def _scan(self) -> tuple[list[str], dict[str, list[Sample]]]:
        """Class names and (path, label) pairs per split, from listing files only."""
        raise NotImplementedError

    def _ensure_scanned(self) -> dict[str, list[Sample]]:
        if self._samples is None:
            class_names, samples = self._scan()
            if not samples.get("val"):
                raise ConfigError(
                    f"data.name={self.name} has no validation split (data.val_fraction=0).",
                    "Set data.val_fraction above 0, or provide val/ folder or val rows.",
                )
            self.class_names, self._samples = class_names, samples
            self.has_test = bool(samples.get("test"))
        return self._samples

    def _planned_sizes(self) -> dict[str, int]:
        return {split: len(items) for split, items in self._ensure_scanned().items()}

    def _make_datasets(self) -> dict[str, Dataset]:
        samples = self._ensure_scanned()
        transforms = self._transforms()
        bad = find_unreadable([path for items in samples.values() for path, _ in items])
        if bad and self.on_bad_image == "error":
            raise DataError(
                f"{len(bad)} unreadable image file(s), first: {bad[0]}",
                "Delete or replace them, or set data.on_bad_image=skip to leave them out.",
            )
        self.bad_images = bad
        dropped = set(bad)
        datasets: dict[str, Dataset] = {}
        for split, items in samples.items():
            kept = [s for s in items if s[0] not in dropped]
            if not kept:
                raise DataError(
                    f"The {split} split is empty after skipping {len(items)} unreadable image(s).",
                    "Replace the unreadable files listed in bad_images.",
                )
            datasets[split] = FileDataset(kept, transforms[split])
        self._maybe_preload(list(datasets.values()))  # type: ignore[arg-type]
        return datasets

    def _maybe_preload(self, datasets: list[FileDataset]) -> None:
        """``data.cache_images``: decode each image once when they fit in ``data.image_cache_mb``."""
        if self.cache_images is False:
            return
        if self.cache_images == "auto":
            needed = sum(ds.decoded_bytes_estimate() for ds in datasets)
            if needed > self.image_cache_bytes:
                return
        for ds in datasets:
            ds.preload(threads=min(8, os.cpu_count() or 1))

    def prepare_data(self) -> None:
        """Nothing to download; scanning happens in the constructor or :meth:`setup`."""


def find_unreadable(paths: Sequence[str]) -> list[str]:
    """The paths whose image header PIL cannot parse (pixels are not decoded)."""

    def unreadable(path: str) -> bool:
        try:
            with Image.open(path) as img:
                return img.size[0] < 1 or img.size[1] < 1
        except DECODE_ERRORS:
            return True

    if len(paths) > 256:
        with ThreadPoolExecutor(max_workers=8) as pool:
            flags = list(pool.map(unreadable, paths))
    else:
        flags = [unreadable(p) for p in paths]
    return [p for p, bad in zip(paths, flags, strict=True) if bad]


@register("imagefolder")
class ImageFolderDataModule(FileDataModule):
    """``root/<class>/*.jpg``, or ``root/train|val|test/<class>/*.jpg``; missing splits are carved
    from train (stratified, seeded) by ``val_fraction`` and ``test_fraction``."""

    default_fractions: ClassVar[tuple[float, float]] = (0.2, 0.0)

    def __init__(self, cfg: Mapping[str, Any], spec: TransformSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        self.val_fraction, self.test_fraction = _fractions(cfg, *self.default_fractions)
        self._root = self._resolve_root(cfg)
        self._init_classes(cfg)

    @property
    def root(self) -> Path:
        """The folder holding the class folders (or train/val/test)."""
        return self._root

    def _resolve_root(self, cfg: Mapping[str, Any]) -> Path:
        value = cfg.get("root")
        if value in (None, ""):
            raise ConfigError(f"data.root is required for data.name={self.name}.", LAYOUT_HINT)
        return _expand(value)

    def _init_classes(self, cfg: Mapping[str, Any]) -> None:
        self._ensure_scanned()

    def _scan(self) -> tuple[list[str], dict[str, list[Sample]]]:
        root = self.root
        _check_dir(root, "data.root")
        if (root / "train").is_dir():
            return self._scan_split_layout(root)
        folders = class_folders(root)
        class_names = sorted(folders)
        labels, paths = _flatten(folders, class_names)
        where = f"data.root={root}"
        idx = stratified_split(labels, class_names, self.val_fraction, self.test_fraction, self.seed, where)
        return class_names, {s: [(paths[i], labels[i]) for i in ids] for s, ids in idx.items()}

    def _scan_split_layout(self, root: Path) -> tuple[list[str], dict[str, list[Sample]]]:
        folders = class_folders(root / "train")
        class_names = sorted(folders)
        samples: dict[str, list[Sample]] = {"train": _samples(folders, class_names)}
        for split in ("val", "test"):
            if (root / split).is_dir():
                split_folders = class_folders(root / split, minimum=1)
                extra = sorted(set(split_folders) - set(class_names))
                if extra:
                    raise DataError(
                        f"{root / split / extra[0]} is a class folder with no match in {root / 'train'}.",
                        "Every val/test class needs a train folder of the same name; rename or remove it.",
                    )
                samples[split] = _samples(split_folders, class_names)
        return class_names, self._carve_missing(samples, class_names, str(root / "train"))

    def _carve_missing(
        self, samples: dict[str, list[Sample]], class_names: list[str], where: str
    ) -> dict[str, list[Sample]]:
        """Split val and test off train (by their fractions) where they are not given."""
        return carve_missing(samples, class_names, self.val_fraction, self.test_fraction, self.seed, where)


def carve_missing(
    samples: dict[str, list[Sample]],
    class_names: list[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    where: str,
) -> dict[str, list[Sample]]:
    """Split val and test off train (stratified, seeded) where ``samples`` does not hold them."""
    val_fraction = 0.0 if "val" in samples else val_fraction
    test_fraction = 0.0 if "test" in samples else test_fraction
    if not val_fraction and not test_fraction:
        return samples
    train = samples["train"]
    labels = [label for _, label in train]
    idx = stratified_split(labels, class_names, val_fraction, test_fraction, seed, where)
    out = {s: v for s, v in samples.items() if s != "train"}
    for split, ids in idx.items():
        if ids:
            out[split] = [train[i] for i in ids]
    return out


def class_folders(directory: Path, minimum: int = 2) -> dict[str, list[str]]:
    """Class name -> sorted image paths for each (non-hidden) sub-folder; DataError when unusable."""
    subdirs = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        loose = len(_image_files(directory, recursive=False))
        found = f" (it holds {loose} image(s) directly; move them into one folder per class)" if loose else ""
        raise DataError(f"{directory} has no class folders{found}.", LAYOUT_HINT)
    folders: dict[str, list[str]] = {}
    for sub in subdirs:
        images = _image_files(sub, recursive=True)
        if not images:
            raise DataError(
                f"Class folder {sub} holds no images ({' '.join(IMAGE_EXTENSIONS)}).",
                "Add images to it or remove the folder.",
            )
        folders[sub.name] = images
    if len(folders) < minimum:
        raise DataError(
            f"{directory} has only one class folder ('{subdirs[0].name}'); a classifier needs at least 2.",
            "Add a folder per class, each holding that class's images.",
        )
    return folders


def _image_files(directory: Path, recursive: bool) -> list[str]:
    if not recursive:
        return sorted(str(p) for p in directory.iterdir() if p.is_file() and _is_image(p.name))
    found = []
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(os.path.join(dirpath, f) for f in filenames if _is_image(f))
    return sorted(found)


def _is_image(filename: str) -> bool:
    return not filename.startswith(".") and filename.lower().endswith(IMAGE_EXTENSIONS)


def _flatten(folders: Mapping[str, list[str]], class_names: list[str]) -> tuple[list[int], list[str]]:
    samples = _samples(folders, class_names)
    return [label for _, label in samples], [path for path, _ in samples]


def _samples(folders: Mapping[str, list[str]], class_names: list[str]) -> list[Sample]:
    index = {name: i for i, name in enumerate(class_names)}
    return [(path, index[name]) for name in sorted(folders) for path in folders[name]]


# ---------------------------------------------------------------------------- csv manifest


@register("csv")
class CsvDataModule(FileDataModule):
    """A CSV manifest with ``path`` and ``label`` columns and an optional ``split`` column."""

    def __init__(self, cfg: Mapping[str, Any], spec: TransformSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        manifest = cfg.get("manifest")
        if manifest in (None, ""):
            raise ConfigError(
                "data.manifest is required for data.name=csv.",
                "Set data.manifest=/path/to/labels.csv (columns: path,label[,split]).",
            )
        self.manifest = _expand(manifest)
        root = cfg.get("root")
        self._root = _expand(root) if root not in (None, "") else self.manifest.parent
        self.val_fraction, self.test_fraction = _fractions(cfg, 0.2, 0.0)
        self._ensure_scanned()

    @property
    def root(self) -> Path:
        """The folder that manifest paths are relative to."""
        return self._root

    def describe(self) -> dict[str, Any]:
        """As for every module, plus the manifest path."""
        return {**super().describe(), "manifest": str(self.manifest)}

    def _scan(self) -> tuple[list[str], dict[str, list[Sample]]]:
        rows = read_manifest(self.manifest, self.root)
        has_split = any(split is not None for _, _, split in rows)
        train_labels = {label for _, label, split in rows if split in (None, "train")}
        class_names = sorted(train_labels)
        if len(class_names) < 2:
            raise DataError(
                f"{self.manifest} has {len(class_names)} training label(s) {class_names}; "
                "a classifier needs at least 2.",
                "Add rows for more classes.",
            )
        index = {name: i for i, name in enumerate(class_names)}
        for _, label, split in rows:
            if label not in index:
                raise DataError(
                    f"{self.manifest}: label '{label}' appears in the {split} split but not in train.",
                    "Every val/test label needs training rows; fix the label or add training rows.",
                )
        if not has_split:
            labels = [index[label] for _, label, _ in rows]
            where = f"{self.manifest}"
            idx = stratified_split(
                labels, class_names, self.val_fraction, self.test_fraction, self.seed, where
            )
            return class_names, {s: [(rows[i][0], labels[i]) for i in ids] for s, ids in idx.items()}
        samples: dict[str, list[Sample]] = {}
        for path, label, split in rows:
            samples.setdefault(split or "train", []).append((path, index[label]))
        if "train" not in samples:
            raise DataError(f"{self.manifest} has no rows with split=train.", "Mark some rows as train.")
        return class_names, carve_missing(
            samples, class_names, self.val_fraction, self.test_fraction, self.seed, str(self.manifest)
        )


def read_manifest(manifest: Path, root: Path) -> list[tuple[str, str, str | None]]:
    """(absolute path, label, split or None) per row; DataError for a missing column, value or file."""
    _check_file(manifest, "data.manifest")
    with open(manifest, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        missing = [c for c in ("path", "label") if c not in columns]
        if missing:
            found = ", ".join(repr(c) for c in reader.fieldnames or []) or "none"
            raise DataError(
                f"{manifest} lacks the column(s) {', '.join(missing)} (columns found: {found}).",
                "The first line must be a header naming at least the columns path and label.",
            )
        rows = [_manifest_row(row, columns, manifest, reader.line_num, root) for row in reader]
    if not rows:
        raise DataError(f"{manifest} has a header but no rows.", "Add one row per image: path,label")
    missing_files = [path for path, _, _ in rows if not os.path.isfile(path)]
    if missing_files:
        raise DataError(
            f"{len(missing_files)} file(s) listed in {manifest} do not exist, first: {missing_files[0]}",
            f"Paths are relative to data.root={root}; fix the paths or data.root.",
        )
    return rows


def _manifest_row(
    row: Mapping[str, str | None], columns: Mapping[str, str], manifest: Path, line: int, root: Path
) -> tuple[str, str, str | None]:
    def cell(name: str) -> str:
        return (row.get(columns[name]) or "").strip() if name in columns else ""

    path, label = cell("path"), cell("label")
    if not path or not label:
        raise DataError(f"{manifest} line {line} has an empty path or label.", "Fill in or delete that row.")
    split: str | None = None
    if "split" in columns:
        split = SPLIT_ALIASES.get(cell("split").lower())
        if split is None:
            raise DataError(
                f"{manifest} line {line} has split '{cell('split')}'.",
                "The split column may only hold train, val or test.",
            )
    return str(root / os.path.expanduser(path)), label, split


# ---------------------------------------------------------------------------- generated shapes


@register("shapes")
class ShapesDataModule(ImageFolderDataModule):
    """Coloured geometric shapes drawn from a seed and written once as PNG files, then read
    like an ``imagefolder``: a dataset that needs no download but exercises the file code path."""

    default_fractions = (0.2, 0.2)

    def _resolve_root(self, cfg: Mapping[str, Any]) -> Path:
        self.shape_classes = _shape_classes(cfg.get("classes"))
        self.per_class = _per_class(cfg.get("per_class"), "data.per_class", 60)
        self.size_on_disk = _int_option(cfg, "image_size_on_disk", 64, minimum=8)
        base = cfg.get("root")
        if base in (None, ""):
            base = os.path.join(os.environ.get("FTCLI_DATA_DIR") or "~/.cache/ftcli", "shapes")
        self.base = _expand(base)
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
        try:
            self.base.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.base))
        except OSError as e:
            raise DataError(
                f"Cannot write generated shapes under {self.base}: {e}",
                "Set data.root (or the FTCLI_DATA_DIR environment variable) to a writable folder.",
            ) from e
        try:
            self._write(tmp)
            os.replace(tmp, self.root)
        except OSError as e:
            if not self.root.is_dir():  # else another process finished first: use its copy
                raise DataError(f"Cannot write generated shapes to {self.base}: {e}") from e
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

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


# ---------------------------------------------------------------------------- splitting


def stratified_split(
    labels: Sequence[int],
    class_names: Sequence[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    where: str,
) -> dict[str, list[int]]:
    """Indices per split, drawn per class with a seeded shuffle.

    Each class gives ``round(fraction * n)`` images (at least one) to val and to test when their
    fraction is above zero, and the rest to train, so every class appears in every split.
    """
    rng = np.random.default_rng(seed)
    fractions = {"val": val_fraction, "test": test_fraction}
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_class[int(label)].append(i)
    out: dict[str, list[int]] = {split: [] for split in SPLITS if split == "train" or fractions[split] > 0}
    for label in sorted(by_class):
        members = rng.permutation(np.asarray(by_class[label])).tolist()
        n = len(members)
        held = {s: max(1, math.floor(f * n + 0.5)) for s, f in fractions.items() if f > 0}
        if n - sum(held.values()) < 1:
            raise _too_few(class_names[label], n, held, val_fraction, test_fraction, where)
        start = 0
        for split, count in held.items():
            out[split].extend(members[start : start + count])
            start += count
        out["train"].extend(members[start:])
    return {split: sorted(ids) for split, ids in out.items()}


def _too_few(name: str, n: int, held: Mapping[str, int], val: float, test: float, where: str) -> DataError:
    splits = ", ".join(["train", *held][:-1]) + f" and {[*held][-1]}"
    needed = 1 + sum(held.values())
    settings = f"data.val_fraction={val:g}" + (f", data.test_fraction={test:g}" if test > 0 else "")
    no_test = "set data.test_fraction=0, " if "test" in held else ""
    return DataError(
        f"Class '{name}' in {where} has {n} image(s): too few for at least one each in {splits} "
        f"({settings}); the train split would get none.",
        f"Give that class at least {needed} images, {no_test}lower the fractions, or remove the class.",
    )


# ---------------------------------------------------------------------------- config parsing


def _plain(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """An omegaconf node or mapping as a plain dict with interpolations resolved."""
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            plain: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
            # A mandatory value left unset (``???``, e.g. data.root) is missing, like null, so the
            # module's own "data.root is required" check names it (not a folder called "???").
            return {k: None if OmegaConf.is_missing(cfg, k) else v for k, v in plain.items()}
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"The data config must be a mapping, got {type(cfg).__name__}.")
    return dict(cfg)


def _expand(value: Any) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(str(value)))).absolute()


def _check_dir(path: Path, key: str) -> None:
    if not path.exists():
        raise DataError(f"{key}={path} does not exist.", LAYOUT_HINT)
    if not path.is_dir():
        raise DataError(f"{key}={path} is a file, not a folder.", LAYOUT_HINT)


def _check_file(path: Path, key: str) -> None:
    if not path.exists():
        raise DataError(
            f"{key}={path} does not exist.", "Point it at a CSV file with a header line: path,label[,split]"
        )
    if not path.is_file():
        raise DataError(
            f"{key}={path} is a folder, not a CSV file.", "Point it at the CSV manifest inside that folder."
        )


def _int_option(cfg: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = cfg.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"data.{key} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _per_class(value: Any, key: str, default: int | None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{key} must be a whole number or null, got {value!r}.")
    if value < 1:
        raise DataError(f"{key}={value} keeps no images.", f"Use {key}>=1, or null to keep every image.")
    return int(value)


def _num_workers(value: Any, in_memory: bool) -> int:
    if value in (None, "auto"):
        return 0 if in_memory else min(4, max(1, (os.cpu_count() or 1) - 1))
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"data.num_workers must be an integer >= 0 or 'auto', got {value!r}.")
    return int(value)


def _choice(cfg: Mapping[str, Any], key: str, valid: Sequence[str], default: str) -> str:
    value = cfg.get(key, default)
    if value not in valid:
        raise ConfigError(f"data.{key}={value!r} is not allowed.", f"Use one of: {', '.join(valid)}")
    return str(value)


def _auto_flag(cfg: Mapping[str, Any], key: str) -> str | bool:
    """A switch that is ``auto``, true or false (YAML booleans or their spelling)."""
    value = cfg.get(key, "auto")
    if value is None or value == "auto":
        return "auto"
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"data.{key}={value!r} is not allowed.", "Use one of: auto, true, false")


def _fractions(cfg: Mapping[str, Any], val_default: float, test_default: float) -> tuple[float, float]:
    val = _fraction(cfg, "val_fraction", val_default)
    test = _fraction(cfg, "test_fraction", test_default)
    if val + test >= 1:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction = {val + test:g} leaves nothing to train on.",
            "Keep their sum below 1, e.g. data.val_fraction=0.2 data.test_fraction=0.2",
        )
    return val, test


def _fraction(cfg: Mapping[str, Any], key: str, default: float) -> float:
    value = cfg.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"data.{key} must be a number from 0 to below 1, got {value!r}.")
    return float(value)
