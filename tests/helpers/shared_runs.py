"""Tiny trained runs shared by the end-to-end tests: trained once per test session, read by many.

A test that only reads a checkpoint (eval, predict, export, report, chaining, the run folder's files)
takes it from one of these instead of training its own. :func:`shared_folder` builds a folder once per
session; under pytest-xdist, once for all the workers of the session (the first worker that needs it
builds it under a file lock, the others wait and read it), so that two workers never train the same run.
Tests must only read what is there, or write new files beside it, never change or remove files.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import SMALL_SPLITS, assert_ok

# ---------------------------------------------------------------------------- the digits sweep

# more than 5 classes: eval reports top-5 accuracy too
DIGITS_SWEEP_CLASSES = [0, 1, 2, 3, 4, 5, 6]
HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None
# A 2-job sweep: job 0 strategy=last_layers, job 1 strategy=full (digits 0-6, 5 images per class,
# 32 px, one epoch, random init).
DIGITS_SWEEP = [
    "train",
    "-m",
    "model=resnet18",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "print_config=false",
    "data=digits",
    "data.image_size=32",
    "data.per_class=5",
    *SMALL_SPLITS,
    f"data.classes=[{','.join(map(str, DIGITS_SWEEP_CLASSES))}]",
    "model.weights=null",
    "strategy=last_layers,full",
    *(["logger=tensorboard"] if HAS_TENSORBOARD else []),
]


@dataclass(frozen=True)
class TrainedSweep:
    """A finished sweep: ``sweep/0`` (last_layers) and ``sweep/1`` (full), run from ``sweep.parent``."""

    sweep: Path
    stdout: str

    @property
    def cwd(self) -> Path:
        return self.sweep.parent

    def checkpoint(self, job: int = 0) -> Path:
        return self.sweep / str(job) / "checkpoints" / "best.ckpt"


def train_digits_sweep(folder: Path) -> None:
    """``ftcli train -m ...`` (a subprocess, as a user runs it) with its sweep in ``folder/sweep``; what
    it printed goes to ``folder/stdout.txt``."""
    result = run_cli_inprocess(*DIGITS_SWEEP, f"hydra.sweep.dir={folder / 'sweep'}", cwd=folder)
    assert_ok(result)
    (folder / "stdout.txt").write_text(result.stdout)


def trained_digits_sweep(factory: pytest.TempPathFactory) -> TrainedSweep:
    folder = shared_folder(factory, "digits-sweep", train_digits_sweep)
    return TrainedSweep(folder / "sweep", (folder / "stdout.txt").read_text())


# ---------------------------------------------------------------------------- sharing


def shared_folder(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """``<session temp>/<name>``, filled by ``build(folder)`` once per test session.

    Under pytest-xdist every worker has a temp folder of its own inside the session's; the shared
    folder sits beside them, and a file lock lets one worker build it while the others wait. A build
    that failed leaves no ``.done`` mark: the next worker that asks tries again (and fails the same way).
    """
    base = factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                build(folder)
                done.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder
