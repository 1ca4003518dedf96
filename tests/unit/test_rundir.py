"""A run never writes over an earlier one; an unwritable output folder is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftcli.errors import OutputError
from ftcli.hydra_hooks.run_dir_guard import check_run_dir, check_sweep_dir, next_free


def earlier_run(path: Path) -> Path:
    (path / "checkpoints").mkdir(parents=True)
    (path / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    return path


def test_a_folder_with_checkpoints_is_refused_naming_a_free_one(tmp_path: Path) -> None:
    run = earlier_run(tmp_path / "run")
    (tmp_path / "run-1").mkdir()

    with pytest.raises(OutputError) as err:
        check_run_dir(run, "hydra.run.dir")
    assert "already holds a run (checkpoints/)" in str(err.value)
    assert f"hydra.run.dir={tmp_path / 'run-2'}" in str(err.value)
    assert next_free(run) == tmp_path / "run-2"


@pytest.mark.parametrize("leftover", [None, ".hydra", "checkpoints"])
def test_a_new_empty_or_failed_run_folder_is_fine(tmp_path: Path, leftover: str | None) -> None:
    """A run that failed on bad input leaves .hydra/ (or an empty checkpoints/): re-running there is fine."""
    run = tmp_path / "run"
    if leftover:
        (run / leftover).mkdir(parents=True)
    check_run_dir(run, "hydra.run.dir")
    assert run.is_dir() and list(run.iterdir()) == ([run / leftover] if leftover else [])


def test_a_folder_below_a_file_is_not_writable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="Cannot write the run directory"):
        check_run_dir(tmp_path / "file" / "run", "hydra.run.dir")


def test_a_sweep_folder_with_an_earlier_job_is_refused(tmp_path: Path) -> None:
    earlier_run(tmp_path / "sweep" / "3")
    with pytest.raises(OutputError, match=r"already holds a sweep \(job 3\)"):
        check_sweep_dir(tmp_path / "sweep")
    check_sweep_dir(tmp_path / "new_sweep")
