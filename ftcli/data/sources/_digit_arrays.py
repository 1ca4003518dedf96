"""The base of the in-memory handwritten-digit sources (``digits``, ``mnist``): classes, splits, per_class.

Both hold grey uint8 arrays with labels 0-9 and no split of their own: ``data.classes`` picks and
orders the digits, the splits are stratified and seeded, and ``data.per_class`` thins only the
training split, so the test set does not depend on it and few-shot runs stay comparable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ftcli.data import leakage
from ftcli.data.checks import fractions, per_class_option
from ftcli.data.images.datamodule import ImageDataModule
from ftcli.data.images.datasets import ArrayDataset
from ftcli.data.images.transforms import TransformSpec
from ftcli.data.splits import first_per_class, stratified_split
from ftcli.errors import ConfigError, DataError


class DigitArrayDataModule(ImageDataModule):
    """Grey digit images in memory (``load`` gives them with labels 0-9), split per class and seeded."""

    in_memory = True
    # what the error messages call the source, e.g. "scikit-learn's digits"
    where = ""

    def __init__(self, cfg: Mapping[str, Any], spec: TransformSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        digits = digit_classes(cfg.get("classes"))
        self.class_names = [str(d) for d in digits]
        val_fraction, test_fraction = fractions(cfg, 0.2, 0.3)
        per_class = per_class_option(cfg.get("per_class"), "data.per_class", None)
        if val_fraction <= 0:
            raise ConfigError(
                f"data.val_fraction must be above 0 for {self.name}.", "e.g. data.val_fraction=0.2"
            )
        self.has_test = test_fraction > 0

        images, targets = self.load()
        keep = np.isin(targets, digits)
        self.images = images[keep]
        remap = {d: i for i, d in enumerate(digits)}
        self.labels = np.array([remap[int(t)] for t in targets[keep]], dtype=np.int64)
        self.indices = stratified_split(
            self.labels.tolist(), self.class_names, val_fraction, test_fraction, self.seed, self.where
        )
        if per_class is not None:
            self.indices["train"] = first_per_class(self.indices["train"], self.labels, per_class, self.seed)

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """Every image (N, H, W) as uint8 0-255 and its digit (N,)."""
        raise NotImplementedError

    def _planned_sizes(self) -> dict[str, int]:
        return {split: len(idx) for split, idx in self.indices.items()}

    def _contents(self) -> tuple[str, dict[str, leakage.SplitContent]]:
        """Each image's grey pixels, as loaded."""
        return "pixels", {
            split: leakage.SplitContent(
                leakage.array_digests(self.images[idx]), lambda i, idx=idx: f"{self.name} image #{idx[i]}"
            )
            for split, idx in self.indices.items()
        }

    def _drop_leaked(self, leaked: Mapping[str, list[int]]) -> None:
        for split, indices in leaked.items():
            self.indices[split] = leakage.kept(self.indices[split], indices)

    def _make_datasets(self) -> dict[str, Dataset]:
        transforms = self._transforms()
        return {
            split: ArrayDataset(self.images[idx], self.labels[idx], transforms[split])
            for split, idx in self.indices.items()
        }


def digit_classes(value: Any) -> list[int]:
    """``data.classes``: null (all ten digits) or a list of distinct digits, in the label order wanted."""
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
