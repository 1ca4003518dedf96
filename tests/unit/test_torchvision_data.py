"""``data=torchvision``: IDX files (Debian's and torchvision's layouts), torchvision's own dataset
objects on small folders in their real layout, splits, classes, per_class, and the errors (offline)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ftcli.data.images import idx_files
from ftcli.data.images.transforms import TransformSpec
from ftcli.data.sources import build_datamodule
from ftcli.data.sources.torchvision_datasets import CATALOG, TorchvisionDataModule
from ftcli.errors import ConfigError, DataError

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import assert_user_error

SPEC = TransformSpec(resize=16, crop=12, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def make(cfg: dict, seed: int = 0) -> TorchvisionDataModule:
    dm = build_datamodule({"source": "torchvision", "batch_size": 4, "num_workers": 0, **cfg}, SPEC, seed)
    assert isinstance(dm, TorchvisionDataModule)
    return dm


# ---------------------------------------------------------------------------- IDX files, written by hand


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX format as LeCun describes it: 0, 0, type 0x08 (ubyte), ndim, big-endian dims, the data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def digit_images(labels: np.ndarray, side: int = 6) -> np.ndarray:
    """One small image per label whose pixels say the label and the index (so a mix-up shows)."""
    images = np.zeros((len(labels), side, side), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i, 0, 0] = label
        images[i, 1, :] = i % 256
    return images


def write_idx_folder(folder: Path, per_class: int = 6, test_per_class: int = 2, gz: bool = True) -> Path:
    """The four MNIST-format files directly in ``folder``, as Debian's dataset-fashion-mnist installs them."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", per_class), ("test", test_per_class)):
        labels = np.repeat(np.arange(10, dtype=np.uint8), n)
        images_stem, labels_stem = idx_files.IDX_FILES[split]
        for stem, array in ((images_stem, digit_images(labels)), (labels_stem, labels)):
            data = idx_bytes(array)
            if gz:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / stem).write_bytes(data)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_gives_back_the_array_written(tmp_path: Path, gz: bool) -> None:
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    path = tmp_path / ("a.gz" if gz else "a")
    path.write_bytes(gzip.compress(idx_bytes(array)) if gz else idx_bytes(array))

    read = idx_files.read_idx(path)

    assert read.shape == (2, 3, 5) and read.dtype == np.uint8
    np.testing.assert_array_equal(read, array)
    read[0, 0, 0] = 7  # a writable copy, not a view of the file's bytes


def test_read_idx_refuses_a_truncated_or_foreign_file(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(idx_bytes(np.zeros((4, 5, 5), dtype=np.uint8))[:-3])
    with pytest.raises(DataError, match="truncated") as info:
        idx_files.read_idx(short)
    assert str(short) in str(info.value)

    foreign = tmp_path / "foreign.gz"
    foreign.write_bytes(gzip.compress(b"PNG not an IDX file"))
    with pytest.raises(DataError, match="not an IDX file"):
        idx_files.read_idx(foreign)

    broken = tmp_path / "broken.gz"
    broken.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="Cannot read"):
        idx_files.read_idx(broken)


