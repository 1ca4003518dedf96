"""Augmentation on the device: the same draws as torchvision's per-image transforms, applied per image
to whole batches, from a store that keeps every training image once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from ftcli.data.images.device_augment import AugmentBatch, DeviceAugment, apply_jitter
from ftcli.data.images.store import StoredImages
from ftcli.data.images.transforms import TransformSpec
from ftcli.data.sources import build_datamodule
from ftcli.errors import ConfigError
from ftcli.training.lightning_module import FineTuneModule

from helpers.fitting import fit_config

SPEC = TransformSpec(resize=20, crop=16, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
RRC = {"random_resized_crop": True, "scale": [0.2, 1.0], "hflip": True}


def augment(**options: object) -> DeviceAugment:
    return DeviceAugment.from_config(options, SPEC.crop)


def test_crop_boxes_are_torchvision_draws_for_the_original_size_mapped_onto_the_store() -> None:
    sizes = [[300, 500], [480, 320], [64, 64]]
    torch.manual_seed(3)
    boxes = augment(random_resized_crop=True, scale=[0.1, 0.9]).crop_boxes(sizes, side=40)
    torch.manual_seed(3)
    draw = v2.RandomResizedCrop(SPEC.crop, scale=(0.1, 0.9))
    for (h, w), box in zip(sizes, boxes.tolist(), strict=True):
        p = draw.make_params([tv_tensors.Image(torch.empty(0, h, w))])
        expected = [p["left"] * 40 / w, p["top"] * 40 / h, (p["left"] + p["width"]) * 40 / w]
        assert box[:3] == pytest.approx(expected) and box[3] == pytest.approx(
            (p["top"] + p["height"]) * 40 / h
        )


def test_a_crop_of_the_squashed_store_shows_what_the_per_image_crop_shows() -> None:
    """Same box on a smooth 300x500 photo-like image: cut from the squashed store vs from the original."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 300), torch.linspace(0, 1, 500), indexing="ij")
    original = torch.stack([xx, yy, 0.5 + 0.5 * torch.sin(6 * xx) * torch.cos(4 * yy)])  # (3, 300, 500)
    store = F.resize(original, [120, 120], antialias=True)  # whole image, squashed to a square
    aug = augment(random_resized_crop=True)
    for top, left, h, w, elsewhere in [
        (0, 0, 300, 500, None),
        (40, 100, 150, 150, 180),
        (200, 300, 90, 180, 220),
    ]:
        expected = F.resized_crop(original, top, left, h, w, [SPEC.crop, SPEC.crop], antialias=True)
        box = torch.tensor(
            [[left * 120 / 500, top * 120 / 300, (left + w) * 120 / 500, (top + h) * 120 / 300]]
        )
        got = aug.resized_crops(store[None], box)[0]
        assert (got - expected).abs().mean() < 0.01
        if elsewhere is not None:  # the tolerance tells a box 80 px off apart
            shifted = F.resized_crop(original, top, elsewhere, h, w, [SPEC.crop, SPEC.crop], antialias=True)
            assert (got - shifted).abs().mean() > 0.03


def test_flip_mirrors_each_image_on_its_own() -> None:
    torch.manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    out = augment(hflip=True)(images, torch.full((64, 2), 16))
    plain = F.to_dtype(images, torch.float32, scale=True)
    same = [torch.equal(o, p) for o, p in zip(out, plain, strict=True)]
    mirrored = [torch.equal(o, p.flip(-1)) for o, p in zip(out, plain, strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True))
    assert 16 < sum(mirrored) < 48  # about half, drawn per image


def test_jitter_equals_torchvision_with_the_same_factors_and_draws_them_per_image() -> None:
    torch.manual_seed(1)
    x = torch.rand(4, 3, 8, 8)
    factors = torch.tensor(
        [[0.7, 1.3, 1.0, 0.9], [1.2, 0.6, 1.1, 1.0], [0.5, 1.4, 0.8, 1.0], [0.1, -0.1, 0.0, 0.05]]
    )
    order = [2, 0, 3, 1]
    adjust = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue]
    for i in range(4):
        expected = x[i]
        for op in order:
            expected = adjust[op](expected, float(factors[op, i]))
        assert torch.allclose(apply_jitter(x, order, factors)[i], expected, atol=1e-5)
    twins = torch.full((2, 3, 8, 8), 128, dtype=torch.uint8)
    twins[:, 0] = 200
    out = augment(color_jitter=0.4)(twins, torch.full((2, 2), 8))
    assert not torch.equal(out[0], out[1])  # one batch, two draws


