"""How one Hydra job runs: user errors become a message and exit code 2, sweeps keep going.

Hydra's basic launcher runs every job of a sweep in this process. A job that fails with a user
error is reported at once and recorded here, the sweep goes on, and the dispatcher exits 2 at the
end; a single run exits 2 straight away. ``FTCLI_DEBUG=1`` re-raises, to show the traceback.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

from ftcli import display
from ftcli.errors import ConfigError, FtcliError
from ftcli.paths import config_dir_flags

# Filled by the jobs of a sweep that runs in this process, read by the dispatcher at the end.
JOB_DIRS: list[Path] = []
FAILURES: list[tuple[Path, str]] = []


def debug() -> bool:
    return os.environ.get("FTCLI_DEBUG", "") not in ("", "0")


def run_guarded(job: Callable[[Any], float], cfg: Any) -> float:
    """Run ``job(cfg)``; turn an FtcliError into a message (and exit 2 outside a sweep)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    if in_sweep:
        JOB_DIRS.append(job_dir)
    try:
        try:
            return job(cfg)
        except (MissingMandatoryValue, InterpolationToMissingValueError) as exc:
            raise _missing_value(exc) from exc
    except FtcliError as err:
        if debug():
            raise
        display.error(err)
        if not in_sweep:
            sys.exit(err.exit_code)
        FAILURES.append((job_dir, err.message))
        return math.nan


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


DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextmanager
def distributed_scope() -> Iterator[None]:
    """Leave no DDP state behind a job: the next job of a sweep (same process) starts clean.

    Lightning's launcher writes LOCAL_RANK and friends into this process's environment and keeps
    the process group; the next job would take both as "already launched" and wait for ranks that
    have exited.
    """
    saved = {name: os.environ.get(name) for name in DDP_ENV}
    try:
        yield
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _missing_value(exc: Exception) -> ConfigError:
    """A ``???`` value the run needs: name the key to set (the one the interpolation points at)."""
    key = str(getattr(exc, "full_key", "") or "")
    text = str(exc).splitlines()[0] if str(exc) else ""
    match = re.search(r"Missing mandatory value: ([\w.]+)", text)
    missing = match.group(1) if match else key
    where = f" (needed by {key})" if key and key != missing else ""
    return ConfigError(
        f"{missing} is required but not set{where}.", f"Set it on the command line: {missing}=..."
    )


NOISE = (
    "litlogger",
    "TPU available",
    "exists and is not empty",
    "module(s) in eval mode",
    "LeafSpec",
    "smaller than the logging interval",
    "was configured so 100%",
    # resume: the resumed run writes its own checkpoints/ on purpose, the earlier run's stay as they are
    "The dirpath has changed from",
)


class _DropNoise(logging.Filter):
    """Drops Lightning lines that say nothing about this run (adverts, absent hardware)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in NOISE)


def quiet_lightning() -> None:
    """Log each Lightning line once, through Hydra's handlers, without the known noise.

    ``import lightning`` puts its own console handler on the ``lightning`` logger while also
    propagating to the root logger that Hydra configured: every line would print twice.
    The frozen-BatchNorm modules that the freeze plan keeps in eval mode are intentional.
    """
    import lightning  # noqa: F401  (its import adds the handler removed here)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _DropNoise) for f in handler.filters):
            handler.addFilter(_DropNoise())
    for text in NOISE:
        warnings.filterwarnings("ignore", message=f".*{re.escape(text)}.*")
