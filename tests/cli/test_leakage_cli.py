"""Leaked images as a user meets them: 5 training images copied into val/ are reported by `inspect` and
`train` (count and paths), `data.on_leak=error` stops with exit 2, `data.on_leak=drop` leaves them out of
val and says so in the run summary. (The check itself: tests/unit/test_leakage.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import assert_ok, assert_user_error, output

FAST = [
    "model=resnet18",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "print_config=false",
    "data.image_size=32",
    "model.weights=null",
    "data=imagefolder",
]
COPIED = [("cat", 0), ("cat", 1), ("cat", 2), ("dog", 0), ("dog", 1)]


@pytest.fixture(scope="module")
def leaky_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """train/ and val/ of 16x16 PNGs, a colour each, plus 5 train images copied into val/ under new names."""
    root = tmp_path_factory.mktemp("leaky") / "images"
    for split, count, blue in (("train", 6, 200), ("val", 2, 60)):
        for c, name in enumerate(("cat", "dog")):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (16, 16), (40 * i, 120 * c, blue)).save(root / split / name / f"{i}.png")
    copies = []
    for k, (name, i) in enumerate(COPIED):
        copies.append(root / "val" / name / f"copy{k}.png")
        shutil.copy(root / "train" / name / f"{i}.png", copies[-1])
    return root, copies


def test_inspect_reports_the_copies_with_their_paths(
    leaky_folder: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    root, copies = leaky_folder
    result = run_cli_inprocess("inspect", *FAST, f"data.root={root}", cwd=tmp_path)
    assert_ok(result)
    text = output(result)
    assert "data leak: 5 val/test images are exact copies (file bytes): 5 val in train" in text
    assert f"{copies[0]} = {root / 'train' / 'cat' / '0.png'}" in text
    assert "data.on_leak=drop leaves them out" in text


def test_on_leak_error_stops_before_training(leaky_folder: tuple[Path, list[Path]], tmp_path: Path) -> None:
    root, copies = leaky_folder
    result = run_cli_inprocess(
        "train",
        *FAST,
        f"data.root={root}",
        "data.on_leak=error",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert_user_error(result, "5 val/test images are exact copies", str(copies[0]), "data.on_leak=drop")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_train_drops_the_copies_from_val_and_records_them(
    leaky_folder: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    root, copies = leaky_folder
    run = tmp_path / "run"
    result = run_cli_inprocess(
        "train",
        *FAST,
        f"data.root={root}",
        "data.on_leak=drop",
        "strategy=feature_extraction",
        f"hydra.run.dir={run}",
        cwd=tmp_path,
    )
    assert_ok(result)
    text = output(result)
    assert "data leak: 5 val/test images are exact copies" in text and str(copies[0]) in text
    assert "dropped (data.on_leak=drop): 5 from val" in text
    assert "train 12 · val 4" in text
    leaks = json.loads((run / "summary.json").read_text())["leaks"]
    assert leaks["leaked"] == 5 and leaks["across"] == {"val in train": 5} and leaks["dropped"] == {"val": 5}
    assert leaks["checked_by"] == "file bytes" and leaks["samples_checked"] == 21
    assert "leaked samples" in result.stdout and "dropped 5 from val" in result.stdout
    assert "leak" in (run / "train.log").read_text()  # the warning went through the logger into the log
