"""``data=imagefolder``: your images, one folder per class (optionally under train/ val/ test/)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ftcli.data.checks import LAYOUT_HINT, check_dir, expand_path, fractions
from ftcli.data.images.file_datamodule import FileDataModule
from ftcli.data.images.files import IMAGE_EXTENSIONS
from ftcli.data.images.transforms import TransformSpec
from ftcli.data.sources import data_source
from ftcli.data.splits import Sample, carve_missing, stratified_split
from ftcli.errors import ConfigError, DataError


@data_source("imagefolder")
class ImageFolderDataModule(FileDataModule):
    """``root/<class>/*.jpg``, or ``root/train|val|test/<class>/*.jpg``; missing splits are carved
    from train (stratified, seeded) by ``val_fraction`` and ``test_fraction``."""

    default_fractions: ClassVar[tuple[float, float]] = (0.2, 0.0)

    def __init__(self, cfg: Mapping[str, Any], spec: TransformSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        self.val_fraction, self.test_fraction = fractions(cfg, *self.default_fractions)
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
        return expand_path(value)

    def _init_classes(self, cfg: Mapping[str, Any]) -> None:
        self._ensure_scanned()

    def _scan(self) -> tuple[list[str], dict[str, list[Sample]]]:
        root = self.root
        check_dir(root, "data.root")
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
    _one_class_per_file(folders, directory)
    if len(folders) < minimum:
        raise DataError(
            f"{directory} has only one class folder ('{subdirs[0].name}'); a classifier needs at least 2.",
            "Add a folder per class, each holding that class's images.",
        )
    return folders


def _image_files(directory: Path, recursive: bool) -> list[str]:
    if not recursive:
        return _once(sorted(str(p) for p in directory.iterdir() if p.is_file() and _is_image(p.name)))
    # Symlinked folders are followed, but never into a loop (``red/loop -> .``) or back up to a folder
    # above the class folder (which would pull in other classes): each real folder is walked once.
    start = os.path.realpath(directory)
    walked = {start}
    found = []
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
        kept = []
        for name in dirnames:
            real = os.path.realpath(os.path.join(dirpath, name))
            if name.startswith(".") or real in walked or start.startswith(real + os.sep):
                continue
            walked.add(real)
            kept.append(name)
        dirnames[:] = kept
        found.extend(os.path.join(dirpath, f) for f in filenames if _is_image(f))
    return _once(sorted(found))


def _one_class_per_file(folders: Mapping[str, list[str]], directory: Path) -> None:
    """A file reached from two class folders (through links) would carry two labels: a DataError naming it."""
    owner: dict[str, str] = {}
    for name, paths in folders.items():
        for path in paths:
            other = owner.setdefault(os.path.realpath(path), name)
            if other != name:
                raise DataError(
                    f"{path} is reached from two class folders of {directory}: '{other}' and '{name}' "
                    "(through a symbolic link).",
                    "Give each image one class: remove the link or the copy.",
                )


def _once(paths: list[str]) -> list[str]:
    """Each file once, however many links reach it (the first path, in sorted order, is kept)."""
    seen: set[str] = set()
    unique = []
    for path in paths:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            unique.append(path)
    return unique


def _is_image(filename: str) -> bool:
    return not filename.startswith(".") and filename.lower().endswith(IMAGE_EXTENSIONS)


def _flatten(folders: Mapping[str, list[str]], class_names: list[str]) -> tuple[list[int], list[str]]:
    samples = _samples(folders, class_names)
    return [label for _, label in samples], [path for path, _ in samples]


def _samples(folders: Mapping[str, list[str]], class_names: list[str]) -> list[Sample]:
    index = {name: i for i, name in enumerate(class_names)}
    return [(path, index[name]) for name in sorted(folders) for path in folders[name]]
