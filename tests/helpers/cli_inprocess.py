"""Run ``ftcli`` inside the test process: the exit code and output of a subprocess, without its imports.

A subprocess pays ~7-9 s of imports (torch, Lightning, timm) before it can fail; here ``ftcli.cli.main``
runs in the test process, whose imports are paid once per pytest worker. Use it for any command line
that needs no process of its own: errors before training, and short training runs and sweeps on
Hydra's basic launcher. What does (the entry point, kill -9, DDP, submitit, torch.onnx's exporter,
FTCLI_DEBUG's traceback) stays with :func:`helpers.cli_runner.run_cli`.

Around each call :func:`run_cli_inprocess` sets what :func:`~helpers.cli_runner.run_cli` sets for the
subprocess (the offline environment, the cwd, no FTCLI_DEBUG or HYDRA_FULL_ERROR from the caller),
captures stdout and stderr apart, turns ``SystemExit`` (Hydra's and ftcli's) into the exit code and an
uncaught exception into a printed traceback and exit 1, as Python does, then puts back everything a run
changes in the process: os.environ (cli.py sets HYDRA_FULL_ERROR), sys.argv, the cwd, Hydra's global
state, the logging handlers Hydra configured, warning filters, RNG states, torch's thread count, and
ftcli's rich consoles (made afresh for the run, as a new process makes them on import).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import sys
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from helpers.cli_runner import QUIET_ENV, SCRUBBED_ENV

REPO = Path(__file__).resolve().parents[2]
# what a run with a wrong cwd or run dir would leave in the repository
REPO_LITTER = ("outputs", "multirun", ".hydra", "train.log", "inspect.log")


@dataclass
class CliResult:
    """What :func:`run_cli_inprocess` returns: the fields of ``subprocess.CompletedProcess`` that the
    helpers and assertions of :mod:`helpers.cli_runner` read (``output``, ``assert_ok``,
    ``assert_user_error`` take either)."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    exception: BaseException | None = field(default=None, repr=False)


def run_cli_inprocess(*args: str, cwd: Path, env: dict[str, str] | None = None) -> CliResult:
    """``ftcli <args>`` in this process, in ``cwd``, offline; everything it changed is put back."""
    from ftcli.cli import main

    out, err = io.StringIO(), io.StringIO()
    exception: BaseException | None = None
    litter = {name for name in REPO_LITTER if (REPO / name).exists()}
    with _isolated(cwd, env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        with _fresh_consoles():
            try:
                code = main(list(args))
            except SystemExit as exc:  # Hydra's argparse and --help, ftcli's sys.exit(report(err))
                code = _exit_code(exc.code)
            except Exception as exc:  # what Python does with an uncaught exception: traceback, exit 1
                traceback.print_exc()
                code, exception = 1, exc
        sys.stdout.flush()
        sys.stderr.flush()
    _rebind_log_streams({id(out): sys.stdout, id(err): sys.stderr})
    made = {name for name in REPO_LITTER if (REPO / name).exists()} - litter
    assert not made, f"ftcli {' '.join(args)} wrote {sorted(made)} into the repository {REPO}"
    return CliResult([*args], code, out.getvalue(), err.getvalue(), exception)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message"): printed, exit 1
    return 1


@contextlib.contextmanager
def _isolated(cwd: Path, env: dict[str, str] | None) -> Iterator[None]:
    """The process state a run may change, saved and put back afterwards."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    saved_environ = dict(os.environ)
    argv, saved_argv = sys.argv, list(sys.argv)
    saved_cwd = os.getcwd()
    saved_hydra_cfg = HydraConfig.instance().cfg
    saved_logging = _logging_state()
    saved_rng = _rng_state()
    torch = sys.modules.get("torch")
    saved_threads = torch.get_num_threads() if torch is not None else None
    saved_precision = torch.get_float32_matmul_precision() if torch is not None else None
    GlobalHydra.instance().clear()
    try:
        for name in SCRUBBED_ENV:
            os.environ.pop(name, None)
        os.environ.update({**QUIET_ENV, **(env or {})})
        os.chdir(cwd)
        with warnings.catch_warnings():
            # runpy's note that the command module was imported before (by another test): it runs a
            # fresh copy as __main__, as `python -m` does
            warnings.filterwarnings("ignore", r".*found in sys\.modules after import", RuntimeWarning)
            yield
    finally:
        os.chdir(saved_cwd)
        argv[:] = saved_argv
        sys.argv = argv
        for name in set(os.environ) - set(saved_environ):
            del os.environ[name]
        for name, value in saved_environ.items():
            if os.environ.get(name) != value:
                os.environ[name] = value
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = saved_hydra_cfg
        _restore_logging(saved_logging)
        _restore_rng(saved_rng)
        if torch is not None:
            if torch.get_num_threads() != saved_threads:
                torch.set_num_threads(saved_threads)
            torch.set_float32_matmul_precision(saved_precision)
        _forget_sweep_jobs()


@contextlib.contextmanager
def _fresh_consoles() -> Iterator[None]:
    """ftcli's consoles made afresh inside the run's environment and streams, as ``import ftcli.ui``
    makes them in a new process (rich reads COLUMNS and whether the stream is a terminal when a
    Console is made); the test process's own consoles are put back afterwards."""
    from rich.console import Console

    from ftcli.ui import console as ui

    saved = {name: value for name, value in vars(ui).items() if isinstance(value, Console)}
    try:
        for name, value in saved.items():
            setattr(ui, name, Console(stderr=value.stderr))
        yield
    finally:
        for name, value in saved.items():
            setattr(ui, name, value)


LoggerState = tuple[int, list[logging.Handler], bool, bool, list[logging.Filter]]


def _logging_state() -> dict[str, LoggerState]:
    loggers: dict[str, logging.Logger] = {"": logging.getLogger()}
    loggers |= {
        n: lg for n, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)
    }
    return {
        n: (lg.level, list(lg.handlers), lg.propagate, lg.disabled, list(lg.filters))
        for n, lg in loggers.items()
    }


