"""Datasets, splits, data errors and transforms (CPU, offline, small images)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ftcli.data.images.transforms import (
    TransformSpec,
    eval_transform,
    is_deterministic,
    to_rgb,
    train_transform,
)
from ftcli.data.sources import build_datamodule
from ftcli.errors import ConfigError, DataError

SPEC = TransformSpec(resize=16, crop=12, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def make(cfg: dict, seed: int = 0):
    return build_datamodule({"batch_size": 4, "num_workers": 0, **cfg}, SPEC, seed)


def write_image(path: Path, mode: str = "RGB", colour=(200, 30, 30), size=(10, 14)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "L":
        colour = colour[0]
    elif mode == "RGBA":
        colour = (*colour, 128)
    Image.new(mode, size, colour).save(path)
    return path


def write_tree(root: Path, classes=("cat", "dog", "fox"), per_class: int = 5) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            write_image(root / name / f"{i}.png", colour=(40 * c, 10 * i, 90))
    return root


def all_labels(dm) -> set[int]:
    dm.setup()
    splits = ["train", "val"] + (["test"] if dm.has_test else [])
    return {label for s in splits for label in dm.dataset(s).targets}


def paths(dm, split: str) -> list[str]:
    dm.setup()
    return [p for p, _ in dm.dataset(split).samples]


# ---------------------------------------------------------------------------- digits


def test_digits_subset_has_remapped_labels():
    dm = make({"name": "digits", "classes": [5, 6, 7, 8, 9]})
    assert dm.class_names == ["5", "6", "7", "8", "9"]
    assert dm.num_classes == 5
    assert all_labels(dm) == {0, 1, 2, 3, 4}
    assert dm.num_workers == 0


def test_digits_per_class_keeps_test_set():
    few = make({"name": "digits", "classes": [5, 6, 7, 8, 9], "per_class": 3})
    full = make({"name": "digits", "classes": [5, 6, 7, 8, 9], "per_class": None})
    few.setup()
    full.setup()
    assert len(few.dataset("train")) == 15
    assert np.bincount(few.dataset("train").labels).tolist() == [3] * 5
    assert few.indices["test"] == full.indices["test"]
    assert few.indices["val"] == full.indices["val"]
    assert few.describe()["test"] == full.describe()["test"] > 0


def test_digits_batch_shape():
    dm = make({"name": "digits"})
    x, y = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)  # uint8 until on the device
    assert x.shape == (4, 3, 12, 12) and x.dtype == torch.float32
    assert y.dtype == torch.int64


def test_digits_split_is_seeded():
    assert make({"name": "digits"}, seed=1).indices == make({"name": "digits"}, seed=1).indices
    assert make({"name": "digits"}, seed=1).indices["val"] != make({"name": "digits"}, seed=2).indices["val"]


@pytest.mark.parametrize(
    ("cfg", "error", "words"),
    [
        ({"classes": [5, 12]}, DataError, ["12", "0-9"]),
        ({"per_class": 0}, DataError, ["per_class=0", ">=1"]),
        ({"classes": [3]}, DataError, ["at least 2"]),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, ConfigError, ["below 1"]),
        ({"augment": {"hlfip": True}}, ConfigError, ["hlfip", "hflip"]),
        ({"on_bad_image": "ignore"}, ConfigError, ["error, skip"]),
        ({"batch_size": 0}, ConfigError, ["batch_size"]),
    ],
)
def test_digits_config_errors(cfg, error, words):
    with pytest.raises(error) as info:
        make({"name": "digits", **cfg})
    for word in words:
        assert word in str(info.value)


def test_unknown_dataset_name_lists_valid_ones():
    with pytest.raises(ConfigError) as info:
        make({"name": "mnits"})
    assert "mnits" in str(info.value)
    for name in ("csv", "digits", "imagefolder", "mnist", "shapes", "torchvision"):
        assert name in str(info.value)


# ---------------------------------------------------------------------------- shapes


def shapes(root: Path, seed: int):
    return make({"name": "shapes", "root": str(root), "per_class": 6, "image_size_on_disk": 16}, seed)


def file_bytes(dm) -> dict[str, bytes]:
    dm.prepare_data()
    return {str(p.relative_to(dm.root)): p.read_bytes() for p in sorted(dm.root.rglob("*.png"))}


def test_shapes_are_deterministic(tmp_path):
    a, b, c = shapes(tmp_path / "a", 7), shapes(tmp_path / "b", 7), shapes(tmp_path / "c", 8)
    assert len(a.class_names) >= 3
    files = file_bytes(a)
    assert len(files) == 6 * a.num_classes
    assert files == file_bytes(b)
    assert files != file_bytes(c)
    assert a.root.name == b.root.name != c.root.name


def test_shapes_reuse_existing_files_and_load(tmp_path):
    dm = shapes(tmp_path, 0)
    dm.setup()
    stamp = {p: p.stat().st_mtime_ns for p in dm.root.rglob("*.png")}
    again = shapes(tmp_path, 0)
    again.setup()
    assert {p: p.stat().st_mtime_ns for p in again.root.rglob("*.png")} == stamp
    assert [p.name for p in tmp_path.iterdir()] == [dm.root.name]  # no temp dirs left behind
    assert again.has_test and all_labels(again) == set(range(again.num_classes))
    x, _ = next(iter(again.val_dataloader()))
    assert x.shape[1:] == (3, 12, 12)


def test_shapes_written_first_by_another_process_are_used(tmp_path, monkeypatch):
    dm = shapes(tmp_path, 0)
    ours = type(dm)._write

    def theirs_finish_first(self, directory: Path) -> None:
        self.root.mkdir()  # another process moves its copy into place while we draw ours
        ours(self, self.root)
        ours(self, directory)

    monkeypatch.setattr(type(dm), "_write", theirs_finish_first)
    dm.prepare_data()
    assert len(list(dm.root.rglob("*.png"))) == 6 * dm.num_classes
    assert [p.name for p in tmp_path.iterdir()] == [dm.root.name]  # our temporary copy is gone


def test_shapes_that_fail_to_write_leave_nothing(tmp_path, monkeypatch):
    dm = shapes(tmp_path, 0)

    def disk_full(self, directory: Path) -> None:
        (directory / "circle").mkdir()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(dm), "_write", disk_full)
    with pytest.raises(DataError, match=r"Cannot write generated shapes to .*No space left"):
        dm.prepare_data()
    assert list(tmp_path.iterdir()) == []


def test_shapes_unknown_class(tmp_path):
    with pytest.raises(DataError, match="hexagon"):
        make({"name": "shapes", "root": str(tmp_path), "classes": ["circle", "hexagon"]})


# ---------------------------------------------------------------------------- imagefolder


def test_imagefolder_train_val_layout_gray_and_rgba(tmp_path):
    write_tree(tmp_path / "train", per_class=3)
    write_image(tmp_path / "train" / "cat" / "gray.png", mode="L")
    write_image(tmp_path / "train" / "dog" / "alpha.png", mode="RGBA")
    write_image(tmp_path / "val" / "cat" / "v.JPG")
    write_image(tmp_path / "val" / "dog" / "v.png", mode="P")
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    dm = make({"name": "imagefolder", "root": str(tmp_path)})
    assert dm.class_names == ["cat", "dog", "fox"]
    assert not dm.has_test
    assert dm.describe()["train"] == 11 and dm.describe()["val"] == 2
    dm.setup()
    train = dm.dataset("train")
    for name in ("gray.png", "alpha.png"):
        i = next(k for k, (p, _) in enumerate(train.samples) if p.endswith(name))
        assert train[i][0].shape == (3, 12, 12)
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (2, 3, 12, 12) and y.tolist() == [0, 1]
    with pytest.raises(DataError, match="no test split"):
        dm.test_dataloader()


def test_imagefolder_train_val_test_folders(tmp_path):
    write_tree(tmp_path / "train")
    write_tree(tmp_path / "val", per_class=1)
    write_tree(tmp_path / "test", classes=("dog",), per_class=2)
    dm = make({"name": "imagefolder", "root": str(tmp_path)})
    assert dm.has_test
    assert dm.describe()["test"] == 2
    dm.setup()
    assert set(dm.dataset("test").targets) == {1}


def test_imagefolder_single_folder_split_is_stratified(tmp_path):
    write_tree(tmp_path, per_class=6)
    dm = make({"name": "imagefolder", "root": str(tmp_path), "val_fraction": 0.2, "test_fraction": 0.2})
    assert dm.has_test
    dm.setup()
    for split in ("train", "val", "test"):
        assert set(dm.dataset(split).targets) == {0, 1, 2}, split
    everything = paths(dm, "train") + paths(dm, "val") + paths(dm, "test")
    assert len(everything) == len(set(everything)) == 18
    same = make({"name": "imagefolder", "root": str(tmp_path), "val_fraction": 0.2, "test_fraction": 0.2})
    assert paths(same, "val") == paths(dm, "val")
    other = make({"name": "imagefolder", "root": str(tmp_path), "test_fraction": 0.2}, seed=3)
    assert paths(other, "val") != paths(dm, "val")


def test_imagefolder_auto_workers(tmp_path):
    write_tree(tmp_path)
    dm = build_datamodule({"name": "imagefolder", "root": str(tmp_path), "num_workers": "auto"}, SPEC, 0)
    assert 1 <= dm.num_workers <= 4


def test_root_missing(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataError) as info:
        make({"name": "imagefolder", "root": str(missing)})
    assert f"data.root={missing} does not exist" in str(info.value)
    assert "one sub-folder per class" in str(info.value)


def test_root_is_a_file(tmp_path):
    f = write_image(tmp_path / "x.png")
    with pytest.raises(DataError, match="is a file") as info:
        make({"name": "imagefolder", "root": str(f)})
    assert str(f) in str(info.value)


def test_no_class_folders(tmp_path):
    write_image(tmp_path / "a.png")
    with pytest.raises(DataError) as info:
        make({"name": "imagefolder", "root": str(tmp_path)})
    assert str(tmp_path) in str(info.value)
    assert "no class folders" in str(info.value) and "one folder per class" in str(info.value)


def test_empty_class_folder_is_named(tmp_path):
    write_tree(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataError) as info:
        make({"name": "imagefolder", "root": str(tmp_path)})
    assert str(tmp_path / "empty") in str(info.value) and "holds no images" in str(info.value)


def test_single_class(tmp_path):
    write_tree(tmp_path, classes=("cat",))
    with pytest.raises(DataError, match="at least 2") as info:
        make({"name": "imagefolder", "root": str(tmp_path)})
    assert "cat" in str(info.value)


def test_val_class_not_in_train(tmp_path):
    write_tree(tmp_path / "train")
    write_tree(tmp_path / "val", classes=("cat", "owl"), per_class=1)
    with pytest.raises(DataError) as info:
        make({"name": "imagefolder", "root": str(tmp_path)})
    assert str(tmp_path / "val" / "owl") in str(info.value) and "rename or remove" in str(info.value)


def test_class_too_small_for_split(tmp_path):
    write_tree(tmp_path, per_class=5)
    for i in range(2):
        write_image(tmp_path / "owl" / f"{i}.png")
    with pytest.raises(DataError) as info:
        make({"name": "imagefolder", "root": str(tmp_path), "test_fraction": 0.2})
    message = str(info.value)
    assert "'owl'" in message and "2 image(s)" in message and "at least 3" in message
    assert "lower the fractions" in message


def test_val_fraction_zero_without_val_folder(tmp_path):
    write_tree(tmp_path)
    with pytest.raises(ConfigError, match="val_fraction"):
        make({"name": "imagefolder", "root": str(tmp_path), "val_fraction": 0})


def write_bad_tree(tmp_path: Path) -> Path:
    write_tree(tmp_path)
    bad = tmp_path / "dog" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    return bad


def test_bad_image_error_names_file(tmp_path):
    bad = write_bad_tree(tmp_path)
    dm = make({"name": "imagefolder", "root": str(tmp_path)})
    with pytest.raises(DataError) as info:
        dm.setup()
    assert str(bad) in str(info.value) and "data.on_bad_image=skip" in str(info.value)


def test_bad_image_skip_counts_it(tmp_path):
    bad = write_bad_tree(tmp_path)
    dm = make({"name": "imagefolder", "root": str(tmp_path), "on_bad_image": "skip"})
    before = dm.describe()
    dm.setup()
    assert dm.bad_images == [str(bad)]
    after = dm.describe()
    assert after["bad_images"] == 1
    assert sum(after[s] for s in ("train", "val")) == sum(before[s] for s in ("train", "val")) - 1
    for x, _ in dm.train_dataloader():
        assert x.shape[1] == 3


def test_truncated_image_names_file_on_load(tmp_path):
    write_tree(tmp_path)
    path = tmp_path / "cat" / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:2000])
    stored = make({"name": "imagefolder", "root": str(tmp_path), "val_fraction": 0.4})
    with pytest.raises(DataError, match=r"big\.png"):
        stored.setup()  # preprocessing once decodes every image up front: the run stops before training
    dm = make({"name": "imagefolder", "root": str(tmp_path), "val_fraction": 0.4, "cache_images": False})
    dm.setup()  # the header is fine, so the cheap check passes
    split = next(s for s in ("train", "val") if str(path) in paths(dm, s))
    ds = dm.dataset(split)
    index = paths(dm, split).index(str(path))
    with pytest.raises(DataError) as info:
        ds[index]
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------- csv


def write_manifest(path: Path, rows: list[dict], columns=("path", "label", "split")) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def csv_rows(root: Path, per_class: int = 5) -> list[dict]:
    rows = []
    for label in ("zebra", "ant", "bee"):
        for i in range(per_class):
            write_image(root / "img" / f"{label}{i}.png", colour=(i * 20, 9, 9))
            split = "val" if i == 0 else ("test" if i == 1 and label != "bee" else "train")
            rows.append({"path": f"img/{label}{i}.png", "label": label, "split": split})
    return rows


def test_csv_with_split_column(tmp_path):
    manifest = write_manifest(tmp_path / "labels.csv", csv_rows(tmp_path))
    dm = make({"name": "csv", "manifest": str(manifest)})
    assert dm.class_names == ["ant", "bee", "zebra"]
    assert dm.has_test
    assert (dm.describe()["train"], dm.describe()["val"], dm.describe()["test"]) == (10, 3, 2)
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (2, 3, 12, 12) and sorted(y.tolist()) == [0, 2]


def test_csv_without_split_column_and_other_root(tmp_path):
    rows = csv_rows(tmp_path / "data")
    manifest = write_manifest(tmp_path / "labels.csv", rows, columns=("label", "path"))
    dm = make({"name": "csv", "manifest": str(manifest), "root": str(tmp_path / "data")})
    assert not dm.has_test
    dm.setup()
    assert set(dm.dataset("train").targets) == set(dm.dataset("val").targets) == {0, 1, 2}
    assert len(dm.dataset("train")) + len(dm.dataset("val")) == 15


def test_csv_missing_manifest(tmp_path):
    with pytest.raises(DataError) as info:
        make({"name": "csv", "manifest": str(tmp_path / "labels.csv")})
    assert str(tmp_path / "labels.csv") in str(info.value) and "path,label" in str(info.value)


def test_csv_missing_column_lists_columns(tmp_path):
    manifest = write_manifest(
        tmp_path / "m.csv", [{"file": "a.png", "label": "a"}], columns=("file", "label")
    )
    with pytest.raises(DataError) as info:
        make({"name": "csv", "manifest": str(manifest)})
    message = str(info.value)
    assert str(manifest) in message and "path" in message and "'file', 'label'" in message


def test_csv_row_with_missing_file(tmp_path):
    rows = csv_rows(tmp_path)
    rows.append({"path": "img/ghost.png", "label": "ant", "split": "train"})
    manifest = write_manifest(tmp_path / "m.csv", rows)
    with pytest.raises(DataError) as info:
        make({"name": "csv", "manifest": str(manifest)})
    assert str(tmp_path / "img" / "ghost.png") in str(info.value) and "data.root" in str(info.value)


def test_csv_label_only_in_val(tmp_path):
    rows = csv_rows(tmp_path)
    rows.append({"path": "img/ant0.png", "label": "wasp", "split": "val"})
    with pytest.raises(DataError, match="'wasp'"):
        make({"name": "csv", "manifest": str(write_manifest(tmp_path / "m.csv", rows))})


# ---------------------------------------------------------------------------- transforms


def test_spec_round_trip():
    spec = TransformSpec(
        resize=72, crop=64, mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6), interpolation="bicubic"
    )
    d = spec.to_dict()
    assert d == {
        "resize": 72,
        "crop": 64,
        "mean": [0.1, 0.2, 0.3],
        "std": [0.4, 0.5, 0.6],
        "interpolation": "bicubic",
    }
    assert TransformSpec.from_dict(d) == spec


def test_spec_from_weights():
    from torchvision.models import ResNet18_Weights

    spec = TransformSpec.from_weights(ResNet18_Weights.DEFAULT)
    assert (spec.resize, spec.crop, spec.interpolation) == (256, 224, "bilinear")
    assert spec.mean == pytest.approx((0.485, 0.456, 0.406))
    assert spec.std == pytest.approx((0.229, 0.224, 0.225))
    assert TransformSpec.from_weights(None) is None


def test_is_deterministic():
    assert is_deterministic(None) and is_deterministic({})
    assert is_deterministic({"hflip": False, "rotate": 0, "color_jitter": 0, "random_resized_crop": False})
    assert not is_deterministic({"hflip": True})
    assert not is_deterministic({"rotate": 10})
    assert not is_deterministic({"color_jitter": 0.2})
    assert not is_deterministic({"random_resized_crop": True})


def test_train_transform_shapes_and_eval_equivalence():
    img = Image.new("L", (30, 20), 128)
    augment = {
        "random_resized_crop": True,
        "scale": [0.5, 1.0],
        "hflip": True,
        "rotate": 15,
        "color_jitter": 0.3,
    }
    assert train_transform(SPEC, augment)(img).shape == (3, 12, 12)
    assert torch.equal(train_transform(SPEC, {})(img), eval_transform(SPEC)(img))


def test_to_rgb_composites_alpha_on_white():
    rgba = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    assert to_rgb(rgba).mode == "RGB" and to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("I;16", (2, 2), 65535)).getpixel((0, 0)) == (255, 255, 255)


# ---------------------------------------------------------------------------- the modality-neutral base


def test_the_datamodule_base_imports_no_modality() -> None:
    import ast

    from ftcli.data import datamodule

    tree = ast.parse(Path(datamodule.__file__).read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.startswith(("torchvision", "ftcli.data.images"))]


def test_every_source_is_a_classification_datamodule() -> None:
    from ftcli.data.datamodule import ClassificationDataModule
    from ftcli.data.images.datamodule import ImageDataModule
    from ftcli.data.sources import DATA_SOURCES
    from ftcli.data.text.datamodule import TextDataModule

    for name, source in DATA_SOURCES.items():
        assert issubclass(source, (ImageDataModule, TextDataModule)), name
        assert issubclass(source, ClassificationDataModule), name
        assert source.name == name


def test_the_base_serves_samples_as_they_are() -> None:
    from torch.utils.data import TensorDataset

    from ftcli.data.datamodule import ClassificationDataModule

    class Numbers(ClassificationDataModule):
        name = "numbers"
        in_memory = True

        def __init__(self, cfg, spec, seed) -> None:
            super().__init__(cfg, spec, seed)
            self.class_names = ["even", "odd"]

        def _planned_sizes(self):
            return {"train": 10, "val": 4}

        def _make_datasets(self):
            x = torch.arange(14, dtype=torch.int64)  # not images: the base never looks inside
            return {"train": TensorDataset(x[:10], x[:10] % 2), "val": TensorDataset(x[10:], x[10:] % 2)}

    dm = Numbers({"batch_size": 4, "num_workers": "auto"}, spec=None, seed=3)
    assert dm.num_classes == 2 and dm.num_workers == 0 and dm.workers_in_use == 0
    assert dm.describe() == {
        "name": "numbers",
        "root": None,
        "train": 10,
        "val": 4,
        "test": 0,
        "num_classes": 2,
        "classes": ["even", "odd"],
        "bad_samples": 0,
    }
    first = torch.cat([x for x, _ in dm.train_dataloader()])
    assert sorted(first.tolist()) == list(range(10)) and first.tolist() != list(range(10))
    assert torch.equal(torch.cat([x for x, _ in dm.train_dataloader()]), first)  # drawn by (seed, epoch)
    batch = next(iter(dm.val_dataloader()))
    x, y = dm.on_after_batch_transfer(batch, 0)
    assert x is batch[0] and y is batch[1]  # nothing is left for the device: inputs pass unchanged
    with pytest.raises(DataError, match="numbers has no test split"):
        dm.test_dataloader()
