"""One-off timings beside the training rows: how long ``ftcli --help`` and ``ftcli advise`` take,
the waits a user meets before any training starts."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.processes import checked_log, child_env, ftcli_command, run_child

# the advise yardstick: 1,000 MNIST digits at 64 px with the ImageNet Lite0
ADVISE = [
    "model=efficientnet_lite0",
    "data=mnist",
    "data.image_size=64",
    "data.per_class=100",
    "trainer=cpu",
    "print_config=false",
]


def help_seconds(runs: int = 5) -> float:
    """Median wall time of ``ftcli --help`` (the dispatcher imports no torch for it)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([*ftcli_command(), "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_advise(args: argparse.Namespace, work: Path, cache: Path, label: str) -> dict[str, Any]:
    """``ftcli advise`` on 1,000 MNIST digits at 64 px with the ImageNet Lite0 (the issue's yardstick):
    wall time of the command, and the advisor's own time from its advice.json."""
    run_dir = work / label
    command = [*ftcli_command(), "advise", *ADVISE, f"hydra.run.dir={run_dir}"]
    run_dir.mkdir(parents=True)
    code, _, wall, rss = run_child(command, child_env(args, cache), run_dir / "bench.log")
    checked_log(code, f"ftcli {label}", run_dir / "bench.log")
    record = json.loads((run_dir / "advice.json").read_text())
    return {
        "label": f"ftcli {label.replace('-', ' ')}",
        "wall_seconds": wall,
        "advice_seconds": record["seconds"],
        "images": record["measurements"]["samples_probed"],
        "features_loaded": record["measurements"]["features_loaded"],
        "peak_rss_mib": rss,
    }
