"""`ftcli advise` and `ftcli train strategy=auto` as a user runs them, on the real ImageNet Lite0.

The first advice and the trainings run as subprocesses; inspect, report, the second advice and the
refused one run in the test process (helpers/cli_inprocess.py).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import assert_ok, assert_user_error, output, run_cli
from helpers.shared_runs import shared_folder

pytestmark = pytest.mark.slow


def _common(tmp: Path) -> list[str]:
    return [
        "data=digits",
        "data.image_size=32",
        "data.per_class=10",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "print_config=false",
        "trainer.enable_progress_bar=false",
        f"data.feature_cache_dir={tmp / 'cache'}",
    ]


def advise_digits(tmp: Path) -> None:
    result = run_cli("advise", *_common(tmp), f"hydra.run.dir={tmp / 'advice'}", cwd=tmp)
    assert_ok(result)
    text = output(result)
    assert "linear probe per block" in text and "run it" in text and "shortlist" in text


@pytest.fixture(scope="session")
def advised(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict]:
    """One `ftcli advise` on digits per session (for every pytest-xdist worker: tests/helpers/shared_runs.py);
    each test writes its own runs beside it."""
    tmp = shared_folder(tmp_path_factory, "advise-digits", advise_digits)
    record = json.loads((tmp / "advice" / "advice.json").read_text())
    return tmp, _common(tmp), record


def test_advise_writes_its_measurements_and_a_train_command(advised) -> None:
    _, common, record = advised
    measured = record["measurements"]
    assert measured["weights"].startswith("ImageNet")  # the real default, offline
    assert measured["per_class"] == {str(d): 10 for d in range(10)}
    assert set(measured["probe"]["pretrained"]) == set(measured["blocks"])
    assert measured["probe"]["raw_input"]["accuracy"] > 0.1
    assert measured["probe"]["raw_input_name"] == "raw pixels"
    decision = record["decision"]
    assert decision["size"] == "little" and decision["reasons"]
    assert record["shortlist"][0]["overrides"] == decision["overrides"] and len(record["shortlist"]) == 4
    assert record["command"] == "ftcli train " + " ".join(
        shlex.quote(part) for part in [*common, *decision["overrides"]]
    )


def test_auto_trains_with_what_advise_printed(advised) -> None:
    tmp, common, record = advised
    auto = run_cli_inprocess(
        "train", *common, "strategy=auto", "auto.mode=rule", f"hydra.run.dir={tmp / 'auto'}", cwd=tmp
    )
    assert_ok(auto)
    overrides = record["decision"]["overrides"]
    assert f"-> {' '.join(overrides)}" in output(auto)
    summary = json.loads((tmp / "auto" / "summary.json").read_text())
    assert summary["advice"]["overrides"] == overrides
    assert (tmp / "auto" / "advice.json").is_file()
    checkpoint = torch.load(tmp / "auto" / "checkpoints" / "best.ckpt", weights_only=True, map_location="cpu")
    meta = checkpoint["ftcli"]
    assert meta["advice"]["decision"]["overrides"] == overrides
    assert meta["strategy"]["name"] == record["decision"]["strategy"]

    # the same run with the printed strategy written out reaches the same test accuracy
    explicit = run_cli_inprocess("train", *common, *overrides, f"hydra.run.dir={tmp / 'explicit'}", cwd=tmp)
    assert_ok(explicit)
    written_out = json.loads((tmp / "explicit" / "summary.json").read_text())
    assert written_out["test_acc"] == summary["test_acc"]

    # the report names what auto picked
    report = run_cli_inprocess(
        "report", str(tmp / "auto"), str(tmp / "explicit"), f"out={tmp / 'report'}", cwd=tmp
    )
    assert_ok(report)
    picked = " ".join(o.removeprefix("strategy=") for o in overrides)
    assert f"strategy=auto ({picked})" in (tmp / "report" / "report.csv").read_text()


def test_inspect_shows_what_auto_would_pick(advised) -> None:
    tmp, common, record = advised
    result = run_cli_inprocess("inspect", *common, "strategy=auto", "auto.mode=rule", cwd=tmp)
    assert_ok(result)
    text = output(result)
    assert "auto: " in text and " ".join(record["decision"]["overrides"]) in text
    assert f"strategy {record['decision']['strategy']}" in text  # the plan of the picked strategy


def test_advise_on_an_image_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for label, level in (("dark", 40), ("light", 200)):
        folder = tmp_path / "photos" / label
        folder.mkdir(parents=True)
        for i in range(6):
            pixels = np.clip(rng.normal(level, 30, (24, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    result = run_cli_inprocess(
        "advise",
        "data=imagefolder",
        f"data.root={tmp_path / 'photos'}",
        "data.image_size=32",
        "data.val_fraction=0.2",
        f"data.feature_cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'advice'}",
        cwd=tmp_path,
    )
    assert_ok(result)
    record = json.loads((tmp_path / "advice" / "advice.json").read_text())
    assert record["measurements"]["per_class"] == {"dark": 5, "light": 5}


def test_advise_refuses_a_single_class(tmp_path: Path) -> None:
    result = run_cli_inprocess(
        "advise", *_common(tmp_path), "data.classes=[3]", f"hydra.run.dir={tmp_path / 'a'}", cwd=tmp_path
    )
    assert_user_error(result, "a classifier needs at least 2")
