"""The demo's presets run as a user would type them (shortened): real ImageNet Lite0 on real MNIST."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import assert_ok

SHORT = ["trainer.max_epochs=1", "print_config=false", "trainer.enable_progress_bar=false"]


@pytest.mark.slow
def test_the_demo_presets_chain_task_a_into_task_b(tmp_path: Path) -> None:
    source = run_cli_inprocess(
        "train", "experiment=mnist_source", "data.per_class=5", *SHORT, f"hydra.run.dir={tmp_path / 'a'}",
        cwd=tmp_path,
    )  # fmt: skip
    assert_ok(source)
    task_a = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert task_a["data"] == "mnist" and task_a["model"] == "timm/tf_efficientnet_lite0"
    assert task_a["weights"].startswith("ImageNet")

    target = run_cli_inprocess(
        "train", "experiment=mnist_target", f"source_checkpoint={task_a['best_checkpoint']}", *SHORT,
        f"hydra.run.dir={tmp_path / 'b'}", cwd=tmp_path,
    )  # fmt: skip
    assert_ok(target)
    task_b = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert task_b["weights"] == task_a["best_checkpoint"]  # chained: task A's model is task B's start
    assert task_b["strategy"] == "last_layers" and task_b["test_acc"] is not None
