"""How one Hydra job runs, and what a sweep reports at its end.

Hydra's basic launcher runs every job of a sweep in this process. A job that fails with a user
error is reported at once through the error boundary and recorded here, and the sweep goes on; a
single run exits with the error's code straight away. When the sweep ends, :class:`SweepReport`
(a Hydra callback, ``hydra.callbacks`` in train.yaml) prints one table of the finished jobs, lists
the failed ones, and exits 2 if any failed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

from ftcli.errors import FtcliError
from ftcli.ui import console
from ftcli.ui.config_groups import config_dir_flags
from ftcli.ui.error_boundary import report
from ftcli.ui.hydra_errors import missing_value

# The jobs of the sweep running in this process, and the failed ones with their messages.
_job_dirs: list[Path] = []
_failures: list[tuple[Path, str]] = []


def run_guarded(job: Callable[[Any], float], cfg: Any) -> float:
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
    except FtcliError as err:
        code = report(err)
        if not in_sweep:
            sys.exit(code)
        _failures.append((job_dir, err.message))
        return math.nan


class SweepReport(Callback):
    """At the end of a sweep: one table of the finished jobs, then the failed ones (exit 2 if any)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from rich.markup import escape

        from ftcli.runs import summary
        from ftcli.ui.tables import sweep_table

        job_dirs, failures = list(_job_dirs), list(_failures)
        _job_dirs.clear()
        _failures.clear()
        summaries = [s for s in (summary.load(d) for d in job_dirs) if s is not None]
        if summaries:
            sweep_dir = Path(job_dirs[0]).parent
            console.show(sweep_table(summaries, f"sweep · {sweep_dir} · {len(summaries)} runs"))
        for job_dir, message in failures:
            line = f"{job_dir}: {message.splitlines()[0]}"
            console.error_console.print(f"[red]failed[/red] {escape(line)}", highlight=False, soft_wrap=True)
        if failures:
            console.error_console.print(f"{len(failures)} of {len(job_dirs)} jobs failed.")
            sys.exit(2)  # Hydra turns a callback's exceptions into warnings, but not SystemExit


def pin_sweep_job_command_line() -> None:
    """In a sweep, make ``sys.argv`` this job's own command line, and its run dir the job's dir.

    Lightning's DDP launcher starts the extra ranks by re-running ``sys.argv`` with
    ``hydra.run.dir=<HydraConfig run.dir>``. Left alone, each rank would re-launch the whole sweep
    (``-m`` and every comma-separated value) into an unrelated directory.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf, open_dict

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return
    sys.argv = [sys.argv[0], *config_dir_flags(sys.argv[1:]), *hydra_cfg.overrides.task]
    OmegaConf.set_readonly(hydra_cfg, False)
    with open_dict(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
