"""GPU behaviour (skipped cleanly without CUDA; run on a borrowed GPU machine).

Mixed precision must not change what a strategy freezes, and ``precision=auto`` must pick bf16 on
GPUs that support it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ftcli.device import resolve_precision
from ftcli.finetune.freeze_plan import apply_plan, param_groups
from ftcli.finetune.phases import make_plan
from ftcli.model.backbones import build_torchvision, to_blocknet
from ftcli.model.surgery import apply_recipe

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_precision_picks_mixed_precision_on_gpu() -> None:
    expected = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    assert resolve_precision("auto", "auto") == expected
    assert resolve_precision("auto", "gpu") == expected
    assert resolve_precision("auto", "cpu") == "32-true"


def test_frozen_blocks_stay_bit_identical_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    model = build_torchvision("resnet18", None)
    net, block_map = to_blocknet(model, "resnet18")
    apply_recipe(net, block_map, {"name": "linear", "n": 0, "hidden": []}, num_classes=5)
    plan = make_plan({"name": "last_layers", "n": 1, "bn": "frozen"}, net)
    apply_plan(net, plan)
    net = net.cuda().train()
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    optimizer = torch.optim.AdamW(param_groups(net, plan, 1e-2))
    x = torch.randn(8, 3, 64, 64, device="cuda")
    y = torch.randint(0, 5, (8,), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    optimizer.step()
    after = net.state_dict()
    for key, value in before.items():
        block = key.split(".")[1]
        if block in plan.trainable_blocks:
            continue
        assert torch.equal(value, after[key]), f"frozen tensor {key} changed"
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("blocks.head."))


def test_cli_trains_on_gpu_with_auto_precision(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = [
        "train",
        "model.weights=null",
        "data.per_class=20",
        "trainer.max_epochs=2",
        "print_config=false",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "FTCLI_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "ftcli.cli", *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_acc"] is not None
    log = (run_dir / "train.log").read_text()
    assert "GPU available: True" in log


def test_gpu_runs_use_channels_last_and_cudnn_autotuning() -> None:
    from ftcli.training import performance as perf

    torch.backends.cudnn.benchmark = False
    net, _ = _resnet18_blocknet()
    net = net.cuda()
    perf.tune(net, {"accelerator": "auto"})
    assert torch.backends.cudnn.benchmark
    conv = net.blocks["stem"][0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)


def test_compiled_network_recompiles_when_the_trainable_set_changes() -> None:
    from ftcli.training import performance as perf

    net, _ = _resnet18_blocknet()
    net = net.cuda().train()
    apply_plan(net, make_plan({"name": "feature_extraction"}, net))
    perf.compile_model(net)
    assert perf.is_compiled(net)
    x = torch.randn(4, 3, 64, 64, device="cuda")
    net(x).sum().backward()
    assert net.blocks["stem"][0].weight.grad is None
    apply_plan(net, make_plan({"name": "full"}, net))  # a phase change: everything trains now
    perf.recompile(net)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_feature_cache_computes_on_the_gpu(tmp_path: Path) -> None:
    from ftcli.features import cache as feature_cache

    net, _ = _resnet18_blocknet()
    dataset = torch.utils.data.TensorDataset(torch.randn(10, 3, 64, 64), torch.arange(10) % 5)
    cut = feature_cache.cut_of(net)
    on_gpu, labels = feature_cache.compute(net, cut, dataset, 4, 0, torch.device("cuda"))
    on_cpu, _ = feature_cache.compute(net, cut, dataset, 4, 0, torch.device("cpu"))
    assert on_gpu.device.type == "cpu" and next(net.parameters()).device.type == "cpu"
    assert torch.allclose(on_gpu, on_cpu, atol=1e-2)
    assert torch.equal(labels, torch.arange(10) % 5)


def _resnet18_blocknet():
    torch.manual_seed(0)
    model = build_torchvision("resnet18", None)
    net, block_map = to_blocknet(model, "resnet18")
    apply_recipe(net, block_map, {"name": "linear", "n": 0, "hidden": []}, num_classes=5)
    plan = make_plan({"name": "feature_extraction"}, net)
    apply_plan(net, plan)
    return net, plan
