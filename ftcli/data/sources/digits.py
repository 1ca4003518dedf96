"""``data=digits``: scikit-learn's 8x8 handwritten digits (1,797 images, no download), kept in memory.

Read from the file ``sklearn/datasets/data/digits.csv.gz`` of the installed package (64 pixel columns
of 0-16, then the label; what ``sklearn.datasets.load_digits`` reads), without importing scikit-learn.
"""

from __future__ import annotations

import numpy as np

from ftcli.data.sources import data_source
from ftcli.data.sources._digit_arrays import DigitArrayDataModule
from ftcli.data.sources._package_files import file_in_package, gzip_csv_table

SIDE = 8


@data_source("digits")
class DigitsDataModule(DigitArrayDataModule):
    """scikit-learn's 8x8 handwritten digits (1797 images, no download), kept in memory."""

    where = "scikit-learn's digits"

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        path = file_in_package("sklearn", "datasets/data/digits.csv.gz", "data=digits", "scikit-learn")
        table = gzip_csv_table(path, SIDE * SIDE + 1, "64 pixel columns and a label")
        images = table[:, :-1].reshape(-1, SIDE, SIDE)
        return np.round(images * (255.0 / 16.0)).astype(np.uint8), table[:, -1].astype(np.int64)
