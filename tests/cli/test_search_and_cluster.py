"""Beyond one machine and beyond grids: an Optuna search (``hparams_search=``: ftcli's own sweeper,
with pruning and a study that continues) and submitit jobs.

The searches and sweeps run tiny trials (digits, 32 px, random init, one epoch) offline on the CPU.
``hydra/launcher=submitit_local`` runs each job as a process of its own, the way SLURM would run
it; a killed job continues from its last.ckpt, with ``resume=last`` or when it is started again
(what a SLURM requeue does). Bad input stops with exit 2 and no traceback (those command lines run
in the test process: helpers/cli_inprocess.py).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import SMALL_SPLITS, assert_ok, assert_user_error, output, run_cli

FAST = [
    "model=resnet18",
    "model.weights=null",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "print_config=false",
    "data=digits",
    "data.image_size=32",
    "data.per_class=5",
    *SMALL_SPLITS,
]


def sweep_args(tmp_path: Path, *overrides: str) -> list[str]:
    return ["train", "-m", *FAST, f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides]


def job_dirs(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


# ---------------------------------------------------------------------------- Optuna search


@pytest.mark.slow
def test_search_runs_its_trials_keeps_the_best_params_and_report_ranks_them(tmp_path: Path) -> None:
    # optimizer.lr=-1 makes a trial fail before it trains: it is reported and the search goes on
    args = sweep_args(
        tmp_path,
        "hparams_search=finetune",
        "hydra.sweeper.n_trials=4",
        "optimizer.lr=choice(0.003, -1.0)",
        "strategy=choice(last_layers, lp_ft)",
        "recipe=linear",
    )
    result = run_cli_inprocess(*args, cwd=tmp_path)
    assert_ok(result)  # a search exits 2 only when every trial failed

    sweep = tmp_path / "sweep"
    jobs = job_dirs(sweep)
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]  # one job per trial, named by its number
    finished = [p for p in jobs if (p / "summary.json").is_file()]
    failed = [p for p in jobs if (p / "failed.txt").is_file()]
    assert finished and failed and len(finished) + len(failed) == 4
    for job in finished:
        assert (job / "checkpoints" / "best.ckpt").is_file()
        overrides = OmegaConf.load(job / ".hydra" / "overrides.yaml")
        strategy = next(o for o in overrides if o.startswith("strategy="))
        # keys that only one strategy has are sampled only in its trials
        conditional = "strategy.n=" if strategy == "strategy=last_layers" else "strategy.probe_epochs="
        assert any(o.startswith(conditional) for o in overrides), overrides
    for job in failed:
        assert "optimizer.lr" in (job / "failed.txt").read_text()
        assert f"failed {job}" in output(result)

    best = OmegaConf.load(sweep / "optimization_results.yaml")
    best_run = max(finished, key=lambda p: json.loads((p / "summary.json").read_text())["best_val_acc"])
    best_val = json.loads((best_run / "summary.json").read_text())["best_val_acc"]
    assert best.best_value == pytest.approx(best_val)
    assert best.best_params["optimizer.lr"] == 0.003
    assert best.best_run_dir == str(best_run) and best.trials == {
        "complete": len(finished),
        "fail": len(failed),
    }
    # the best trial's command is a plain run: no -m, no hparams_search
    assert (
        best.best_command.startswith("ftcli train model=resnet18 ")
        and "hparams_search" not in best.best_command
    )
    assert f"its command: {best.best_command}" in " ".join(result.stdout.split())
    # importances need 2 completed trials, intermediate values a trial that reported an epoch (a
    # 1-epoch lp_ft trial is all head-only probe: it reports nothing)
    assert "optimization_history.png" in best.plots
    assert set(best.plots) <= {"optimization_history.png", "param_importances.png", "intermediate_values.png"}
    for plot in best.plots:
        assert (sweep / plot).stat().st_size > 1000, plot
    assert "rank" in result.stdout and "failed: optimizer.lr=-1.0" in " ".join(result.stdout.split())

    report = run_cli_inprocess("report", str(sweep), "sort=val_acc", cwd=tmp_path)
    assert_ok(report)
    with open(sweep / "report.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(finished)


@pytest.mark.slow
def test_a_losing_trial_is_pruned_and_rerunning_the_command_continues_the_study(tmp_path: Path) -> None:
    # pretrained features and a linear head (the feature cache: fast epochs) learn digits within an
    # epoch at lr=0.01; at lr=1e-9 nothing moves. The median pruner with one finished trial to compare
    # with, judging from epoch 0, prunes the second trial at epoch 0 of 3.
    search = [
        "train",
        "-m",
        "strategy=feature_extraction",
        "trainer=cpu",
        "trainer.max_epochs=3",
        "trainer.enable_progress_bar=false",
        "print_config=false",
        "data=digits",
        "data.image_size=32",
        "data.per_class=10",
        "recipe=linear",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        "hparams_search=finetune",
        "~hydra.sweeper.params",
        "hydra.sweeper.pruner_options={n_startup_trials: 1, n_warmup_steps: 0}",
    ]
    first = run_cli_inprocess(*search, "hydra.sweeper.n_trials=1", "optimizer.lr=0.01", cwd=tmp_path)
    assert_ok(first)
    # the same sweep folder and study, one trial more: the study goes on (trial 1, folder 1)
    second = run_cli_inprocess(*search, "hydra.sweeper.n_trials=2", "optimizer.lr=1e-9", cwd=tmp_path)
    assert_ok(second)
    assert "1 of 2 trials done" in second.stdout

    sweep = tmp_path / "sweep"
    assert [p.name for p in job_dirs(sweep)] == ["0", "1"]
    kept, pruned = (json.loads((sweep / n / "summary.json").read_text()) for n in ("0", "1"))
    assert kept["pruned"] is None and kept["epochs"] == 3
    assert pruned["pruned"]["epoch"] == 0 and pruned["epochs"] == 1  # stopped after its first epoch
    assert pruned["pruned"]["value"] < kept["best_val_acc"]
    assert (sweep / "1" / "checkpoints" / "last.ckpt").is_file()  # a normal run folder, resumable
    assert "pruned at epoch 0" in second.stdout

    import optuna

    study = optuna.load_study(study_name="finetune", storage=f"sqlite:///{sweep / 'search.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED"]
    assert study.trials[1].intermediate_values == {0: pytest.approx(pruned["pruned"]["value"])}
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert results.best_trial == 0 and results.trials == {"complete": 1, "pruned": 1}

    report = run_cli_inprocess("report", str(sweep), cwd=tmp_path)
    assert_ok(report)
    assert "1 (pruned at epoch 0)" in report.stdout
    with open(sweep / "report.csv") as f:
        assert [row["pruned_at_epoch"] for row in csv.DictReader(f)] == ["", "0"]


def test_search_input_errors_exit_2_before_any_trial(tmp_path: Path) -> None:
    unknown = run_cli_inprocess(*sweep_args(tmp_path, "hparams_search=nope"), cwd=tmp_path)
    assert_user_error(unknown, "Unknown hparams_search 'nope'", "finetune")

    zero = sweep_args(tmp_path, "hparams_search=finetune", "hydra.sweeper.n_trials=0")
    no_trials = run_cli_inprocess(*zero, cwd=tmp_path)
    assert_user_error(no_trials, "hydra.sweeper.n_trials=0", "at least one trial")
    pruner = run_cli_inprocess(
        *sweep_args(tmp_path, "hparams_search=finetune", "hydra.sweeper.pruner=asha"), cwd=tmp_path
    )
    assert_user_error(
        pruner, "Unknown hydra.sweeper.pruner 'asha'", "hyperband, median, none, successive_halving"
    )
    assert not (tmp_path / "sweep").exists(), "checked before the sweep folder is made"


# ---------------------------------------------------------------------------- submitit


@pytest.mark.slow
def test_submitit_local_runs_each_job_as_a_process_with_the_usual_outputs(tmp_path: Path) -> None:
    result = run_cli(
        *sweep_args(tmp_path, "hydra/launcher=submitit_local", "strategy=full,last_layers"), cwd=tmp_path
    )
    assert_ok(result)

    sweep = tmp_path / "sweep"
    jobs = job_dirs(sweep)
    assert [p.name for p in jobs] == ["0", "1"]
    strategies = set()
    for job in jobs:
        assert sorted(p.name for p in (job / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
        strategies.add(json.loads((job / "summary.json").read_text())["strategy"])
        assert (job / "metrics.csv").is_file() and (job / "config.yaml").is_file()
    assert strategies == {"full", "last_layers"}
    # one submitit job (its own process, its own logs) per sweep job
    logs = sorted(sweep.glob(".submitit/*/*_log.out"))
    assert len(logs) == 2 and len({p.parent.name for p in logs}) == 2
    table = result.stdout[result.stdout.index("sweep ·") :]
    assert "2 runs" in table


def _kill_tree(pid: int) -> None:
    """SIGKILL a process we started (the submitit job) and its children, children first."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else []:
        _kill_tree(int(child))
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_killed_submitit_job_continues_from_its_last_checkpoint(tmp_path: Path) -> None:
    overrides = ["hydra/launcher=submitit_local", "strategy=last_layers", "trainer.max_epochs=3"]
    quiet = {"FTCLI_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "120"}
    env = {**os.environ, **quiet}
    env = {k: v for k, v in env.items() if k not in ("FTCLI_DEBUG", "HYDRA_FULL_ERROR")}
    args = [*sweep_args(tmp_path, *overrides), "data.per_class=10"]
    sweep_run = subprocess.Popen(
        [sys.executable, "-m", "ftcli.cli", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    job = tmp_path / "sweep" / "0"
    last = job / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 180
    while not last.is_file() and time.monotonic() < deadline and sweep_run.poll() is None:
        time.sleep(0.05)
    assert last.is_file(), "the job wrote no last.ckpt"
    submitit_dir = next(p for p in (tmp_path / "sweep" / ".submitit").iterdir() if p.name.isdigit())
    _kill_tree(int(submitit_dir.name))  # the submitit job's id is its process id
    sweep_run.kill()  # the sweep's own process would wait out submitit's polling to notice
    sweep_run.wait(timeout=60)
    assert not (job / "summary.json").is_file(), "the job finished before it was killed"
    killed_at = torch.load(last, map_location="cpu", weights_only=True)["epoch"]
    assert killed_at < 2

    # 1. resume=last, as after any interrupted run: a new run directory continues from its last.ckpt
    resumed = run_cli_inprocess(
        "train", *FAST, *overrides[1:], "data.per_class=10", "resume=last",
        f"hydra.run.dir={tmp_path / 'resumed' / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert_ok(resumed)
    assert "resuming from" in output(resumed) and "sweep/0/checkpoints/last.ckpt" in output(resumed)
    epochs = _epochs(tmp_path / "resumed" / "run" / "metrics.csv")
    assert min(epochs) >= killed_at > -1 and max(epochs) == 2, f"it did not continue: {epochs}"

    # 2. the job started again, as SLURM requeues it: it continues in its own folder
    requeue_env = {
        **env,
        "SUBMITIT_EXECUTOR": "local",
        "SUBMITIT_LOCAL_JOB_ID": submitit_dir.name,
        "SUBMITIT_LOCAL_NTASKS": "1",
        "SUBMITIT_LOCAL_JOB_NUM_NODES": "1",
        "SUBMITIT_LOCAL_NODEID": "0",
        "SUBMITIT_LOCAL_GLOBALID": "0",
        "SUBMITIT_LOCAL_LOCALID": "0",
    }
    requeued = subprocess.run(
        [sys.executable, "-u", "-m", "submitit.core._submit", str(tmp_path / "sweep" / ".submitit" / "%j")],
        cwd=tmp_path,
        env=requeue_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert requeued.returncode == 0, (requeued.stdout + requeued.stderr)[-3000:]
    assert f"resuming from {last}" in requeued.stdout
    assert (job / "summary.json").is_file()
    assert max(_epochs(job / "metrics.csv")) == 2


def _epochs(metrics: Path) -> list[int]:
    with open(metrics) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f) if row.get("val/acc")]


def test_launcher_input_errors_exit_2_before_any_job(tmp_path: Path) -> None:
    unknown = run_cli_inprocess(*sweep_args(tmp_path, "hydra/launcher=nope"), cwd=tmp_path)
    assert_user_error(unknown, "Unknown hydra/launcher 'nope'", "submitit_local", "slurm")

    no_sbatch = run_cli_inprocess(
        *sweep_args(tmp_path, "hydra/launcher=slurm"),
        cwd=tmp_path,
        env={"PATH": str(Path(sys.executable).parent)},
    )
    assert_user_error(no_sbatch, "no sbatch on PATH", "hydra/launcher=submitit_local")
