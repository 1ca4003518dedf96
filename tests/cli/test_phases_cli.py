"""Strategies over time from the command line: sweeps, resume after kill -9 or SIGTERM, inspect ckpt=.

kill -9, SIGTERM and resume need processes of their own (marked slow); the sweep over phased strategies is
trained once per session, in the test process, and read by two tests; so are the errors.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest
import torch

from ftcli.training.lightning_module import FineTuneModule

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import TINY_TRAIN, assert_ok, kill_9_after_checkpoint, output
from helpers.shared_runs import shared_folder

FAST = list(TINY_TRAIN)


PHASED_SWEEP = [
    "train",
    "-m",
    *FAST,
    "data.per_class=5",
    "trainer.max_epochs=4",  # lp_ft probes 3 epochs by default, then fine-tunes
    "strategy=gradual,lp_ft,full",
]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def run_phased_sweep(folder: Path) -> None:
    result = run_cli_inprocess(*PHASED_SWEEP, f"hydra.sweep.dir={folder / 'sweep'}", cwd=folder)
    assert_ok(result)
    (folder / "stdout.txt").write_text(result.stdout)


@pytest.fixture(scope="session")
def phased_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a finished sweep over gradual, lp_ft and full (4 epochs), and its ``stdout.txt``;
    run once per session (for every pytest-xdist worker: tests/helpers/shared_runs.py)."""
    return shared_folder(tmp_path_factory, "phased-sweep", run_phased_sweep)


def sweep_job(folder: Path, strategy: str) -> Path:
    jobs = (job for job in sorted((folder / "sweep").iterdir()) if (job / "summary.json").is_file())
    return next(job for job in jobs if json.loads((job / "summary.json").read_text())["strategy"] == strategy)


@pytest.mark.slow
def test_sweep_over_phased_and_plain_strategies_runs_to_completion(phased_sweep: Path) -> None:
    stdout = (phased_sweep / "stdout.txt").read_text()
    summaries = {}
    for job in sorted((phased_sweep / "sweep").iterdir()):
        if job.is_dir():
            summary = json.loads((job / "summary.json").read_text())
            summaries[summary["strategy"]] = summary
            meta = load(job / "checkpoints" / "last.ckpt")["ftcli"]
            assert meta["phase"]["epoch"] == 3
            assert (
                meta["phase"]["index"] == meta["phase"]["count"] - 1
                if summary["strategy"] == "lp_ft"
                else True
            )
    assert set(summaries) == {"gradual", "lp_ft", "full"}
    assert all(s["epochs"] == 4 for s in summaries.values())
    assert "phase 2/6 (+ stage4) from epoch 1" in stdout  # gradual announced its phase change


# 20 images per class: an epoch lasts long enough to stop the run between two checkpoints
INTERRUPTED = [*FAST, "strategy=gradual", "data.per_class=20", "data.num_workers=0", "trainer.max_epochs=5"]


@pytest.fixture(scope="module")
def uninterrupted_last(tmp_path_factory: pytest.TempPathFactory, single_thread: None) -> Path:
    """The last.ckpt of the run never stopped, trained in this process on one thread as the stopped one."""
    whole_dir = tmp_path_factory.mktemp("whole")
    assert_ok(run_cli_inprocess("train", *INTERRUPTED, cwd=whole_dir))
    return next((whole_dir / "outputs").glob("*/*/checkpoints/last.ckpt"))


@pytest.mark.slow
def test_a_killed_run_resumed_with_resume_last_ends_where_the_uninterrupted_run_ends(
    tmp_path: Path, uninterrupted_last: Path
) -> None:
    """kill -9 between two checkpoints (a process of its own); the resumed run trains in this process."""
    stopped_dir = tmp_path / "stopped"
    stopped_dir.mkdir()
    reached = kill_9_after_checkpoint(INTERRUPTED, stopped_dir, min_epoch=1)
    assert reached < 4
    assert_resumed_run_ends_as_the_uninterrupted_one(stopped_dir, uninterrupted_last)


