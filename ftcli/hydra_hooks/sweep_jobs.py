"""How one Hydra job runs, and what a sweep reports at its end.

Hydra's basic launcher runs every job of a sweep in this process. A job that fails with a user
error is reported at once through the error boundary and recorded here, and the sweep goes on; a
single run exits with the error's code straight away. When the sweep ends, :class:`SweepReport`
(a Hydra callback, ``hydra.callbacks`` in train.yaml) prints one table of the finished jobs, lists
the failed ones, and exits 2 if any failed.

Other launchers (submitit: SLURM jobs, or local processes) run each job in a process of its own, so
a failed job also leaves its message in ``<job dir>/failed.txt`` and the report reads the job
folders from the sweep directory. A failed job returns :class:`FailedJob`, no number: ftcli's Optuna
sweeper counts that trial as failed and the search goes on. A sweep job that finds its own
``last.ckpt`` was started again (SLURM requeued it) and continues from there (:func:`requeued_checkpoint`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

from ftcli.command_line.config_groups import config_dir_flags
from ftcli.command_line.error_boundary import report
from ftcli.command_line.hydra_errors import missing_value
from ftcli.errors import FtcliError, TerminatedError, disk_error
from ftcli.ui import console

# The jobs of the sweep running in this process, and the failed ones with their messages.
_job_dirs: list[Path] = []
_failures: list[tuple[Path, str]] = []
# a failed sweep job's message, in its folder (jobs in other processes: submitit)
FAILED = "failed.txt"


class FailedJob:
    """What a sweep job that failed with a user error returns: not a number, so that the Optuna
    sweeper marks the trial failed (its ``float()`` raises) and samples the next one."""

    def __init__(self, job_dir: Path, message: str) -> None:
        self.job_dir = str(job_dir)
        self.message = message

    def __float__(self) -> float:
        raise ValueError(str(self))

    def __str__(self) -> str:
        return f"job {self.job_dir} failed: {self.message.splitlines()[0] if self.message else ''}"

    __repr__ = __str__


def requeued_checkpoint(run_dir: Path) -> str | None:
    """In a sweep job: its own ``checkpoints/last.ckpt`` when the job was started again.

    RunDirGuard refuses a sweep folder that holds earlier runs, so a job folder that already holds a
    last.ckpt when the job starts is this very job, requeued by SLURM (through submitit) after a
    preemption or a timeout. It continues from there, in its own folder, instead of starting over.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    last = run_dir / "checkpoints" / "last.ckpt"
    # outside a Hydra app (a test, the bench calling the pipeline) there is no sweep to be requeued in
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN or not last.is_file():
        return None
    return str(last)


def run_guarded(job: Callable[[Any], float], cfg: Any) -> float | FailedJob:
    """Run ``job(cfg)``; an FtcliError is reported, then exits (a single run) or is recorded (a sweep)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    if in_sweep:
        _job_dirs.append(job_dir)
    try:
        try:
            return job(cfg)
        except (MissingMandatoryValue, InterpolationToMissingValueError) as exc:
            raise missing_value(exc) from exc
        except OSError as exc:  # a full or read-only disk is reported like any user error
            full = disk_error(exc)
            if full is None:
                raise
            raise full from exc
    except FtcliError as err:
        code = report(err)
        if not in_sweep or isinstance(err, TerminatedError):  # SIGTERM ends the sweep's process too
            sys.exit(code)
        _failures.append((job_dir, err.message))
        if console.is_rank_zero():
            with contextlib.suppress(OSError):  # an unwritable job folder is the error itself
                (job_dir / FAILED).write_text(err.message + "\n")
        return FailedJob(job_dir, err.message)


class SweepReport(Callback):
    """At the end of a sweep: one table of the finished jobs, then the failed ones.

    Exit 2 if any failed; an Optuna search (failed trials are part of a search) only if all failed.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from rich.markup import escape

        from ftcli.runs import summary
        from ftcli.ui.tables import sweep_table

        sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        ran_here = {Path(d) for d in _job_dirs}
        job_dirs = _sweep_job_dirs(sweep_dir, list(_job_dirs))
        failures = dict(_failures)
        _job_dirs.clear()
        _failures.clear()
        summaries = [s for s in (summary.load(d) for d in job_dirs) if s is not None]
        for job_dir in job_dirs:
            if job_dir in failures or job_dir in ran_here:
                continue
            if (job_dir / FAILED).is_file():
                failures[job_dir] = (job_dir / FAILED).read_text().strip()
            elif config.hydra.job.name == "train" and summary.load(job_dir) is None:
                # a job in another process that neither finished nor reported an error (a crash, a kill)
                failures[job_dir] = "did not finish: no summary.json (its log is in its folder)"
        searching = "optuna" in str(config.hydra.sweeper.get("_target_", "")).lower()
        if summaries and not searching:  # a search printed its own ranked table (search_results.py)
            console.show(sweep_table(summaries, f"sweep · {sweep_dir} · {len(summaries)} runs"))
        for job_dir, message in failures.items():
            line = f"{job_dir}: {message.splitlines()[0] if message else ''}"
            console.error_console.print(f"[red]failed[/red] {escape(line)}", highlight=False, soft_wrap=True)
        if failures:
            console.error_console.print(f"{len(failures)} of {len(job_dirs)} jobs failed.")
            if not searching or not summaries:
                sys.exit(2)  # Hydra turns a callback's exceptions into warnings, but not SystemExit


def _sweep_job_dirs(sweep_dir: Path, in_process: list[Path]) -> list[Path]:
    """The sweep's job folders: those run here, and those other processes wrote (submitit)."""
    found = {Path(d) for d in in_process}
    if sweep_dir.is_dir():
        # .submitit/ holds submitit's own files; a job folder holds Hydra's .hydra/
        found |= {d for d in sweep_dir.iterdir() if not d.name.startswith(".") and (d / ".hydra").is_dir()}
    return sorted(found, key=lambda d: (d.parent, int(d.name) if d.name.isdigit() else 0, d.name))


def pin_sweep_job_command_line() -> None:
    """In a sweep, make ``sys.argv`` this job's own command line, and its run dir the job's dir.

    Lightning's DDP launcher starts the extra ranks by re-running ``sys.argv`` with
    ``hydra.run.dir=<HydraConfig run.dir>``. Left alone, each rank would re-launch the whole sweep
    (``-m`` and every comma-separated value) into an unrelated directory.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf, open_dict

    if not HydraConfig.initialized():  # the pipeline called directly: no sweep, nothing to pin
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return
    sys.argv = [sys.argv[0], *config_dir_flags(sys.argv[1:]), *hydra_cfg.overrides.task]
    OmegaConf.set_readonly(hydra_cfg, False)
    with open_dict(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
