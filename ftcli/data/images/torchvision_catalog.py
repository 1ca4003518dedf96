"""What ftcli knows about torchvision's classification datasets, and how it reads their objects.

``CATALOG`` says how each dataset maps onto ftcli: the constructor arguments of its own splits, where
torchvision keeps its files under ``data.root``, and what they are (for the error when they are
missing). Labels and class names come from the dataset objects' attributes (:func:`labels_of`,
:func:`class_names_of`), so no image is decoded before training; :class:`TorchvisionSubset` serves the
chosen items through ftcli's transform. The datamodule is ``ftcli.data.sources.torchvision_datasets``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ftcli.data.images import idx_files
from ftcli.errors import ConfigError, DataError, unknown_name

DIGITS = tuple(str(d) for d in range(10))
TRAIN_FLAG = {"train": {"train": True}, "test": {"train": False}}


@dataclass(frozen=True)
class Catalogued:
    """How one torchvision dataset maps onto ftcli."""

    # ftcli split -> the dataset's constructor arguments for its own split of that role
    splits: Mapping[str, Mapping[str, Any]]
    # the folder under data.root where torchvision keeps the files ("" = data.root itself)
    folder: str
    # what torchvision expects in that folder, for the error when it is missing
    files: str
    # class names, for the datasets whose objects carry none
    class_names: tuple[str, ...] | None = None
    # read from IDX files into memory (MNIST-style datasets)
    idx: bool = False
    # whether torchvision can download it (ImageNet's archives must be fetched by hand)
    downloads: bool = True


def _splits(**own: str) -> dict[str, dict[str, str]]:
    """``_splits(train="trainval", test="test")``: each ftcli split from the dataset's ``split=`` argument."""
    return {ours: {"split": theirs} for ours, theirs in own.items()}


_IDX_LIST = ", ".join(f"{stem}[.gz]" for stem in idx_files.IDX_NAMES)

CATALOG: dict[str, Catalogued] = {
    "MNIST": Catalogued(TRAIN_FLAG, "MNIST/raw", _IDX_LIST, DIGITS, idx=True),
    "FashionMNIST": Catalogued(TRAIN_FLAG, "FashionMNIST/raw", _IDX_LIST, idx=True),
    "KMNIST": Catalogued(TRAIN_FLAG, "KMNIST/raw", _IDX_LIST, idx=True),
    "USPS": Catalogued(TRAIN_FLAG, "", "usps.bz2 and usps.t.bz2", DIGITS),
    "SEMEION": Catalogued({"train": {}}, "", "semeion.data", DIGITS),
    "CIFAR10": Catalogued(
        TRAIN_FLAG, "cifar-10-batches-py", "data_batch_1 ... data_batch_5, test_batch and batches.meta"
    ),
    "CIFAR100": Catalogued(TRAIN_FLAG, "cifar-100-python", "train, test and meta"),
    "SVHN": Catalogued(_splits(train="train", test="test"), "", "train_32x32.mat and test_32x32.mat", DIGITS),
    "STL10": Catalogued(
        _splits(train="train", test="test"),
        "stl10_binary",
        "train_X.bin, train_y.bin, test_X.bin, test_y.bin, unlabeled_X.bin and class_names.txt",
    ),
    "Flowers102": Catalogued(
        _splits(train="train", val="val", test="test"), "flowers-102", "jpg/, imagelabels.mat and setid.mat"
    ),
    "OxfordIIITPet": Catalogued(
        _splits(train="trainval", test="test"),
        "oxford-iiit-pet",
        "images/ and annotations/ (trainval.txt, test.txt)",
    ),
    "DTD": Catalogued(
        _splits(train="train", val="val", test="test"),
        "dtd/dtd",
        "images/<class>/ and labels/ (train1.txt, val1.txt, test1.txt)",
    ),
    "EuroSAT": Catalogued(
        {"train": {}}, "eurosat/2750", "one folder of .jpg images per class (AnnualCrop, ...)"
    ),
    "Food101": Catalogued(
        _splits(train="train", test="test"), "food-101", "images/<class>/ and meta/ (train.json, test.json)"
    ),
    "GTSRB": Catalogued(
        _splits(train="train", test="test"),
        "gtsrb",
        "GTSRB/Training/<class>/, GTSRB/Final_Test/Images/ and GT-final_test.csv",
        tuple(str(c) for c in range(43)),
    ),
    "FGVCAircraft": Catalogued(
        _splits(train="train", val="val", test="test"),
        "fgvc-aircraft-2013b",
        "data/images/, data/variants.txt and data/images_variant_{train,val,test}.txt",
    ),
    "Country211": Catalogued(
        _splits(train="train", val="valid", test="test"),
        "country211",
        "train/, valid/ and test/, each with one folder per country code",
    ),
    "Caltech101": Catalogued({"train": {}}, "caltech101", "101_ObjectCategories/ (one folder per category)"),
    "Caltech256": Catalogued({"train": {}}, "caltech256", "256_ObjectCategories/ (one folder per category)"),
    "SUN397": Catalogued({"train": {}}, "SUN397", "ClassName.txt and the images under a/, b/, ..."),
    "StanfordCars": Catalogued(
        _splits(train="train", test="test"),
        "stanford_cars",
        "cars_train/, cars_test/, devkit/ and cars_test_annos_withlabels.mat",
    ),
    "RenderedSST2": Catalogued(
        _splits(train="train", val="val", test="test"),
        "rendered-sst2",
        "train/, valid/ and test/, each with negative/ and positive/",
    ),
    "Imagenette": Catalogued(
        _splits(train="train", val="val"), "imagenette2", "train/ and val/, one folder per WordNet id"
    ),
    "ImageNet": Catalogued(
        _splits(train="train", val="val"),
        "",
        "ILSVRC2012_devkit_t12.tar.gz with ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar "
        "(or the meta.bin, train/ and val/ torchvision unpacks them into)",
        downloads=False,
    ),
}


