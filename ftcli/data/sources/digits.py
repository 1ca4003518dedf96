"""``data=digits``: scikit-learn's 8x8 handwritten digits (1,797 images, no download), kept in memory.

The test set does not depend on ``per_class``, which makes few-shot runs comparable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ftcli.data.checks import fractions, per_class_option
from ftcli.data.datamodule import ImageDataModule
from ftcli.data.datasets import ArrayDataset
from ftcli.data.sources import data_source
from ftcli.data.splits import first_per_class, stratified_split
from ftcli.data.transforms import TransformSpec
from ftcli.errors import ConfigError, DataError


@data_source("digits")
class DigitsDataModule(ImageDataModule):
    """scikit-learn's 8x8 handwritten digits (1797 images, no download), kept in memory."""

    in_memory = True

    def __init__(self, cfg: Mapping[str, Any], spec: TransformSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        from sklearn.datasets import load_digits

        digits = _digit_classes(cfg.get("classes"))
        self.class_names = [str(d) for d in digits]
        val_fraction, test_fraction = fractions(cfg, 0.2, 0.3)
        per_class = per_class_option(cfg.get("per_class"), "data.per_class", None)
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
            self.indices["train"] = first_per_class(self.indices["train"], self.labels, per_class, self.seed)

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
