"""Preprocess once: the uint8 store equals the per-image transform, keeps to its memory budget, and
training on it equals training on the per-image path."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig
from PIL import Image

from ftcli.data.images.store import StoredImages
from ftcli.data.images.transforms import TransformSpec, eval_transform
from ftcli.data.sources import build_datamodule
from ftcli.training.lightning_module import FineTuneModule

from helpers.fitting import fit_config

SPEC = TransformSpec(resize=20, crop=16, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def write_tree(root: Path) -> Path:
    """Odd sizes and the common modes (RGB, grayscale, palette, RGBA): resizing and RGB conversion count."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(("cat", "dog", "owl")):
        (root / name).mkdir(parents=True)
        for i in range(6):
            size = (17 + 7 * i, 23 + 5 * c)
            pixels = rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8)
            img = Image.fromarray(pixels, "RGBA")
            img = [img.convert("RGB"), img.convert("L"), img.convert("P"), img][i % 4]
            img.save(root / name / f"{i}.png")
    return root


def folder(root: Path, tmp_path: Path, **cfg: object):
    base = {"name": "imagefolder", "root": str(root), "num_workers": 0, "val_fraction": 0.3}
    return build_datamodule({**base, "feature_cache_dir": str(tmp_path / "cache"), **cfg}, SPEC, 0)


def per_image(dataset: StoredImages, root_dm) -> torch.Tensor:
    """What the per-image eval transform makes of the same files."""
    files = [path for path, _ in root_dm._ensure_scanned()["val"]]
    transform = eval_transform(SPEC)
    return torch.stack([transform(Image.open(path)) for path in files])


def test_stored_split_equals_the_per_image_eval_transform_bit_for_bit(tmp_path: Path) -> None:
    dm = folder(write_tree(tmp_path / "imgs"), tmp_path)
    dm.setup()
    val = dm.dataset("val")
    assert isinstance(val, StoredImages) and isinstance(dm.dataset("train"), StoredImages)
    expected = per_image(val, dm)
    items = torch.stack([val[i][0] for i in range(len(val))])
    assert torch.equal(items, expected)
    x, y = next(iter(dm.val_dataloader()))  # the training loaders: uint8, normalised on the device
    assert x.dtype == torch.uint8 and x.shape == (len(x), 3, 16, 16)
    x, y = dm.on_after_batch_transfer((x, y), 0)
    assert torch.equal(x, expected[: len(x)]) and y.tolist() == val.targets[: len(y)]
    floats, _ = next(iter(dm.loader("val")))  # every other reader gets normalised floats
    assert torch.equal(floats, expected[: len(floats)])
    assert "images preprocessed once: train" in (dm.store_line() or "")


def test_an_augmented_training_split_is_not_stored_and_the_switch_turns_it_off(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "imgs")
    dm = folder(root, tmp_path, augment={"hflip": True})
    dm.setup()
    assert not isinstance(dm.dataset("train"), StoredImages)
    assert isinstance(dm.dataset("val"), StoredImages)
    assert folder(root, tmp_path, num_workers=1).workers_in_use == 0  # stored: no workers, the cores train
    assert folder(root, tmp_path, num_workers=1, augment={"hflip": True}).workers_in_use == 1
    off = folder(root, tmp_path, cache_images=False)
    off.setup()
    assert not any(isinstance(off.dataset(s), StoredImages) for s in ("train", "val"))
    assert off.store_line() is None


def test_a_store_over_the_memory_budget_goes_to_disk_and_is_reused(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "imgs")
    dm = folder(root, tmp_path, image_cache_mb=0)
    dm.setup()
    val = dm.dataset("val")
    assert isinstance(val, StoredImages) and isinstance(val.images, np.memmap)
    files = sorted((tmp_path / "cache" / "images").glob("*.npy"))
    assert [f.name.split("-")[0] for f in files] == ["train", "val"]
    assert not list((tmp_path / "cache" / "images").glob(".*.tmp")), "a temporary file was left behind"
    assert torch.equal(torch.stack([val[i][0] for i in range(len(val))]), per_image(val, dm))
    assert all(r.built and r.where.endswith(".npy") for r in dm.store_reports)

    again = folder(root, tmp_path, image_cache_mb=0)
    again.setup()
    assert [r.built for r in again.store_reports] == [False, False]
    assert "on disk (reused)" in (again.store_line() or "")

    # cut short (a crash of an older version, a full disk outside ftcli): never used, stored again
    damaged = files[1]
    damaged.write_bytes(damaged.read_bytes()[:200])
    rebuilt = folder(root, tmp_path, image_cache_mb=0)
    rebuilt.setup()
    assert [r.rebuilt for r in rebuilt.store_reports] == [False, True]
    assert "(the stored file was unreadable: built again)" in (rebuilt.store_line() or "")
    stored_again = rebuilt.dataset("val")
    assert torch.equal(torch.stack([stored_again[i][0] for i in range(len(val))]), per_image(val, dm))


def test_two_runs_storing_the_same_split_at_once_both_get_a_whole_store(tmp_path: Path) -> None:
    """Each writes a temporary of its own and moves it onto the one name: no lock, no half file."""
    root = write_tree(tmp_path / "imgs")
    both = [folder(root, tmp_path, image_cache_mb=0) for _ in range(2)]
    start = threading.Barrier(2)

    def store(dm: object) -> None:
        start.wait()
        dm.setup()  # type: ignore[attr-defined]

    threads = [threading.Thread(target=store, args=(dm,)) for dm in both]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stores = tmp_path / "cache" / "images"
    assert [f.name.split("-")[0] for f in sorted(stores.glob("*.npy"))] == ["train", "val"]
    assert not list(stores.glob(".*.tmp"))
    expected = per_image(both[0].dataset("val"), both[0])
    for dm in both:
        val = dm.dataset("val")
        assert torch.equal(torch.stack([val[i][0] for i in range(len(val))]), expected)


def test_over_budget_without_a_fingerprint_falls_back_and_says_why(tmp_path: Path) -> None:
    from ftcli.data.images import store as image_store

    class Plain(torch.utils.data.Dataset):
        transform = None

        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int):
            return self.transform(Image.new("RGB", (8, 8), (i, i, i))), i

        targets = (0, 1, 2)

    stored, report = image_store.build("val", Plain(), SPEC, 0, tmp_path, threads=1)
    assert stored is None and "no fingerprint" in report.text()


def _fit(cfg: DictConfig, tmp_path: Path) -> FineTuneModule:
    module, run_plan = fit_config(cfg, tmp_path)
    stored = isinstance(run_plan.datamodule.dataset("train"), StoredImages)
    assert stored == (cfg.data.cache_images is not False)
    return module


@pytest.mark.slow  # fits networks (~7 s on 2 cores): run by `make test`, not `make test-fast`
@pytest.mark.usefixtures("single_thread")
def test_training_on_the_store_equals_training_per_image(
    compose_train: Callable[..., DictConfig], tmp_path: Path
) -> None:
    common = ("strategy=last_layers", "data.per_class=8", f"data.feature_cache_dir={tmp_path / 'cache'}")
    stored = _fit(compose_train(*common), tmp_path / "stored")
    per_image = _fit(compose_train(*common, "data.cache_images=false"), tmp_path / "per-image")
    for (name, a), b in zip(
        stored.model.state_dict().items(), per_image.model.state_dict().values(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-6), name