def test_the_debian_layout_reads_the_four_files_in_the_folder_itself(tmp_path: Path) -> None:
    folder = write_idx_folder(tmp_path / "fashion-mnist", per_class=10, test_per_class=3)

    dm = make({"name": "FashionMNIST", "root": str(folder), "val_fraction": 0.2})

    assert dm.class_names == FASHION
    assert dm.root == folder and dm.has_test and dm.num_workers == 0
    # val is carved from the 100 training images (2 per class); test is the dataset's own (30)
    assert dm.split_sizes() == {"train": 80, "val": 20, "test": 30}
    dm.setup()
    for split in ("train", "val", "test"):
        ds = dm.dataset(split)
        assert np.bincount(ds.targets, minlength=10).tolist() == [len(ds) // 10] * 10
        # the label read from the labels file matches the pixel the image file stored for it
        assert [int(img[0, 0]) for img in ds.source.images] == ds.targets  # the stored split's source
    x, y = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert x.shape == (4, 3, 12, 12) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_torchvisions_own_layout_and_plain_files_are_read_too(tmp_path: Path) -> None:
    write_idx_folder(tmp_path / "MNIST" / "raw", gz=False)

    dm = make({"name": "MNIST", "root": str(tmp_path), "classes": [7, 3]})

    assert dm.root == tmp_path / "MNIST" / "raw"
    assert dm.class_names == ["7", "3"]  # digits, as data=mnist and data=digits name them
    dm.setup()
    train = dm.dataset("train")
    # label 0 is digit 7 and label 1 is digit 3: the pixel each image stored says which digit it is
    raw = train.source.images  # the stored split's source arrays
    pairs = {(int(img[0, 0]), label) for img, label in zip(raw, train.targets, strict=True)}
    assert pairs == {(7, 0), (3, 1)}


def test_classes_per_class_and_the_seed(tmp_path: Path) -> None:
    folder = write_idx_folder(tmp_path / "kmnist", per_class=12)
    cfg = {"name": "KMNIST", "root": str(folder), "classes": ["su", "o", "ki"]}

    full = make(cfg)
    few = make({**cfg, "per_class": 3})
    other_seed = make(cfg, seed=1)

    assert few.class_names == ["su", "o", "ki"]
    few.setup()
    assert np.bincount(few.dataset("train").targets).tolist() == [3, 3, 3]
    # per_class thins train only: val and test are those of the full run
    for split in ("val", "test"):
        assert few.parts[split][1].tolist() == full.parts[split][1].tolist()
    assert full.parts["val"][1].tolist() != other_seed.parts["val"][1].tolist()
    assert make(cfg).parts["val"][1].tolist() == full.parts["val"][1].tolist()


def test_test_images_with_the_pixels_of_training_images_are_found_and_dropped(tmp_path: Path) -> None:
    # digit_images draws image i from its label and i: test images 0 and 1 (label 0) equal train's 0 and 1
    folder = write_idx_folder(tmp_path / "fashion")
    dm = make({"name": "FashionMNIST", "root": str(folder), "on_leak": "drop"})
    before = dm.split_sizes()["test"]
    report = dm.check_leaks()
    assert (
        report.basis == "pixels" and report.across == {"test in train": 2} and report.dropped == {"test": 2}
    )
    assert report.examples[0].startswith("FashionMNIST/test #") and dm.split_sizes()["test"] == before - 2
    assert 0 not in dm.parts["test"][1] and 1 not in dm.parts["test"][1]


def test_a_copied_image_file_of_a_dataset_that_reads_files_is_found(tmp_path: Path) -> None:
    root = write_eurosat(tmp_path)
    forest = root / "eurosat" / "2750" / "Forest"
    (forest / "Forest_10.jpg").write_bytes((forest / "Forest_1.jpg").read_bytes())
    report = make({"name": "EuroSAT", "root": str(root)}).check_leaks()
    assert report.basis == "file bytes" and report.leaked_count + report.repeated_count == 1


@pytest.mark.slow  # reads and checks the 70,000 real images (~9 s on 2 cores)
@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="apt install dataset-fashion-mnist")
def test_the_real_debian_fashion_mnist() -> None:
    dm = make({"name": "FashionMNIST", "root": str(DEBIAN_FASHION_MNIST), "per_class": 2})

    assert dm.class_names == FASHION
    assert dm.split_sizes() == {"train": 20, "val": 12000, "test": 10000}
    dm.setup()
    images = dm.dataset("test").source.images
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(dm.dataset("test").targets).tolist() == [1000] * 10
    assert 60 < images.mean() < 90  # real clothes on black, not noise nor blank


# ---------------------------------------------------------------------------- torchvision's dataset objects


def write_jpeg(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 16), colour).save(path)


EUROSAT = ("AnnualCrop", "Forest", "River")


