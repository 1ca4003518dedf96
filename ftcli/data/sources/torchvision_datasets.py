"""``data=torchvision``: a torchvision classification dataset by name (``data.name=FashionMNIST``).

``data.name`` here is the dataset, so the config's ``source: torchvision`` picks this module
(``build_datamodule``). ``CATALOG`` (``ftcli.data.images.torchvision_catalog``) says how each dataset
maps onto ftcli: the constructor arguments of its own splits, where torchvision keeps its files under
``data.root``, and what they are (for the error when they are missing). A split the dataset does not
have is carved from its train split, stratified and seeded; ``data.classes`` picks and orders classes by
name; ``data.per_class`` thins only the training split. Labels and class names come from the dataset
objects' attributes, so no image is decoded before training. MNIST, Fashion-MNIST and KMNIST are read
from their IDX files into memory (``ftcli.data.images.idx_files``), which also accepts a folder holding
the four files directly. Nothing downloads unless ``data.download=true`` (and ``FTCLI_OFFLINE`` is
unset).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ftcli.data import leakage
from ftcli.data.checks import expand_path, fractions, num_workers_option, per_class_option
from ftcli.data.images import idx_files
from ftcli.data.images.datamodule import ImageDataModule
from ftcli.data.images.datasets import ArrayDataset
from ftcli.data.images.torchvision_catalog import (
    CATALOG,
    FolderSignature,
    OwnSplit,
    TorchvisionSubset,
    class_names_of,
    dataset_name,
    in_order_of,
    labels_of,
)
from ftcli.data.images.transforms import TransformSpec
from ftcli.data.sources import data_source
from ftcli.data.splits import SPLITS, first_per_class, stratified_split
from ftcli.errors import ConfigError, DataError

DOWNLOAD_HINT = "or set data.download=true to let torchvision download them (online)"
# where the files are when data.root is not set
DEFAULT_ROOT = os.path.join("~", ".cache", "ftcli", "torchvision")


@data_source("torchvision")
class TorchvisionDataModule(ImageDataModule):
    """A torchvision classification dataset: its own splits, its class names, carved val/test when absent."""

    def __init__(self, cfg: Mapping[str, Any], spec: TransformSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        self.dataset_name = dataset_name(cfg.get("name"))
        self.entry = CATALOG[self.dataset_name]
        val_fraction, test_fraction = fractions(cfg, 0.2, 0.2)
        per_class = per_class_option(cfg.get("per_class"), "data.per_class", None)
        self._root = data_root(cfg.get("root"))
        self.download_asked = download_option(cfg.get("download"))
        download = self.download_asked and not offline()
        if self.entry.idx:  # pixels in memory, as data=mnist: auto means no worker processes
            self.num_workers = num_workers_option(cfg.get("num_workers", "auto"), in_memory=True)

        own = self._load_idx(download) if self.entry.idx else self._load_torchvision(download)
        all_names = next(iter(own.values())).class_names
        chosen = chosen_classes(cfg.get("classes"), all_names, self.dataset_name)
        self.class_names = [all_names[i] for i in chosen]
        remap = np.full(len(all_names), -1, dtype=np.int64)
        remap[chosen] = np.arange(len(chosen))
        # ftcli split -> (the dataset's own split it draws from, indices into it, labels 0..k-1)
        self.parts: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}
        for split, part in own.items():
            keep = np.flatnonzero(remap[part.labels] >= 0)
            self.parts[split] = (split, keep, remap[part.labels[keep]])
        self._own = own
        self._carve(val_fraction, test_fraction)
        self.has_test = "test" in self.parts
        if per_class is not None:
            self._thin_train(per_class)

    # ------------------------------------------------------------------ loading

    def _load_idx(self, download: bool) -> dict[str, OwnSplit]:
        """MNIST-style: the four IDX files in data.root itself or in torchvision's <root>/<Name>/raw."""
        candidates = [self._root, self._root / self.entry.folder]
        folder = idx_files.find_idx_folder(candidates)
        if folder is None and download:
            for kwargs in self.entry.splits.values():
                self._construct(kwargs, download=True)
            folder = idx_files.find_idx_folder(candidates)
        if folder is None:
            raise self._missing(" or ".join(str(c) for c in candidates))
        self._root = folder
        names = list(self.entry.class_names or self._dataset_class().classes)
        out = {}
        for split in self.entry.splits:
            images, labels = idx_files.load_split(folder, split)
            if labels.size and not 0 <= int(labels.min()) <= int(labels.max()) < len(names):
                raise DataError(
                    f"The {split} labels in {folder} run from {labels.min()} to {labels.max()}; "
                    f"{self.dataset_name} has {len(names)} classes.",
                    f"Is {folder} really {self.dataset_name}?",
                )
            out[split] = OwnSplit(labels, names, images=images)
        return out

    def _load_torchvision(self, download: bool) -> dict[str, OwnSplit]:
        """torchvision's dataset object per own split; labels and class names from its attributes."""
        out: dict[str, OwnSplit] = {}
        for split, kwargs in self.entry.splits.items():
            base = self._construct(kwargs, download)
            labels = labels_of(base)
            names = list(self.entry.class_names or class_names_of(base))
            out[split] = OwnSplit(labels, names, base=base)
        train_names = out["train"].class_names
        for split, part in out.items():  # a split's own class list may differ (DTD, Country211)
            if part.class_names != train_names:
                out[split] = OwnSplit(
                    in_order_of(part, train_names, self.dataset_name, split), train_names, base=part.base
                )
        return out

    def _construct(self, kwargs: Mapping[str, Any], download: bool) -> Any:
        """One torchvision dataset object; a DataError naming the folder and the files when it fails."""
        if download and not self.entry.downloads:
            raise DataError(
                f"torchvision cannot download {self.dataset_name}.",
                f"Fetch {self.entry.files} by hand into {self._root}, then set data.download=false.",
            )
        args = {**kwargs, **({"download": download} if self.entry.downloads else {})}
        try:
            return self._dataset_class()(str(self._root), **args)
        except ImportError as exc:
            raise DataError(
                f"Reading {self.dataset_name} needs the Python package {exc.name or exc}.",
                f"Install it: pip install {exc.name or '...'}",
            ) from exc
        except (RuntimeError, OSError, ValueError, EOFError, KeyError) as exc:
            folder = self._root / self.entry.folder
            if download:
                raise DataError(
                    f"torchvision could not download {self.dataset_name} into {self._root}: {exc}",
                    "Check the connection (and the free space there), or fetch the files by hand.",
                ) from exc
            if isinstance(exc, FileNotFoundError) or not folder.is_dir() or not any(folder.iterdir()):
                raise self._missing(str(folder)) from exc
            raise DataError(
                f"torchvision could not read {self.dataset_name} from {folder}: {exc}",
                f"It expects {self.entry.files} there: add what is missing or replace what is damaged, "
                f"{DOWNLOAD_HINT}.",
            ) from exc

    def _dataset_class(self) -> Any:
        import torchvision.datasets

        return getattr(torchvision.datasets, self.dataset_name)

    def _missing(self, where: str) -> DataError:
        skipped = self.download_asked and offline()
        note = " (FTCLI_OFFLINE is set, so nothing was downloaded)" if skipped else ""
        debian = (
            " On Debian or Ubuntu: apt install dataset-fashion-mnist, then "
            "data.root=/usr/share/datasets/fashion-mnist."
            if self.dataset_name == "FashionMNIST"
            else ""
        )
        return DataError(
            f"{self.dataset_name} is not in {where}: expected {self.entry.files}{note}.",
            f"Put them there or point data.root at the folder that holds them, {DOWNLOAD_HINT}.{debian}",
        )

    # ------------------------------------------------------------------ splits

    def _carve(self, val_fraction: float, test_fraction: float) -> None:
        """Split val (and test) off the train split, per class and seeded, where the dataset has none."""
        val = 0.0 if "val" in self.parts else val_fraction
        test = 0.0 if "test" in self.parts else test_fraction
        if "val" not in self.parts and val <= 0:
            raise ConfigError(
                f"{self.dataset_name} has no validation split of its own; data.val_fraction=0 carves none.",
                "Set data.val_fraction above 0, e.g. data.val_fraction=0.2",
            )
        if not val and not test:
            return
        own, indices, labels = self.parts["train"]
        where = f"{self.dataset_name}'s train split ({self._root})"
        carved = stratified_split(labels.tolist(), self.class_names, val, test, self.seed, where)
        for split, positions in carved.items():
            self.parts[split] = (own, indices[positions], labels[positions])

    def _thin_train(self, per_class: int) -> None:
        """Keep ``per_class`` training images per class (seeded); a class with fewer is an error."""
        own, indices, labels = self.parts["train"]
        counts = np.bincount(labels, minlength=len(self.class_names))
        short = int(np.argmin(counts))
        if counts[short] < per_class:
            raise DataError(
                f"data.per_class={per_class}, but class '{self.class_names[short]}' of {self.dataset_name} "
                f"has {counts[short]} image(s) in the train split (val and test are never thinned).",
                f"Use data.per_class={counts.min()} or less, or null for every training image.",
            )
        kept = first_per_class(list(range(len(labels))), labels, per_class, self.seed)
        self.parts["train"] = (own, indices[kept], labels[kept])

    # ------------------------------------------------------------------ datasets

    @property
    def root(self) -> Path:
        """The folder the dataset is read from."""
        return self._root

    def describe(self) -> dict[str, Any]:
        """As every source, named by the dataset."""
        return {**super().describe(), "name": f"{self.dataset_name} (torchvision)"}

    def _planned_sizes(self) -> dict[str, int]:
        return {split: len(indices) for split, (_, indices, _) in self.parts.items()}

    def _contents(self) -> tuple[str, dict[str, leakage.SplitContent]] | None:
        """The pixels the dataset holds in memory (IDX files, CIFAR's arrays), else its image files' bytes;
        None (not checked) for a dataset that keeps neither before decoding."""
        contents: dict[str, leakage.SplitContent] = {}
        bases: set[str] = set()
        for split, (own, indices, _) in self.parts.items():
            part = self._own[own]
            pixels = part.images if part.images is not None else getattr(part.base, "data", None)
            files = image_files(part.base)
            if isinstance(pixels, np.ndarray) and len(pixels) == len(part.labels):
                digests = leakage.array_digests(pixels[indices])
                bases.add("pixels")
                name = f"{self.dataset_name}/{own}"
                contents[split] = leakage.SplitContent(digests, lambda i, n=name, x=indices: f"{n} #{x[i]}")
            elif files is not None and len(files) == len(part.labels):
                chosen = [files[int(i)] for i in indices]
                digests = leakage.file_digests(chosen, min(8, os.cpu_count() or 1))
                bases.add("file bytes")
                contents[split] = leakage.SplitContent(digests, chosen.__getitem__)
            else:
                return None
        return (bases.pop() if len(bases) == 1 else "pixels or file bytes"), contents

    def _drop_leaked(self, leaked: Mapping[str, list[int]]) -> None:
        for split, indices in leaked.items():
            own, chosen, labels = self.parts[split]
            keep = np.setdiff1d(np.arange(len(chosen)), np.asarray(indices, dtype=np.int64))
            self.parts[split] = (own, chosen[keep], labels[keep])

    def _make_datasets(self) -> dict[str, Dataset]:
        transforms = self._transforms()
        signature = FolderSignature(self._root / self.entry.folder)
        datasets: dict[str, Dataset] = {}
        for split in SPLITS:
            if split not in self.parts:
                continue
            own, indices, labels = self.parts[split]
            part = self._own[own]
            if part.images is not None:
                datasets[split] = ArrayDataset(part.images[indices], labels, transforms[split])
            else:
                tag = f"{self.dataset_name}/{own}"
                datasets[split] = TorchvisionSubset(
                    part.base, indices, labels, transforms[split], tag, signature
                )
        return datasets


