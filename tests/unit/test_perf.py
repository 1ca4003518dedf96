"""The data path and runtime settings behind ``make bench``: decode once, fingerprints, threads, compile."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from ftcli.data.images.transforms import TransformSpec
from ftcli.data.sources import build_datamodule
from ftcli.errors import ConfigError
from ftcli.training import performance as perf
from ftcli.training.trainer import build_trainer

SPEC = TransformSpec(resize=16, crop=12, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def write_tree(root: Path, per_class: int = 5) -> Path:
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("RGB", (10, 14), (80 * c, 10 * i, 90)).save(root / name / f"{i}.png")
    return root


def folder(root: Path, **cfg: object):
    return build_datamodule({"name": "imagefolder", "root": str(root), "num_workers": 0, **cfg}, SPEC, 0)


AUGMENTED = {"augment": {"hflip": True}}  # a random transform: the training split is decoded, not stored


def test_small_image_folders_are_decoded_once_and_served_from_memory(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "imgs")
    dm = folder(root, **AUGMENTED)
    dm.setup()
    train = dm.dataset("train")
    assert train.decoded is not None and len(train.decoded) == len(train)
    before = train[0][0]
    for path, _ in train.samples:
        os.remove(path)  # the disk is no longer read
    assert torch.equal(train[0][0], before)


def test_decode_cache_respects_the_switch_and_the_limit(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "imgs")
    for cfg in ({"cache_images": False}, {"cache_images": "false"}, {"image_cache_mb": 0}):
        dm = folder(root, **AUGMENTED, **cfg, feature_cache_dir=str(tmp_path / "cache"))
        dm.setup()
        assert dm.dataset("train").decoded is None, cfg
    with pytest.raises(ConfigError, match="cache_images"):
        folder(root, cache_images="sometimes")


def test_file_fingerprint_changes_when_a_file_changes(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "imgs")
    dm = folder(root, cache_images=False)
    dm.setup()
    ds = dm.dataset("val")
    before = ds.fingerprint()
    assert ds.fingerprint() == before
    path = Path(ds.samples[0][0])
    Image.new("RGB", (12, 12), (1, 2, 3)).save(path)
    os.utime(path, ns=(1, 1))
    assert ds.fingerprint() != before


def test_cpu_workers_get_their_own_cores() -> None:
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(os.cpu_count() or 1)
        perf.tune(torch.nn.Linear(2, 2), {"accelerator": "cpu"}, num_workers=1)
        assert torch.get_num_threads() == max(1, (os.cpu_count() or 1) - 1)
    finally:
        torch.set_num_threads(threads)


def test_compile_is_a_run_option_not_a_trainer_argument(tmp_path: Path, compose_train) -> None:
    """``compile=true`` is ftcli's own switch (RunOptions), so the Trainer never sees it."""
    from ftcli.config.run_options import RunOptions

    cfg = compose_train("compile=true")
    assert "compile" not in cfg.trainer and RunOptions.from_cfg(cfg, num_classes=10, phases=1).compile
    trainer, _, _ = build_trainer({**cfg.trainer, "accelerator": "cpu", "max_epochs": 1}, tmp_path)
    assert trainer.max_epochs == 1


def test_recompile_is_a_noop_for_an_uncompiled_network() -> None:
    net = torch.nn.Linear(2, 2)
    perf.recompile(net)
    assert not perf.is_compiled(net)
