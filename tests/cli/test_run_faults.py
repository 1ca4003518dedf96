"""Two runs on one folder, and a full or read-only disk under every write path: a clear exit 2 each.

The first run trains in this process; while it holds its run folder, a second real ``ftcli train``
process is started on the same folder and must stop with exit 2 naming the holder (the race of two
processes started at once is ``test_two_trains_started_at_once_on_one_folder``, marked slow).

Then each row injects the disk's answer (ENOSPC, EROFS) into the one call that writes (``torch.save`` of a
checkpoint or a feature file, the memory map of an image store, the text of summary.json or
metrics.json) and runs the real command in this process. The run it resumes from, and the
checkpoint the failed run wrote before the fault, must still load and resume.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pathlib
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ftcli.model.weights_file import read_file
from ftcli.runs.run_claim import CLAIM_FILE

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import QUIET_ENV, TINY_TRAIN, assert_ok, assert_user_error, output, run_cli

# end-to-end: real training runs with faults injected (make test-fast leaves them out)
pytestmark = pytest.mark.slow

# head-only on digits: the run writes an image store (image_cache_mb=0: on disk) and a feature cache
ARGS = [*TINY_TRAIN, "data.per_class=2", "data.image_cache_mb=0", "strategy=feature_extraction"]
REASONS = {errno.ENOSPC: "the disk is full (ENOSPC)", errno.EROFS: "the file system is read-only (EROFS)"}


def refuse(code: int) -> OSError:
    return OSError(code, "injected")


@dataclass
class Fault:
    """Where the disk refuses: ``install`` patches the writing call; it fails on the ``nth`` match."""

    install: Callable[[pytest.MonkeyPatch, Callable[[str], bool]], None]
    matches: Callable[[str], bool]
    nth: int = 1


def failing_torch_save(monkeypatch: pytest.MonkeyPatch, fails: Callable[[str], bool]) -> None:
    real = torch.save

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        name = str(f) if isinstance(f, (str, os.PathLike)) else str(f.name)
        if not fails(name):
            return real(obj, f, *args, **kwargs)
        if hasattr(f, "write"):  # part of the file reached the disk before it filled up
            f.write(b"PK\x03\x04 partial")
        else:
            Path(name).write_bytes(b"PK\x03\x04 partial")
        raise refuse(code_of(fails))

    monkeypatch.setattr(torch, "save", save)


def failing_memmap_flush(monkeypatch: pytest.MonkeyPatch, fails: Callable[[str], bool]) -> None:
    real = np.memmap.flush

    def flush(self: np.memmap) -> None:
        if fails(str(self.filename)):
            raise refuse(code_of(fails))
        real(self)

    monkeypatch.setattr(np.memmap, "flush", flush)


def failing_write_text(monkeypatch: pytest.MonkeyPatch, fails: Callable[[str], bool]) -> None:
    real = pathlib.Path.write_text

    def write_text(self: Path, data: str, *args: Any, **kwargs: Any) -> int:
        if fails(str(self)):
            real(self, data[: len(data) // 2], *args, **kwargs)
            raise refuse(code_of(fails))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)


def code_of(fails: Callable[[str], bool]) -> int:
    return fails.code  # type: ignore[attr-defined]


def nth_match(fragment: str, nth: int, code: int) -> Callable[[str], bool]:
    """True for the ``nth`` name containing ``fragment`` (and every later one)."""
    seen = 0

    def fails(name: str) -> bool:
        nonlocal seen
        if fragment not in Path(name).name:
            return False
        seen += 1
        return seen >= nth

    fails.code = code  # type: ignore[attr-defined]
    return fails


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.tmp")]


@dataclass
class BaseRun:
    """The run each failing row resumes from (one epoch, finished), and the rival refused its folder."""

    run_dir: Path
    rival: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory, single_thread: None) -> BaseRun:
    """Train one epoch in this process; once its folder is claimed, a real ``ftcli train`` on the same
    folder runs to its end (it stops at startup, before it imports torch), then this run trains."""
    from ftcli.pipeline import fitting

    root = tmp_path_factory.mktemp("faults")
    run_dir = root / "base"
    args = [
        *ARGS,
        "trainer.max_epochs=1",
        f"hydra.run.dir={run_dir}",
        f"data.feature_cache_dir={root / 'cache'}",
    ]
    rival: list[subprocess.CompletedProcess[str]] = []
    real_plan_run = fitting.plan_run

    def plan_run_after_the_rival(*a: Any, **k: Any) -> Any:
        rival.append(run_cli("train", *args, cwd=root))
        return real_plan_run(*a, **k)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fitting, "plan_run", plan_run_after_the_rival)
        result = run_cli_inprocess("train", *args, cwd=root)
    assert_ok(result)
    return BaseRun(run_dir, rival[0])


def test_a_second_train_on_a_folder_in_use_exits_2_naming_the_run_that_holds_it(base_run: BaseRun) -> None:
    assert_user_error(
        base_run.rival,
        f"hydra.run.dir={base_run.run_dir} is in use by another run",
        f"(pid {os.getpid()} on {socket.gethostname()}, started ",
        "ftcli train ",
        "Wait for that run to end, or choose another folder",
    )
    summary = json.loads((base_run.run_dir / "summary.json").read_text())
    assert summary["epochs"] == 1  # the first run trained, once
    record = json.loads((base_run.run_dir / CLAIM_FILE).read_text())
    assert record["pid"] == os.getpid() and record["finished"] is not None  # let go at the end


# (what fails, how, the file it names, the hint's fragment)
ROWS = {
    "image store": (failing_memmap_flush, "train-", errno.ENOSPC, ".npy", "data.feature_cache_dir"),
    "feature cache": (failing_torch_save, "-train-", errno.EROFS, ".pt", "data.cache_features=false"),
}


@pytest.mark.parametrize("row", list(ROWS))
def test_a_refused_write_before_or_after_training_is_a_clear_error(
    base_run: BaseRun, tmp_path: Path, row: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    install, fragment, code, named, hint = ROWS[row]
    base = base_run.run_dir
    before = digest(base / "checkpoints" / "last.ckpt")
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    with monkeypatch.context() as patch:
        install(patch, nth_match(fragment, 1, code))
        result = run_cli_inprocess(
            "train",
            *ARGS,
            "trainer.max_epochs=2",
            f"resume={base}",
            f"hydra.run.dir={run_dir}",
            f"data.feature_cache_dir={cache}",
            cwd=tmp_path,
        )
    assert_user_error(result, "Cannot write", named, REASONS[code], hint)
    assert "what it held before is unchanged" in output(result)
    assert temporaries(tmp_path) == []
    assert digest(base / "checkpoints" / "last.ckpt") == before
    read_file(base / "checkpoints" / "last.ckpt")


def test_a_refused_checkpoint_keeps_the_last_one_and_resume_continues(
    base_run: BaseRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, resumed = tmp_path / "run", tmp_path / "resumed"
    # the base run's cache: this run's writes are checkpoints and the summary
    args = [*ARGS, "trainer.max_epochs=3", f"data.feature_cache_dir={base_run.run_dir.parent / 'cache'}"]
    with monkeypatch.context() as patch:  # epoch 1's last.ckpt is written, epoch 2's is refused
        failing_torch_save(patch, nth_match(".last.ckpt.", 2, errno.ENOSPC))
        result = run_cli_inprocess(
            "train", *args, f"resume={base_run.run_dir}", f"hydra.run.dir={run_dir}", cwd=tmp_path
        )
    last = run_dir / "checkpoints" / "last.ckpt"
    assert_user_error(result, f"Cannot write {last}", REASONS[errno.ENOSPC], f"resume={run_dir}")
    assert temporaries(tmp_path) == []
    assert int(read_file(last)["epoch"]) == 1

    # resumed from the checkpoint that survived, the run ends; then its summary.json is refused
    with monkeypatch.context() as patch:
        failing_write_text(patch, nth_match(".summary.json.", 1, errno.EROFS))
        ended = run_cli_inprocess(
            "train", *args, f"resume={run_dir}", f"hydra.run.dir={resumed}", cwd=tmp_path
        )
    assert_user_error(
        ended,
        "resuming from",
        f"Cannot write {resumed / 'summary.json'}",
        REASONS[errno.EROFS],
        "the run's checkpoints are complete",
    )
    assert not (resumed / "summary.json").exists() and temporaries(tmp_path) == []
    assert int(read_file(resumed / "checkpoints" / "last.ckpt")["epoch"]) == 2


def test_a_refused_eval_output_leaves_no_half_results(
    base_run: BaseRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = errno.EROFS
    ckpt = base_run.run_dir / "checkpoints" / "last.ckpt"
    with monkeypatch.context() as patch:
        failing_write_text(patch, nth_match(".metrics.json.", 1, code))
        result = run_cli_inprocess(
            "eval", f"ckpt={ckpt}", "split=val", f"out={tmp_path / 'out'}", cwd=tmp_path
        )
    assert_user_error(result, "Cannot write", REASONS[code], "out=")
    assert list((tmp_path / "out").iterdir()) == []  # out= named it, so the folder stays, empty
    read_file(ckpt)


def test_two_trains_started_at_once_on_one_folder(tmp_path: Path) -> None:
    """Two real processes, the same hydra.run.dir, started together: exactly one trains."""
    run_dir = tmp_path / "run"
    args = [*ARGS, "trainer.max_epochs=1", f"hydra.run.dir={run_dir}", f"data.feature_cache_dir={tmp_path}"]
    env = {**os.environ, **QUIET_ENV}
    command = [sys.executable, "-m", "ftcli.cli", "train", *args]
    processes = [
        subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(p, *p.communicate(timeout=600)) for p in processes]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 2], [err[-2000:] for _, _, err in results]
    _, _, refused = next(r for r in results if r[0].returncode == 2)
    winner = next(p for p, _, _ in results if p.returncode == 0)
    # refused at the claim (in use) or, had the winner been quicker, at its results: the folder is named
    assert f"hydra.run.dir={run_dir} is in use by another run (pid {winner.pid}" in refused or (
        f"hydra.run.dir={run_dir} already holds a run" in refused
    ), refused
    assert "Traceback" not in refused
    assert json.loads((run_dir / "summary.json").read_text())["epochs"] == 1
