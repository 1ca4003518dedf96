"""``data=digits``: scikit-learn's 8x8 handwritten digits (1,797 images, no download), kept in memory."""

from __future__ import annotations

import numpy as np

from ftcli.data.sources import data_source
from ftcli.data.sources._digit_arrays import DigitArrayDataModule


@data_source("digits")
class DigitsDataModule(DigitArrayDataModule):
    """scikit-learn's 8x8 handwritten digits (1797 images, no download), kept in memory."""

    where = "scikit-learn's digits"

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8), bunch.target
