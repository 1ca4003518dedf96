"""atomic_files: the final name holds the old version or the new one, never half of one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ftcli.atomic_files import TEMP_SUFFIX, atomic_path, atomic_write, atomic_write_text


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_write_replaces_the_file_with_the_usual_permissions_and_leaves_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text("old")
    assert atomic_write_text(path, "new") == path
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask(), "mkstemp's 0600 must not stick"


def test_the_old_file_survives_a_failure_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    path.write_bytes(b"the good one")

    def half_then_fail(temp: Path) -> None:
        temp.write_bytes(b"half of the n")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"the good one"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"], "a temporary file was left behind"


def test_an_interrupt_mid_write_removes_the_temporary_too(tmp_path: Path) -> None:
    path = tmp_path / "store.npy"
    with pytest.raises(KeyboardInterrupt), atomic_path(path) as temp:
        temp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_is_hidden_beside_the_target_and_named_after_it(tmp_path: Path) -> None:
    path = tmp_path / "best.ckpt"
    with atomic_path(path, durable=True) as temp:
        assert temp.parent == tmp_path and temp.is_file() and temp.stat().st_size == 0
        assert temp.name.startswith(f".best.ckpt.{os.getpid()}.") and temp.name.endswith(TEMP_SUFFIX)
        assert not path.exists()  # nothing under the final name until the block ends
        temp.write_bytes(b"done")
    assert path.read_bytes() == b"done"


def test_two_writers_get_their_own_temporaries(tmp_path: Path) -> None:
    path = tmp_path / "advice.json"
    with atomic_path(path) as first, atomic_path(path) as second:
        assert first != second
        first.write_text("first")
        second.write_text("second")
    assert path.read_text() == "first"  # the last to finish wins, whole
    assert [p.name for p in tmp_path.iterdir()] == ["advice.json"]


def test_a_folder_is_written_whole_then_moved(tmp_path: Path) -> None:
    target = tmp_path / "shapes" / "abc123"
    target.parent.mkdir()

    def fill(folder: Path) -> None:
        assert folder.is_dir() and folder.parent == target.parent
        (folder / "circle").mkdir()
        (folder / "circle" / "0000.png").write_bytes(b"png")

    atomic_write(target, fill, directory=True)
    assert (target / "circle" / "0000.png").read_bytes() == b"png"
    assert target.stat().st_mode & 0o777 == 0o777 & ~_umask(), "mkdtemp's 0700 must not stick"
    assert [p.name for p in target.parent.iterdir()] == ["abc123"]


def test_a_folder_that_fails_mid_write_is_removed(tmp_path: Path) -> None:
    target = tmp_path / "abc123"

    def fail(folder: Path) -> None:
        (folder / "circle").mkdir()
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fail, directory=True)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_another_writer_finished_first_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "abc123"
    target.mkdir()
    (target / "theirs").write_text("kept")
    with pytest.raises(OSError):  # a folder replaces only a missing or empty one
        atomic_write(target, lambda folder: (folder / "ours").write_text("x"), directory=True)
    assert [p.name for p in target.iterdir()] == ["theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["abc123"]