def _restore_logging(saved: dict[str, LoggerState]) -> None:
    """Hydra's job logging (a stdout handler and a file in the run dir on the root logger) removed and
    closed; every logger that existed before the run as it was, those made during it enabled."""
    before = {h for state in saved.values() for h in state[1]}
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        # made during the run (a first import): as in a new process, enabled; Hydra's `disabled` job
        # logging (inspect) disables every logger that exists when it is configured
        if name not in saved and isinstance(logger, logging.Logger):
            logger.disabled = False
    for name, (level, handlers, propagate, disabled, filters) in saved.items():
        logger = logging.getLogger(name or None)
        for handler in logger.handlers:
            if handler not in before:
                handler.close()
        logger.handlers[:] = handlers
        if logger.level != level:  # setLevel clears every logger's cache: only where it changed
            logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled
        logger.filters[:] = filters


def _rebind_log_streams(streams: dict[int, object]) -> None:
    """A library imported for the first time during the run (Lightning, timm) put a StreamHandler on its
    logger bound to the captured stream of that moment: bind it to the stream it would have had
    outside the run."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in streams:
                handler.setStream(streams[id(handler.stream)])  # type: ignore[arg-type]


def _rng_state() -> dict[str, object]:
    state: dict[str, object] = {"random": random.getstate()}
    if "numpy" in sys.modules:
        state["numpy"] = sys.modules["numpy"].random.get_state()
    if "torch" in sys.modules:
        state["torch"] = sys.modules["torch"].get_rng_state()
    return state


def _restore_rng(state: dict[str, object]) -> None:
    random.setstate(state["random"])  # type: ignore[arg-type]
    if "numpy" in state:
        sys.modules["numpy"].random.set_state(state["numpy"])
    if "torch" in state:
        sys.modules["torch"].set_rng_state(state["torch"])


def _forget_sweep_jobs() -> None:
    """A sweep that stopped early (SystemExit before its end) leaves its jobs in ftcli's sweep records;
    a new process starts with none."""
    sweep_jobs = sys.modules.get("ftcli.hydra_hooks.sweep_jobs")
    for name in ("_job_dirs", "_failures"):
        records = getattr(sweep_jobs, name, None)
        if isinstance(records, list):
            records.clear()
