"""The training options from the command line: loss.*, early_stopping, data.augment.policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import TINY_TRAIN, assert_ok, output, run_cli

FAST = list(TINY_TRAIN)


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
        "early_stopping.enabled=true",
        "early_stopping.patience=1",
        "early_stopping.min_delta=1.0",  # nothing improves by 1.0: every check after the first misses
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


@pytest.mark.slow
def test_lrfind_writes_its_curve_and_a_train_command_that_runs(tmp_path: Path) -> None:
    """``ftcli lrfind`` end to end: the curve (PNG, JSON), the suggestion, and the printed train command,
    which then trains at that rate."""
    import shlex

    found = run_cli_inprocess(
        "lrfind", *FAST, "data.per_class=8", "strategy=lp_ft", "lrfind.steps=24", "lrfind.phase=2",
        f"hydra.run.dir={tmp_path / 'find'}", cwd=tmp_path,
    )  # fmt: skip
    assert_ok(found)
    text = output(found)
    record = json.loads((tmp_path / "find" / "lr_find.json").read_text())
    assert (tmp_path / "find" / "lr_find.png").stat().st_size > 0
    assert record["phase"] == 2 and "stage1" in record["trainable"]  # lp_ft's second phase: everything
    assert len(record["lr"]) == len(record["loss"]) >= 10
    assert record["lr"] == sorted(record["lr"]) and record["lr"][0] >= 1e-7
    suggestion = record["suggestion"]
    assert suggestion is not None and 1e-7 <= suggestion <= 1.0
    assert f"suggested lr: {suggestion:.3g}" in text
    lines = [line.strip() for line in found.stdout.splitlines()]
    command = next(line for line in lines if line.startswith("ftcli train"))
    args = shlex.split(command)[2:]
    assert f"optimizer.lr={suggestion:.3g}" in args and not any(a.startswith("lrfind.") for a in args)

    trained = run_cli_inprocess(
        "train", *args, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'train'}", cwd=tmp_path
    )
    assert_ok(trained)
    summary = json.loads((tmp_path / "train" / "summary.json").read_text())
    assert "optimizer.lr=" + f"{suggestion:.3g}" in summary["overrides"]
