"""Run ``ftcli`` the way a user does: a subprocess, offline, outputs under a given folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

# One intra-op thread: on a small shared CPU, torch's spinning threads slow a tiny run tenfold
# whenever another process holds a core; behaviour, not speed, is under test here.
QUIET_ENV = {"FTCLI_OFFLINE": "1", "COLUMNS": "120", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# FTCLI_DEBUG from the caller's shell would turn every error into a traceback; a test may set it.
SCRUBBED_ENV = ("FTCLI_DEBUG", "HYDRA_FULL_ERROR")
# digits' validation and test splits at 90 images each (defaults 20% and 30% of 1,797): a tiny run
# evaluates them every epoch
SMALL_SPLITS = ("data.val_fraction=0.05", "data.test_fraction=0.05")
# the smallest real training a command-line test runs: ResNet-18 from random init on 16 px digits, CPU,
# validated and tested on one batch (64 images) of their splits
TINY_TRAIN = (
    "model=resnet18",
    "trainer=cpu",
    "trainer.enable_progress_bar=false",
    "print_config=false",
    "data=digits",
    "data.image_size=16",
    "model.weights=null",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
)


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``ftcli <args>`` in a subprocess, offline, with its outputs under ``cwd``."""
    inherited = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    full_env = {**inherited, **QUIET_ENV, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ftcli.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


class CliOutput(Protocol):
    """What a run of ``ftcli`` gives back: a subprocess's ``CompletedProcess``, or the in-process
    runner's ``CliResult`` (helpers/cli_inprocess.py)."""

    returncode: int
    stdout: str
    stderr: str


def output(result: CliOutput) -> str:
    """Everything the command printed, stdout then stderr."""
    return result.stdout + result.stderr


def assert_ok(result: CliOutput) -> None:
    assert result.returncode == 0, output(result)[-3000:]


def assert_user_error(result: CliOutput, *fragments: str) -> None:
    """Exit 2, every fragment in the output, no traceback."""
    text = output(result)
    assert result.returncode == 2, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text[-3000:]}"


def kill_9_after_checkpoint(args: list[str], cwd: Path, min_epoch: int) -> int:
    """``ftcli train <args>`` in a process of its own, killed with SIGKILL as soon as a complete
    ``last.ckpt`` of epoch ``min_epoch`` or later exists under ``cwd``; returns that epoch."""
    env = {**{k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}, **QUIET_ENV}
    process = subprocess.Popen(
        [sys.executable, "-m", "ftcli.cli", "train", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        reached = _wait_for_last_checkpoint(cwd, min_epoch, process)
        assert process.poll() is None, "the run finished before it could be stopped"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return reached


def _wait_for_last_checkpoint(run_root: Path, min_epoch: int, process: subprocess.Popen) -> int:
    import torch

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        for path in (run_root / "outputs").glob("*/*/checkpoints/last.ckpt"):
            try:
                epoch = int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
            except Exception:  # being written: try again
                continue
            if epoch >= min_epoch:
                return epoch
        time.sleep(0.1)
    raise AssertionError("no last.ckpt appeared in time")


HEAVY = ("torch", "torchvision", "lightning", "matplotlib")


def run_without_heavy_imports(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, then fail (exit 1, naming them) if it imported torch & co."""
    check = f"\nheavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\nassert not heavy, heavy\n"
    return subprocess.run(
        [sys.executable, "-c", "import sys\n" + code + check],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
