"""A run never writes over an earlier run, and an unwritable output folder is named before anything starts.

The default run directory carries the time down to microseconds, so only an explicit
``hydra.run.dir=X`` (or ``hydra.sweep.dir=X``, or a preset that sets one) can point at an earlier
run. That is refused with the next free name to use instead, rather than silently writing to
``X-1``: scripts that read ``X/summary.json`` afterwards must never read another run's results.

One exception: an Optuna search run again into its own sweep folder, with the study it recorded there
(``study.yaml``: same storage and study name), continues that study; its new trials get new numbers,
so new folders.

The check is a Hydra callback (``hydra.callbacks`` in train.yaml) because Hydra itself writes
``.hydra/`` and the log into the directory before the task function starts.

Checking and then creating is a race, so the folder is also claimed (``ftcli.runs.run_claim``): of two
runs started at once on one folder exactly one gets it, and the other stops naming the run that holds
it. The check is made again once the claim is held. The claim is let go when the run (or the sweep)
ends, or when its process does.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ftcli.command_line.error_boundary import report
from ftcli.errors import FtcliError, OutputError
from ftcli.runs import run_claim
from ftcli.ui import console
from ftcli.ui.console import is_rank_zero

# What a run leaves that must survive: an empty or half-created folder (a run that failed on bad
# input before training) may be reused.
RESULTS = ("checkpoints", "summary.json", "metrics.csv")
SWEEP_RECORD = "multirun.yaml"
# what ftcli's Optuna sweeper leaves in its sweep folder (study_storage.STUDY_RECORD)
STUDY_RECORD = "study.yaml"


class RunDirGuard(Callback):
    """Refuses a run or sweep directory that holds an earlier run, or that cannot be written."""

    def __init__(self) -> None:
        self.claim: run_claim.RunClaim | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(str(config.hydra.run.dir))
        _exit_on_error(lambda: self._claim(run_dir, "hydra.run.dir", check_run_dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from ftcli.hydra_hooks.study_storage import continues_study

        sweep_dir = Path(str(config.hydra.sweep.dir))
        if continues_study(config, sweep_dir):  # the same search again: new trials, new folders
            return
        _exit_on_error(
            lambda: self._claim(sweep_dir, "hydra.sweep.dir", lambda path, _: check_sweep_dir(path))
        )

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._release()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._release()

    def _claim(self, path: Path, key: str, check: Callable[[Path, str], None]) -> None:
        """Check, claim, then check again: a run that started here in between holds results or the claim.
        A folder in use is said to be in use first, rather than to hold results."""
        busy = run_claim.held_elsewhere(path, key)
        if busy is not None:
            raise busy
        check(path, key)
        self.claim = claim_folder(path, key)
        try:
            check(path, key)
        except FtcliError:
            self._release()
            raise

    def _release(self) -> None:
        if self.claim is not None:
            self.claim.release()
            self.claim = None


def claim_folder(path: Path, key: str) -> run_claim.RunClaim:
    """Claim a run or sweep folder (``run_claim.claim``); a stale claim taken over is said on one line."""
    try:
        held = run_claim.claim(path, key)
    except OSError as exc:  # the probe file was written, so this is rare: a folder gone read-only
        raise unwritable(path, key, exc) from exc
    note = run_claim.stale_note(held, key)
    if note:
        console.show_line(f"note: {note}")
    return held


def check_run_dir(path: Path, key: str) -> None:
    """OutputError when ``path`` holds an earlier run's results or cannot be created and written."""
    found = earlier_results(path)
    if found:
        hint = (
            f"Choose a new folder, e.g. {key}={next_free(path)}, or leave {key} unset "
            "(every run then gets its own timestamped folder)."
        )
        if (path / "checkpoints" / "last.ckpt").is_file() and not (path / "summary.json").is_file():
            hint += f" That run did not finish: resume={path} continues it in a new folder."
        raise OutputError(
            f"{key}={path} already holds a run ({', '.join(found)}); ftcli never writes over an earlier run.",
            hint,
        )
    ensure_writable(path, key)


def check_sweep_dir(path: Path) -> None:
    """As :func:`check_run_dir`, for a sweep: its record or any job folder with results counts."""
    jobs = [p for p in path.iterdir() if p.is_dir() and earlier_results(p)] if path.is_dir() else []
    if (path / SWEEP_RECORD).exists() or jobs:
        found = SWEEP_RECORD if (path / SWEEP_RECORD).exists() else f"job {jobs[0].name}"
        hint = f"Choose a new folder, e.g. hydra.sweep.dir={next_free(path)}, or leave hydra.sweep.dir unset."
        if (path / STUDY_RECORD).is_file():
            hint += (
                f" To continue the Optuna study there, search again with the hydra.sweeper.storage and "
                f"study_name that {path / STUDY_RECORD} names."
            )
        raise OutputError(
            f"hydra.sweep.dir={path} already holds a sweep ({found}); "
            "ftcli never writes over an earlier run.",
            hint,
        )
    ensure_writable(path, "hydra.sweep.dir")


def earlier_results(path: Path) -> list[str]:
    """The results of an earlier run found in ``path`` (an empty checkpoints/ folder does not count)."""
    if not path.is_dir():
        return []
    found = []
    for name in RESULTS:
        entry = path / name
        if entry.is_file() or (entry.is_dir() and any(entry.iterdir())):
            found.append(f"{name}/" if entry.is_dir() else name)
    return found


def next_free(path: Path) -> Path:
    """``path-1``, ``path-2``, ...: the first that does not exist yet."""
    n = 1
    while Path(f"{path}-{n}").exists():
        n += 1
    return Path(f"{path}-{n}")


def ensure_writable(path: Path, key: str) -> None:
    """Create ``path`` and write a probe file in it (root ignores permission bits, so ask the disk)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise unwritable(path, key, exc) from exc


def unwritable(path: Path, key: str, exc: OSError) -> OutputError:
    reason = exc.strerror or type(exc).__name__
    return OutputError(
        f"Cannot write the run directory {path.absolute()}: {reason}.",
        f"Run ftcli from a folder you can write to, or set {key}=PATH to a writable folder.",
    )


def _exit_on_error(check: Callable[[], None]) -> None:
    """Run a check on rank 0; a failure exits 2 here, since Hydra turns callback errors into warnings."""
    if not is_rank_zero():  # DDP ranks > 0 re-run the command into rank 0's directory
        return
    try:
        check()
    except FtcliError as err:
        sys.exit(report(err))