def image_files(base: Any) -> list[str] | None:
    """The image file of each item of a torchvision dataset that reads files (ImageFolder's ``samples``,
    ``_image_files``, ...), or None."""
    for attribute in ("samples", "_samples", "imgs", "_image_files", "_images"):
        items = getattr(base, attribute, None)
        if isinstance(items, list) and items:
            paths = [item[0] if isinstance(item, tuple) else item for item in items]
            if all(isinstance(p, (str, os.PathLike)) for p in paths):
                return [os.fspath(p) for p in paths]
    return None


# ---------------------------------------------------------------------------- config values


def data_root(value: Any) -> Path:
    """``data.root``, or ``$FTCLI_DATA_DIR/torchvision`` (else ``~/.cache/ftcli/torchvision``) when null."""
    if value in (None, ""):
        base = os.environ.get("FTCLI_DATA_DIR")
        value = os.path.join(base, "torchvision") if base else DEFAULT_ROOT
    return expand_path(value)


def download_option(value: Any) -> bool:
    """``data.download``: true lets torchvision download (online), unless :func:`offline`."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConfigError(f"data.download must be true or false, got {value!r}.")
    return value


def offline() -> bool:
    """``FTCLI_OFFLINE=1`` (as for weights): never download, whatever data.download says."""
    return os.environ.get("FTCLI_OFFLINE", "") not in ("", "0")


def chosen_classes(value: Any, names: list[str], dataset: str) -> list[int]:
    """``data.classes``: null (every class) or distinct class names, as indices in the listed order."""
    if value is None:
        return list(range(len(names)))
    if isinstance(value, (str, int)) or not isinstance(value, Iterable):
        raise ConfigError(
            f"data.classes must be a list of class names such as [{names[0]},{names[1]}], got {value!r}."
        )
    index = {name: i for i, name in enumerate(names)}
    chosen: list[int] = []
    for item in value:
        name = str(item).strip()
        if name not in index:
            raise DataError(
                f"data.classes lists '{name}', which is not a class of {dataset}.",
                f"Its classes: {_shown(names)}",
            )
        if index[name] in chosen:
            raise ConfigError(f"data.classes lists '{name}' twice.")
        chosen.append(index[name])
    if len(chosen) < 2:
        raise DataError(
            f"data.classes={list(value)} has fewer than 2 classes; a classifier needs at least 2."
        )
    return chosen


def _shown(names: list[str], limit: int = 120) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
