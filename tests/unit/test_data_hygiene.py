"""Data hygiene: symlink loops in image folders, repeated or contradictory manifest rows, binary manifests."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image

from ftcli import notices
from ftcli.data.sources.csv_manifest import read_manifest
from ftcli.data.sources.imagefolder import class_folders
from ftcli.errors import DataError


def images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i}.png" for i in range(count)]
    for i, path in enumerate(paths):
        Image.new("RGB", (4, 4), (i, 0, 0)).save(path)
    return paths


def test_a_symlink_loop_in_a_class_folder_counts_each_image_once(tmp_path: Path) -> None:
    images(tmp_path / "red", 8)
    images(tmp_path / "blue", 8)
    (tmp_path / "red" / "loop").symlink_to(".", target_is_directory=True)  # red/loop -> red
    (tmp_path / "red" / "up").symlink_to("..", target_is_directory=True)  # red/up -> the root (blue too)
    (tmp_path / "blue" / "again.png").symlink_to(tmp_path / "blue" / "0.png")  # one file, two names

    folders = class_folders(tmp_path)
    assert {name: len(paths) for name, paths in folders.items()} == {"blue": 8, "red": 8}


def test_a_symlinked_sub_folder_is_still_followed(tmp_path: Path) -> None:
    images(tmp_path / "elsewhere", 3)
    root = tmp_path / "data"
    images(root / "red", 2)
    images(root / "blue", 2)
    (root / "red" / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert len(class_folders(root)["red"]) == 5


def test_one_image_reached_from_two_class_folders_is_an_error_naming_it(tmp_path: Path) -> None:
    images(tmp_path / "red", 2)
    images(tmp_path / "blue", 2)
    (tmp_path / "blue" / "stolen.png").symlink_to(tmp_path / "red" / "0.png")
    with pytest.raises(DataError, match="two class folders") as err:
        class_folders(tmp_path)
    assert "'blue' and 'red'" in str(err.value) or "'red' and 'blue'" in str(err.value)


def manifest(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text("\n".join(["path,label", *lines]) + "\n", encoding="utf-8")
    return path


def test_repeated_manifest_rows_count_once_with_one_logged_warning_per_run_on_rank_zero_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = images(tmp_path / "img", 4)
    lines = [f"{p.name},{'cat' if i % 2 else 'dog'}" for i, p in enumerate(files)]
    path = manifest(tmp_path, lines + lines)
    with caplog.at_level(logging.WARNING, logger="ftcli"):
        monkeypatch.setenv("LOCAL_RANK", "1")  # another DDP rank reads the same manifest: it says nothing
        assert len(read_manifest(path, tmp_path / "img")) == 4
        monkeypatch.delenv("LOCAL_RANK")
        for _ in range(2):  # rank zero reads it twice (e.g. train, then the test split): one warning
            assert len(read_manifest(path, tmp_path / "img")) == 4
        notices.new_run()  # the next job of a sweep in this process says it again, in its own log
        read_manifest(path, tmp_path / "img")
    warned = [r.getMessage() for r in caplog.records if "repeated row" in r.getMessage()]
    assert warned == [f"warning: {path}: 4 repeated row(s) ignored; 4 distinct images."] * 2


def test_one_file_under_two_labels_is_an_error_naming_it(tmp_path: Path) -> None:
    images(tmp_path / "img", 2)
    with pytest.raises(DataError, match="under two labels: 'cat' and 'dog'") as err:
        read_manifest(manifest(tmp_path, ["0.png,cat", "1.png,dog", "0.png,dog"]), tmp_path / "img")
    assert "0.png" in str(err.value)


def test_one_file_in_two_splits_is_an_error(tmp_path: Path) -> None:
    images(tmp_path / "img", 2)
    path = tmp_path / "labels.csv"
    path.write_text("path,label,split\n0.png,cat,train\n1.png,dog,train\n0.png,cat,val\n")
    with pytest.raises(DataError, match="in two splits: train and val"):
        read_manifest(path, tmp_path / "img")


@pytest.mark.parametrize(
    "content", [bytes(range(256)) * 4, b"path,label\n\xff\xfe,cat\n", b"PK\x03\x04\x00\x00"]
)
def test_a_manifest_that_is_not_utf8_text_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match="is not UTF-8 text") as err:
        read_manifest(path, tmp_path)
    assert "data.manifest=" in str(err.value)
