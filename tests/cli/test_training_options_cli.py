"""The training options from the command line: loss.*, trainer.early_stopping, data.augment.policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers.cli_runner import assert_ok, output, run_cli

FAST = [
    "model=resnet18",
    "trainer=cpu",
    "trainer.enable_progress_bar=false",
    "print_config=false",
    "data=digits",
    "data.image_size=16",
    "model.weights=null",
]


@pytest.mark.slow
def test_every_option_on_reaches_the_run_its_summary_and_its_checkpoint(tmp_path: Path) -> None:
    result = run_cli(
        "train",
        *FAST,
        "data.per_class=5",
        "data.test_fraction=0.2",  # trainer.test reloads best.ckpt: the stop record must survive it
        "strategy=lp_ft",
        "strategy.probe_epochs=2",
        "trainer.max_epochs=8",
        "loss.label_smoothing=0.1",
        "loss.class_weights=auto",
        "data.augment.policy=randaugment",
        "trainer.early_stopping.enabled=true",
        "trainer.early_stopping.patience=1",
        "trainer.early_stopping.min_delta=1.0",  # nothing improves by 1.0: every check after the first misses
        cwd=tmp_path,
    )
    assert_ok(result)
    text = output(result)
    assert "never inside head-only phase 1" in text
    assert "early stopping after epoch 3" in text  # probe epochs 0-1 held, epoch 2 the best, 3 a miss
    [summary_file] = tmp_path.glob("outputs/*/*/summary.json")
    summary = json.loads(summary_file.read_text())
    assert summary["epochs"] == 4
    assert summary["early_stopping"]["stopped"] is True and summary["early_stopping"]["epoch"] == 3
    meta = torch.load(summary["best_checkpoint"], map_location="cpu", weights_only=True)["ftcli"]
    assert meta["loss"] == {"label_smoothing": 0.1, "class_weights": "auto"}
    assert meta["data"]["augment"]["policy"] == "randaugment"
