"""Child processes of the bench: every contender runs in its own, so that each one's wall time and peak
resident memory are its own, and no run warms a cache or an allocator for the next."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

# the repository root: where ``python -m bench`` finds this package
ROOT = Path(__file__).resolve().parent.parent


def run_child(command: list[str], env: dict[str, str], log: Path) -> tuple[int, float, float, float]:
    """Run a command; (exit code, launch time.time(), wall seconds, peak RSS in MiB of that process)."""
    with open(log, "w") as out:
        launched = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: tell Popen
    return proc.returncode, launched, wall, usage.ru_maxrss / 1024  # Linux: KiB


def child_env(args: argparse.Namespace, cache: Path) -> dict[str, str]:
    """The same threads, offline mode and feature cache folder for every contender."""
    threads = str(args.threads)
    return {
        **os.environ,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "FTCLI_OFFLINE": "1",
        "FTCLI_FEATURE_CACHE": str(cache),
        "COLUMNS": "120",
    }


def bench_module_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the repository root first on PYTHONPATH: a child runs in its run folder, from where
    ``python -m bench`` would not find this package."""
    paths = [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


def checked_log(code: int, what: str, log: Path) -> str:
    """The child's log; a child that failed ends the bench with its exit code and the log's end."""
    text = log.read_text()
    if code != 0:
        raise SystemExit(f"{what} failed (exit {code}):\n{text[-3000:]}")
    return text


def ftcli_command() -> list[str]:
    """The installed ``ftcli`` entry point beside this interpreter, as a user runs it, else the module."""
    script = Path(sys.executable).parent / "ftcli"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ftcli.cli"]


def trainer_preset(args: argparse.Namespace) -> str:
    """``--trainer``, else ftcli's gpu preset where CUDA is, else cpu."""
    if args.trainer:
        return args.trainer
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"