def write_tree(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(8):
            pixels = rng.integers(0, 256, (20 + 3 * i, 30 + 5 * c, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(root / name / f"{i}.png")
    return root


def folder(root: Path, tmp_path: Path, **cfg: object):
    base = {"name": "imagefolder", "root": str(root), "num_workers": 0, "val_fraction": 0.25}
    return build_datamodule({**base, "feature_cache_dir": str(tmp_path / "cache"), **cfg}, SPEC, 0)


def test_the_training_split_is_stored_whole_and_augmented_per_batch(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "imgs")
    dm = folder(root, tmp_path, augment=RRC, augment_on_device=True, image_cache_mb=0)
    dm.setup()
    train = dm.dataset("train")
    assert isinstance(train, StoredImages) and isinstance(train.images, np.memmap)  # over budget: on disk
    assert train.images.shape[1:] == (3, SPEC.resize, SPEC.resize)
    files = [Path(path) for path, _ in dm._ensure_scanned()["train"]]
    assert train.sizes.tolist() == [[Image.open(f).height, Image.open(f).width] for f in files]
    assert "augmented per batch on the device" in (dm.store_line() or "")

    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, AugmentBatch) and batch.images.dtype == torch.uint8
    x, y = dm.on_after_batch_transfer(batch, 0)
    assert x.shape == (len(y), 3, SPEC.crop, SPEC.crop) and x.dtype == torch.float32
    assert train[0][0].shape == (3, SPEC.crop, SPEC.crop)  # readers item by item get inputs too

    again = folder(root, tmp_path, augment=RRC, augment_on_device=True, image_cache_mb=0)
    again.setup()
    assert not again.store_reports[0].built and torch.equal(again.dataset("train").sizes, train.sizes)


def test_auto_keeps_the_per_image_path_on_the_cpu_and_says_so(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "imgs")
    dm = folder(root, tmp_path, augment=RRC)
    dm.setup()
    assert not isinstance(dm.dataset("train"), StoredImages)
    assert "train: augmented per image (data.augment_on_device=auto and the training device is the CPU)" in (
        dm.store_line() or ""
    )
    dm = folder(root, tmp_path, augment=RRC)
    dm.on_gpu = True  # what plan_run() sets when the trainer has a GPU
    assert dm.stores_split("train")


def test_options_without_a_batched_form_refuse_an_explicit_true(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "imgs")
    with pytest.raises(ConfigError, match=r"data\.augment\.rotate runs per image"):
        folder(root, tmp_path, augment={"hflip": True, "rotate": 10}, augment_on_device=True)
    dm = folder(root, tmp_path, augment={"hflip": True, "policy": "randaugment"})
    dm.on_gpu = True
    assert not dm.stores_split("train") and dm.device_augment() is None


@pytest.mark.slow  # fits networks (~10 s on 2 cores): run by `make test`, not `make test-fast`
@pytest.mark.usefixtures("single_thread")
def test_training_with_augmentation_on_the_device_is_seeded_by_the_epoch(
    compose_train: Callable[..., DictConfig], tmp_path: Path
) -> None:
    """Two fits with the same seed end with the same weights: every draw follows the seeded generator."""
    overrides = (
        "strategy=last_layers", "data.per_class=6", "data.augment_on_device=true",
        "data.augment.random_resized_crop=true", "data.augment.hflip=true", "data.augment.color_jitter=0.2",
    )  # fmt: skip

    def fit(name: str) -> FineTuneModule:
        module, run_plan = fit_config(compose_train(*overrides), tmp_path / name)
        assert isinstance(run_plan.datamodule.dataset("train"), StoredImages)
        return module

    first, second = fit("a"), fit("b")
    for (name, a), b in zip(
        first.model.state_dict().items(), second.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