def write_eurosat(root: Path, per_class: int = 10) -> Path:
    """EuroSAT as torchvision unpacks it: <root>/eurosat/2750/<Class>/<Class>_<n>.jpg."""
    for c, name in enumerate(EUROSAT):
        for i in range(per_class):
            write_jpeg(
                root / "eurosat" / "2750" / name / f"{name}_{i + 1}.jpg", (80 * c, 5 * i, 200 - 60 * c)
            )
    return root


def test_a_dataset_without_splits_gets_val_and_test_carved(tmp_path: Path) -> None:
    root = write_eurosat(tmp_path)

    dm = make({"name": "EuroSAT", "root": str(root), "val_fraction": 0.2, "test_fraction": 0.3})

    assert dm.class_names == list(EUROSAT)
    assert dm.split_sizes() == {"train": 15, "val": 6, "test": 9}
    assert dm.describe()["name"] == "EuroSAT (torchvision)"
    dm.setup()
    seen = set()
    for split in ("train", "val", "test"):
        ds = dm.dataset(split)
        assert np.bincount(ds.targets).tolist() == [len(ds) // 3] * 3
        seen |= {(split, int(i)) for i in dm.parts[split][1]}
    assert len({i for _, i in seen}) == 30  # no image in two splits
    x, y = next(iter(dm.loader("val")))
    assert x.shape == (4, 3, 12, 12)
    # the image behind each label is that class's colour (red channel 80 * class)
    red = (x[:, 0] * 0.25 + 0.5).mean(dim=(1, 2)) * 255
    assert torch.allclose(red, 80 * y.float(), atol=3)


def test_subset_per_class_and_fingerprint(tmp_path: Path) -> None:
    root = write_eurosat(tmp_path)
    cfg = {"name": "EuroSAT", "root": str(root), "classes": ["River", "AnnualCrop"], "per_class": 2}

    dm = make(cfg)
    dm.setup()

    assert dm.class_names == ["River", "AnnualCrop"]
    train = dm.dataset("train")
    assert sorted(train.targets) == [0, 0, 1, 1]
    first = train.fingerprint()
    again = make(cfg)
    again.setup()
    assert again.dataset("train").fingerprint() == first
    # a changed image file is a different dataset for the feature cache
    write_jpeg(root / "eurosat" / "2750" / "River" / "River_1.jpg", (1, 2, 3))
    changed = make(cfg)
    changed.setup()
    assert changed.dataset("train").fingerprint() != first


DTD_CLASSES = ("banded", "dotted", "striped")


def write_dtd(root: Path) -> Path:
    """DTD as torchvision unpacks it: <root>/dtd/dtd/images/<class>/*.jpg and labels/<split>1.txt.

    Its val list leaves out 'banded', so torchvision numbers that split's classes differently."""
    data = root / "dtd" / "dtd"
    lists = {"train": DTD_CLASSES * 4, "val": ("dotted", "striped") * 2, "test": DTD_CLASSES * 2}
    for split, classes in lists.items():
        lines = []
        for i, name in enumerate(classes):
            file = f"{name}_{split}_{i:04d}.jpg"
            write_jpeg(data / "images" / name / file, (100 * DTD_CLASSES.index(name), 0, 0))
            lines.append(f"{name}/{file}")
        (data / "labels").mkdir(parents=True, exist_ok=True)
        (data / "labels" / f"{split}1.txt").write_text("\n".join(lines) + "\n")
    return root


def test_a_datasets_own_splits_are_used_and_matched_by_class_name(tmp_path: Path) -> None:
    dm = make({"name": "DTD", "root": str(write_dtd(tmp_path))})

    assert dm.class_names == list(DTD_CLASSES)
    assert dm.split_sizes() == {"train": 12, "val": 4, "test": 6}
    dm.setup()
    # val's own numbering is dotted=0, striped=1; in ftcli they are the train split's 1 and 2
    assert sorted(set(dm.dataset("val").targets)) == [1, 2]
    for split in ("train", "val", "test"):
        x, y = next(iter(dm.loader(split)))
        red = (x[:, 0] * 0.25 + 0.5).mean(dim=(1, 2)) * 255
        assert torch.allclose(red, 100 * y.float(), atol=3), split


# ---------------------------------------------------------------------------- errors


def test_source_picks_the_module_and_the_other_sources_still_go_by_name(tmp_path: Path) -> None:
    assert make({"name": "EuroSAT", "root": str(write_eurosat(tmp_path))}).name == "torchvision"
    digits = build_datamodule({"name": "digits", "batch_size": 4, "num_workers": 0}, SPEC, 0)
    assert digits.name == "digits" and digits.num_classes == 10


def test_an_unknown_dataset_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        make({"name": "FashionMNSIT"})
    text = str(info.value)
    assert "FashionMNSIT" in text
    for name in ("CIFAR10", "FashionMNIST", "MNIST", "EuroSAT", "Flowers102", "SVHN"):
        assert name in text
    with pytest.raises(ConfigError, match=r"data\.name is required"):
        make({"name": None})
    with pytest.raises(ConfigError, match="not as a single-label image classification"):
        make({"name": "CocoDetection"})


def test_every_catalogued_dataset_is_in_torchvision() -> None:
    import torchvision.datasets

    for name in CATALOG:
        assert hasattr(torchvision.datasets, name), name


@pytest.mark.parametrize(
    ("name", "folder", "expected"),
    [
        ("FashionMNIST", "", "train-images-idx3-ubyte[.gz]"),
        ("CIFAR10", "cifar-10-batches-py", "data_batch_1"),
        ("EuroSAT", "eurosat/2750", "one folder of .jpg images per class"),
    ],
)
def test_missing_files_offline_name_the_folder_and_the_files(
    tmp_path: Path, name: str, folder: str, expected: str
) -> None:
    with pytest.raises(DataError) as info:
        make({"name": name, "root": str(tmp_path / "data"), "download": False})
    text = str(info.value)
    assert str(tmp_path / "data" / folder) in text
    assert expected in text
    assert "data.download=true" in text
    assert not (tmp_path / "data").exists()  # nothing was created, let alone downloaded


def test_damaged_files_name_the_folder_and_what_it_should_hold(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(DataError) as info:
        make({"name": "CIFAR10", "root": str(tmp_path)})
    text = str(info.value)
    assert f"could not read CIFAR10 from {folder}" in text
    assert "test_batch and batches.meta" in text and "data.download=true" in text


def test_ftcli_offline_wins_over_data_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTCLI_OFFLINE", "1")
    with pytest.raises(DataError, match="FTCLI_OFFLINE is set, so nothing was downloaded"):
        make({"name": "KMNIST", "root": str(tmp_path), "download": True})
    assert list(tmp_path.iterdir()) == []


def test_a_class_the_dataset_lacks_lists_its_classes(tmp_path: Path) -> None:
    folder = write_idx_folder(tmp_path)
    with pytest.raises(DataError) as info:
        make({"name": "FashionMNIST", "root": str(folder), "classes": ["Bag", "Hat"]})
    text = str(info.value)
    assert "'Hat'" in text and "FashionMNIST" in text
    for name in FASHION:
        assert name in text
    with pytest.raises(ConfigError, match="twice"):
        make({"name": "FashionMNIST", "root": str(folder), "classes": ["Bag", "Bag"]})


def test_per_class_above_what_a_class_has(tmp_path: Path) -> None:
    root = write_eurosat(tmp_path, per_class=10)
    with pytest.raises(DataError) as info:
        make(
            {"name": "EuroSAT", "root": str(root), "per_class": 8, "val_fraction": 0.2, "test_fraction": 0.2}
        )
    text = str(info.value)
    assert (
        "data.per_class=8" in text and "6 image(s) in the train split" in text and "data.per_class=6" in text
    )
    make({"name": "EuroSAT", "root": str(root), "per_class": 6, "val_fraction": 0.2, "test_fraction": 0.2})


def test_cli_missing_files_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run_cli_inprocess(
        "train",
        "data=torchvision",
        "data.name=FashionMNIST",
        f"data.root={missing}",
        "model=resnet18",
        "model.weights=null",
        "trainer=cpu",
        "print_config=false",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert_user_error(result, str(missing), "train-images-idx3-ubyte", "data.download=true")
