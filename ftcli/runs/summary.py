"""A run's outcome as one JSON record (summary.json in its directory), read back for sweep tables."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftcli.atomic_files import atomic_write_text
from ftcli.errors import refused_writes

SUMMARY_FILE = "summary.json"


@dataclass
class RunSummary:
    """What a finished run reports; every field is plain data."""

    run_dir: str
    model: str
    strategy: str
    recipe: str
    data: str
    weights: str
    best_val_acc: float | None
    test_acc: float | None
    trainable_params: int
    total_params: int
    epochs: int
    wall_seconds: float
    fit_seconds: float
    images_per_second: float
    best_checkpoint: str | None = None
    last_checkpoint: str | None = None
    overrides: list[str] = field(default_factory=list)
    # Speed detail (``make bench``): images/s without the warm-up epoch (and its median step's),
    # training seconds per epoch, and the wall-clock time (time.time()) at which the first step ended.
    steady_images_per_second: float | None = None
    median_step_images_per_second: float | None = None
    epoch_seconds: list[float] = field(default_factory=list)
    first_step_done: float | None = None
    # unreadable image files left out under data.on_bad_image=skip
    skipped_images: list[str] = field(default_factory=list)
    # the leak check (data.on_leak): val/test samples that copy a sample of an earlier split, repeats within
    # a split, examples, what was dropped; null when the source gives nothing to compare
    leaks: dict[str, Any] | None = None
    # strategy=auto: the advisor's decision and its evidence (advice.json in the run has all of it)
    advice: dict[str, Any] | None = None
    # strategy=auto, auto.mode=race: the race (candidates, validation accuracy per rung, the winner, its cost)
    race: dict[str, Any] | None = None
    # early_stopping: null when off, else whether and after which (0-based) epoch it stopped, and why
    early_stopping: dict[str, Any] | None = None
    # a search trial its pruner stopped: the 0-based epoch (the Optuna step), the metric and its value there
    pruned: dict[str, Any] | None = None

    def write(self) -> Path:
        """Write summary.json atomically (a crash never leaves half a file); a full or read-only disk is
        an OutputError that says the checkpoints, written before, are complete."""
        path = Path(self.run_dir) / SUMMARY_FILE
        done = self.last_checkpoint or self.best_checkpoint
        kept = f"the run's checkpoints are complete ({done}): eval and predict read them" if done else ""
        with refused_writes(path, kept):
            atomic_write_text(path, json.dumps(asdict(self), indent=2))
        return path


def load(run_dir: Path) -> RunSummary | None:
    """The summary of a run directory, or None if the run did not finish."""
    path = Path(run_dir) / SUMMARY_FILE
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    known = set(RunSummary.__dataclass_fields__)
    return RunSummary(**{k: v for k, v in data.items() if k in known})