@pytest.mark.slow
def test_sigterm_mid_epoch_says_how_to_continue_and_resume_last_ends_where_the_uninterrupted_run_ends(
    tmp_path: Path, uninterrupted_last: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM as SLURM and Kubernetes send it, delivered to this process in the middle of epoch 2 (the
    handler is Lightning's, installed while the Trainer runs): the run stops after the step it is in,
    says how to continue and exits 143."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are installed in the main thread only")
    stopped_dir = tmp_path / "stopped"
    stopped_dir.mkdir()
    sent = []

    def sigterm_in_epoch_2(module: FineTuneModule, batch: object, batch_idx: int) -> None:
        if module.current_epoch == 2 and batch_idx == 1 and not sent:
            handler = signal.getsignal(signal.SIGTERM)
            assert handler not in (signal.SIG_DFL, signal.SIG_IGN, None), "no SIGTERM handler installed"
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # Lightning adds to a handler it finds
    try:
        with monkeypatch.context() as patch:
            patch.setattr(FineTuneModule, "on_train_batch_start", sigterm_in_epoch_2, raising=False)
            stopped = run_cli_inprocess("train", *INTERRUPTED, cwd=stopped_dir)
    finally:
        signal.signal(signal.SIGTERM, previous)
    said = output(stopped)
    assert sent and stopped.returncode == 143, said[-3000:]
    assert "Stopped by SIGTERM in epoch 2" in said and "Traceback" not in said, said[-3000:]
    assert "last.ckpt holds the run after epoch 1" in said and "resume=last" in said, said[-3000:]
    assert_resumed_run_ends_as_the_uninterrupted_one(stopped_dir, uninterrupted_last)


def assert_resumed_run_ends_as_the_uninterrupted_one(stopped_dir: Path, uninterrupted_last: Path) -> None:
    """``resume=last`` in ``stopped_dir`` (in this process) ends with the uninterrupted run's weights."""
    resumed = run_cli_inprocess("train", *INTERRUPTED, "resume=last", cwd=stopped_dir)
    assert_ok(resumed)
    assert "resuming from" in output(resumed)
    runs = sorted((stopped_dir / "outputs").glob("*/*/"))
    assert len(runs) == 2, "the resumed run writes its own directory; the stopped one is only read"
    resumed_ckpt = runs[-1] / "checkpoints" / "last.ckpt"
    whole_state, resumed_state = load(uninterrupted_last)["state_dict"], load(resumed_ckpt)["state_dict"]
    assert load(resumed_ckpt)["epoch"] == load(uninterrupted_last)["epoch"] == 4
    for key, value in whole_state.items():
        assert torch.allclose(value.float(), resumed_state[key].float(), atol=1e-6), key


@pytest.mark.slow
def test_inspect_a_checkpoint_shows_the_phase_it_reached(phased_sweep: Path, tmp_path: Path) -> None:
    # the sweep's lp_ft job: probe epochs 0-2, then fine-tunes everything; its last.ckpt is epoch 3's
    last = sweep_job(phased_sweep, "lp_ft") / "checkpoints" / "last.ckpt"
    result = run_cli_inprocess("inspect", f"ckpt={last}", cwd=tmp_path)
    assert_ok(result)
    assert "epoch 3" in result.stdout
    assert "2/2 (fine-tune all)" in result.stdout
    assert "<- here" in result.stdout and "linear probe" in result.stdout

    missing = run_cli_inprocess("inspect", f"ckpt={tmp_path / 'nope.ckpt'}", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in output(missing)


def test_resume_errors_are_clear(tmp_path: Path) -> None:
    gone = f"resume={tmp_path / 'gone.ckpt'}"
    nowhere = run_cli_inprocess("train", *FAST, "data.per_class=3", gone, cwd=tmp_path)
    assert nowhere.returncode == 2 and "no checkpoint at" in nowhere.stderr
    assert "Traceback" not in output(nowhere)
    nothing = run_cli_inprocess("train", *FAST, "data.per_class=3", "resume=last", cwd=tmp_path)
    assert nothing.returncode == 2 and "resume=last" in nothing.stderr
    assert "Traceback" not in output(nothing)


def test_user_strategy_with_phases_from_config_dir(tmp_path: Path) -> None:
    strategies = tmp_path / "mine" / "strategy"
    strategies.mkdir(parents=True)
    (strategies / "probe_then_top.yaml").write_text(
        "# probe two epochs, then the top two blocks at a tenth of the rate\n"
        "name: probe_then_top\n"
        "bn: frozen\n"
        "phases:\n"
        "  - {epochs: 2, train: head, label: probe}\n"
        "  - {train: 'last:2', lr_mult: 0.1, label: top two}\n"
    )
    result = run_cli_inprocess(
        "inspect", "--config-dir", str(tmp_path / "mine"), *FAST, "strategy=probe_then_top", cwd=tmp_path
    )
    assert_ok(result)
    assert "1: probe" in result.stdout and "2: top two" in result.stdout
    assert "epochs 2-end" in result.stdout
