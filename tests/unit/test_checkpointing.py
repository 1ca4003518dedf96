"""Checkpoints are written atomically (a failed or killed save keeps the old file) and load weights only."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from ftcli.errors import OutputError
from ftcli.training.checkpoint_io import AtomicCheckpointIO, atomic_save
from ftcli.training.trainer import build_trainer

from helpers.cli_inprocess import run_cli_inprocess


def test_save_replaces_the_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"epoch": 0, "w": torch.arange(4.0)}, path)
    AtomicCheckpointIO().save_checkpoint({"epoch": 1, "w": torch.arange(4.0) + 1}, path)

    loaded = AtomicCheckpointIO().load_checkpoint(path)
    assert loaded["epoch"] == 1 and torch.equal(loaded["w"], torch.arange(4.0) + 1)
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask, "mkstemp's 0600 must not stick"


def test_a_save_that_fails_midway_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "last.ckpt"
    atomic_save({"epoch": 0, "w": torch.arange(10_000.0)}, path)
    before = path.read_bytes()
    real_save = torch.save

    def save_half_then_fail(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        buffer = io.BytesIO()
        real_save(obj, buffer)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])  # partial bytes reach the disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OutputError, match=r"Cannot write .*last.ckpt: the disk is full \(ENOSPC\)"):
        AtomicCheckpointIO().save_checkpoint({"epoch": 1, "w": torch.zeros(10_000)}, path)

    assert path.read_bytes() == before, "the previous checkpoint was touched"
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    assert loaded["epoch"] == 0 and torch.equal(loaded["w"], torch.arange(10_000.0))
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"], "a temporary file was left behind"


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_loading_is_weights_only_even_when_asked_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": _Exploit(tmp_path / "pwned")}, path)

    with pytest.raises(Exception, match="Weights only load failed"):
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)
    assert not (tmp_path / "pwned").exists()


def test_the_trainer_saves_and_loads_through_the_atomic_plugin(compose_train, tmp_path: Path) -> None:
    cfg = compose_train()
    trainer, _, _ = build_trainer(cfg.trainer, tmp_path)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


@pytest.mark.slow
def test_kill_9_during_training_leaves_loadable_checkpoints(tmp_path: Path) -> None:
    """SIGKILL while a checkpoint is being written (Lightning saves when val/acc improves): what is on
    disk still loads, and a re-run does not touch it."""
    args = [
        "train",
        "trainer=cpu",
        "trainer.max_epochs=1000",
        "trainer.enable_progress_bar=false",
        "print_config=false",
        "data=digits",
        "data.per_class=5",
        "data.image_size=32",
        "model.name=mobilenet_v3_small",
        "model.weights=null",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    env = {**os.environ, "FTCLI_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "ftcli.cli", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = tmp_path / "run" / "checkpoints"
    try:
        # After the first save completes, kill the moment the next save has a temporary file open.
        assert wait_for(lambda: (checkpoints / "last.ckpt").exists(), process, seconds=240)
        wait_for(lambda: any(p.name.endswith(".tmp") for p in checkpoints.iterdir()), process, seconds=20)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("*.ckpt")) == ["best.ckpt", "last.ckpt"]
    for path in checkpoints.glob("*.ckpt"):
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        assert loaded["ftcli"]["model"]["name"] == "mobilenet_v3_small"
        assert all(torch.isfinite(t).all() for t in loaded["state_dict"].values() if t.is_floating_point())
    leftovers = [p.name for p in checkpoints.iterdir() if not p.name.endswith(".ckpt")]
    assert all(name.startswith(".") and name.endswith(".tmp") for name in leftovers), leftovers
    assert not (tmp_path / "run" / "summary.json").exists()
    # a re-run into the same folder is refused: the killed run's checkpoints stay as they are
    again = run_cli_inprocess(*args[:-1], f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert again.returncode == 2 and "already holds a run" in again.stderr


def wait_for(condition: Any, process: subprocess.Popen, seconds: float) -> bool:
    """Poll ``condition`` every few milliseconds while ``process`` runs; whether it became true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(0.002)
    return False