# ---------------------------------------------------------------------------- the dataset name


def dataset_name(value: Any) -> str:
    """``data.name``: a dataset of ``CATALOG`` (any letter case); a ConfigError listing them otherwise."""
    valid = list(CATALOG)
    if value in (None, ""):
        raise ConfigError(
            "data.name is required for data=torchvision: the dataset, e.g. data.name=FashionMNIST.",
            f"Valid torchvision dataset names: {', '.join(sorted(valid))}",
        )
    by_lower = {name.lower(): name for name in valid}
    if str(value).lower() in by_lower:
        return by_lower[str(value).lower()]
    import torchvision.datasets

    error = unknown_name("torchvision dataset", value, valid, key="data.name")
    if hasattr(torchvision.datasets, str(value)):
        note = " torchvision has it, but not as a single-label image classification set that ftcli maps."
        raise ConfigError(error.message + note, error.hint)
    raise error


# ---------------------------------------------------------------------------- reading the dataset objects


@dataclass
class OwnSplit:
    """One of the dataset's own splits: labels (into ``class_names``), and its pixels or dataset object."""

    labels: np.ndarray
    class_names: list[str]
    images: np.ndarray | None = None
    base: Any = None


class TorchvisionSubset(Dataset):
    """Chosen items of a torchvision dataset, relabelled, through ftcli's transform."""

    def __init__(
        self,
        base: Any,
        indices: np.ndarray,
        labels: np.ndarray,
        transform: Callable,
        tag: str,
        signature: Callable[[], str],
    ) -> None:
        self.base = base
        self.indices = indices
        self.labels = labels
        self.transform = transform
        self.tag = tag
        self.signature = signature

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, _ = self.base[int(self.indices[index])]
        return self.transform(image), int(self.labels[index])

    @property
    def targets(self) -> list[int]:
        """Every sample's label, in order."""
        return [int(x) for x in self.labels]

    def fingerprint(self) -> str:
        """Identity of the items, their labels and the dataset's files: a feature-cache key part."""
        digest = hashlib.sha256(f"{self.tag}\0{self.signature()}\0".encode())
        digest.update(np.ascontiguousarray(self.indices, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return digest.hexdigest()


class FolderSignature:
    """Path, size and mtime of every file under a folder, hashed once when first asked for."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._value: str | None = None

    def __call__(self) -> str:
        if self._value is None:
            digest = hashlib.sha256()
            for dirpath, dirnames, filenames in os.walk(self.folder):
                dirnames.sort()
                for name in sorted(filenames):
                    stat = os.stat(os.path.join(dirpath, name))
                    digest.update(f"{dirpath}/{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            self._value = digest.hexdigest()
        return self._value


def labels_of(dataset: Any) -> np.ndarray:
    """Every item's label, from the attribute torchvision keeps them in (no image is decoded)."""
    for attr in ("targets", "labels", "_labels", "y"):
        labels = getattr(dataset, attr, None)
        if labels is not None:
            return np.asarray(labels.numpy() if isinstance(labels, torch.Tensor) else labels, dtype=np.int64)
    for attr in ("_samples", "samples"):
        samples = getattr(dataset, attr, None)
        if samples is not None:
            return np.asarray([label for _, label in samples], dtype=np.int64)
    raise DataError(f"{type(dataset).__name__} keeps its labels in no attribute ftcli knows.")


def class_names_of(dataset: Any) -> list[str]:
    """The class names of a torchvision dataset object (``classes`` or ``categories``), unique."""
    raw = getattr(dataset, "classes", None) or getattr(dataset, "categories", None)
    if raw is None:
        labels = labels_of(dataset)
        return [str(i) for i in range(int(labels.max()) + 1 if labels.size else 0)]
    # ImageNet and Imagenette give each class a tuple of synonyms: the first names it
    names = [str(c[0]) if isinstance(c, (tuple, list)) else str(c) for c in raw]
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    return [f"{name} ({i})" if seen[name] > 1 else name for i, name in enumerate(names)]


def in_order_of(part: OwnSplit, train_names: list[str], dataset: str, split: str) -> np.ndarray:
    """A split's labels in the train split's class order, matched by name."""
    index = {name: i for i, name in enumerate(train_names)}
    extra = sorted(set(part.class_names) - set(index))
    if extra:
        raise DataError(f"{dataset}'s {split} split has class '{extra[0]}', which its train split lacks.")
    mapping = np.array([index[name] for name in part.class_names], dtype=np.int64)
    return mapping[part.labels]
