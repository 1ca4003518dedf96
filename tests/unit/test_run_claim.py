"""A run folder is claimed by one process at a time; a dead holder's claim is reported and taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ftcli.errors import OutputError
from ftcli.hydra_hooks.run_dir_guard import RunDirGuard, check_run_dir
from ftcli.runs import run_claim
from ftcli.runs.run_claim import CLAIM_FILE, claim, held_elsewhere, stale_note

REPO = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys; from pathlib import Path; from ftcli.runs.run_claim import claim\n"
    "claim(Path(sys.argv[1]), 'hydra.run.dir'); print('held', flush=True); sys.stdin.read()"
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process (it imports only the claim module) holding ``tmp_path / 'run'``."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "run"), "lr=0.1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def test_a_folder_held_by_a_live_run_is_refused_naming_it_then_taken_over_once_it_is_killed(
    tmp_path: Path, holder: subprocess.Popen[str], capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    with pytest.raises(OutputError) as err:
        claim(run, "hydra.run.dir")
    message = str(err.value)
    assert (
        f"hydra.run.dir={run} is in use by another run (pid {holder.pid} on {socket.gethostname()}" in message
    )
    assert "lr=0.1" in message and f"hydra.run.dir={run}-1" in message

    probed = held_elsewhere(run, "hydra.run.dir")  # found without taking or writing anything
    assert probed is not None and str(probed) == message
    assert held_elsewhere(tmp_path, "hydra.run.dir") is None

    holder.send_signal(signal.SIGKILL)  # no chance to let go: the operating system drops its lock
    holder.wait(timeout=10)
    assert held_elsewhere(run, "hydra.run.dir") is None
    guard = RunDirGuard()
    guard.on_run_start(OmegaConf.create({"hydra": {"run": {"dir": str(run)}}}))
    try:
        assert guard.claim is not None and guard.claim.stale is not None
        assert guard.claim.stale.pid == holder.pid
        said = capsys.readouterr().out
        assert (
            f"note: hydra.run.dir={run} was claimed by a run that ended without finishing (pid {holder.pid}"
            in said
        )
        assert "it is not running any more, so this run takes the folder over" in said
        assert json.loads((run / CLAIM_FILE).read_text())["pid"] == os.getpid()
    finally:
        guard.on_run_end(OmegaConf.create({}))
    assert json.loads((run / CLAIM_FILE).read_text())["finished"] is not None


def test_a_released_claim_is_finished_and_the_next_run_takes_it_without_a_note(tmp_path: Path) -> None:
    first = claim(tmp_path, "hydra.run.dir")
    first.release()
    first.release()  # idempotent
    assert json.loads((tmp_path / CLAIM_FILE).read_text())["finished"] is not None
    second = claim(tmp_path, "hydra.run.dir")
    assert second.stale is None and stale_note(second, "hydra.run.dir") is None
    # the same process claiming again (a second run in one process: tests, notebooks) replaces its claim
    third = claim(tmp_path, "hydra.run.dir")
    assert not second.held and third.held
    third.release()


def test_without_file_locks_the_record_decides(
    tmp_path: Path, holder: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a mount without locks: an unfinished record of a live process on this host holds the folder."""
    monkeypatch.setattr(run_claim, "_lock", lambda fd: None)
    with pytest.raises(OutputError, match=f"pid {holder.pid}"):
        claim(tmp_path / "run", "hydra.run.dir")
    holder.kill()
    holder.wait(timeout=10)
    held = claim(tmp_path / "run", "hydra.run.dir")
    assert held.stale is not None and held.stale.pid == holder.pid
    held.release()


def test_an_unfinished_earlier_run_is_refused_with_the_resume_that_continues_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    with pytest.raises(OutputError, match=f"did not finish: resume={run} continues it"):
        check_run_dir(run, "hydra.run.dir")


def test_a_running_run_with_results_is_reported_in_use_not_as_an_earlier_run(
    tmp_path: Path, holder: subprocess.Popen[str], capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"weights")  # written by the run still training
    with pytest.raises(SystemExit) as exited:
        RunDirGuard().on_run_start(OmegaConf.create({"hydra": {"run": {"dir": str(run)}}}))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"is in use by another run (pid {holder.pid}" in err and "did not finish" not in err
