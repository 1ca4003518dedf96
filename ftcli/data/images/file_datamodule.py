"""The base of the sources that read image files: scanning, the unreadable-file check, decoding once.

Unreadable files are found at :meth:`FileDataModule.setup` with a cheap header parse and either
stop the run with the file's name (``data.on_bad_image=error``) or are dropped and listed in
``bad_images`` (``data.on_bad_image=skip``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torch.utils.data import Dataset

from ftcli.data import leakage
from ftcli.data.images.datamodule import ImageDataModule
from ftcli.data.images.datasets import FileDataset
from ftcli.data.images.files import find_unreadable
from ftcli.data.images.transforms import TransformSpec
from ftcli.data.splits import Sample
from ftcli.errors import ConfigError, DataError


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

    def _contents(self) -> tuple[str, dict[str, leakage.SplitContent]]:
        """Each file's bytes: a copy of an image file is found whatever its name or folder."""
        threads = min(8, os.cpu_count() or 1)
        contents = {}
        for split, items in self._ensure_scanned().items():
            paths = [path for path, _ in items]
            contents[split] = leakage.SplitContent(leakage.file_digests(paths, threads), paths.__getitem__)
        return "file bytes", contents

    def _drop_leaked(self, leaked: Mapping[str, list[int]]) -> None:
        samples = self._ensure_scanned()
        for split, indices in leaked.items():
            samples[split] = leakage.kept(samples[split], indices)

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
        # the splits preprocessed once (image_store) decode there; decoding them here too would double it
        self._maybe_preload([ds for split, ds in datasets.items() if not self.stores_split(split)])  # type: ignore[misc]
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
