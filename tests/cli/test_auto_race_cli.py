"""`ftcli train strategy=auto` races the advisor's shortlist (auto.mode=race, the default), in-process.

Random-init mobilenet_v3_small on three digit classes, 32 px, two epochs: three candidates race one epoch,
the better two one more (auto.budget=5), the winner trains both epochs from scratch.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import assert_ok, assert_user_error, output

# the advisor and six short runs (~25 s of CPU): too long for the fast suite
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_thread")]


def _common(tmp: Path) -> list[str]:
    return [
        "model.name=mobilenet_v3_small",
        "model.weights=null",
        "data=digits",
        "data.image_size=32",
        "data.per_class=5",
        "data.classes=[0,1,2]",
        "trainer=cpu",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        "print_config=false",
        f"data.feature_cache_dir={tmp / 'cache'}",
        "strategy=auto",
    ]


RACE = ["auto.candidates=3", "auto.budget=5"]


@pytest.fixture(scope="module")
def raced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict, str]:
    """One race, for every test here (the seeded reproducibility: tests/unit/test_auto_race.py)."""
    tmp = tmp_path_factory.mktemp("race")
    result = run_cli_inprocess("train", *_common(tmp), *RACE, f"hydra.run.dir={tmp / 'auto'}", cwd=tmp)
    assert_ok(result)
    record = json.loads((tmp / "auto" / "advice.json").read_text())
    summary = json.loads((tmp / "auto" / "summary.json").read_text())
    return tmp, record, summary, output(result)


def test_the_race_trains_each_candidate_halves_and_trains_the_winner(raced) -> None:
    tmp, record, summary, text = raced
    race = record["race"]
    assert len(record["shortlist"]) == 3 and all(c["why"] for c in record["shortlist"])
    assert race["plan"]["milestones"] == [1, 2] and race["plan"]["survivors"] == [3, 2]
    entrants = race["entrants"]
    assert [len(e["val_acc"]) for e in entrants if e["out_after_rung"] == 1] == [1]  # one out after rung 1
    assert sorted(len(e["val_acc"]) for e in entrants) == [1, 2, 2]
    assert race["epochs"] == 5 and race["cost_in_runs"] == pytest.approx(3.5)
    winner = entrants[race["winner"]]
    assert winner["out_after_rung"] is None
    # the better half went on: the one out after rung 1 scored no better than both that continued
    out = next(e for e in entrants if e["out_after_rung"] == 1)
    assert all(e["scores"][0] >= out["scores"][0] for e in entrants if e is not out)
    assert "race: best val/acc so far" in text and "winner" in text
    # the winner trained in full in the run's folder, the race recorded beside the rule's decision
    assert summary["race"] == race and summary["advice"] == record["decision"]
    assert summary["epochs"] == 2 and summary["strategy"] == winner["overrides"][0].removeprefix("strategy=")
    checkpoint = torch.load(tmp / "auto" / "checkpoints" / "best.ckpt", weights_only=True, map_location="cpu")
    assert checkpoint["ftcli"]["advice"]["race"]["winner_overrides"] == winner["overrides"]
    assert summary["recipe"] == checkpoint["ftcli"]["recipe"]["name"]  # the run's recipe, not Hydra's choice


def test_the_race_never_touches_the_test_split(raced) -> None:
    tmp, record, summary, _ = raced
    folders = [Path(d) for e in record["race"]["entrants"] for d in e["run_dirs"]]
    assert len(folders) == 5 and all(f.is_relative_to(tmp / "auto" / "race") for f in folders)
    for folder in folders:
        assert json.loads((folder / "summary.json").read_text())["test_acc"] is None
        with (folder / "metrics.csv").open() as rows:
            assert not [c for c in next(csv.reader(rows)) if c.startswith("test")]
    assert summary["test_acc"] is not None  # the final run is tested, as any run


def test_report_and_inspect_show_the_race(raced) -> None:
    tmp, record, _, _ = raced
    report = run_cli_inprocess("report", str(tmp), f"out={tmp / 'report'}", cwd=tmp)
    assert_ok(report)
    winner = record["race"]["winner_overrides"]
    picked = " ".join(o.removeprefix("strategy=") for o in winner)
    rows = (tmp / "report" / "report.csv").read_text().splitlines()
    assert len(rows) == 2 and f"strategy=auto ({picked}; won a race of 3" in rows[1]  # not the race's runs
    inspected = run_cli_inprocess("inspect", *_common(tmp), *RACE, cwd=tmp)
    assert_ok(inspected)
    assert "shortlist" in output(inspected) and "race: 3 candidates" in output(inspected)
    assert "5 epochs of 5 (budget: auto.budget)" in output(inspected)
    rule = run_cli_inprocess("inspect", *_common(tmp), "auto.mode=rule", cwd=tmp)
    assert_ok(rule)
    # (the rule's pick itself may differ from the run's: random init is not seeded by inspect)
    assert "auto: " in output(rule) and "race:" not in output(rule)


def test_bad_auto_keys_exit_2_before_anything_trains(tmp_path: Path) -> None:
    result = run_cli_inprocess("train", *_common(tmp_path), "auto.mode=fast", cwd=tmp_path)
    assert_user_error(result, "auto.mode='fast' is not valid: it must be one of race, rule")
    result = run_cli_inprocess("train", *_common(tmp_path), "auto.budget=1", cwd=tmp_path)
    assert_user_error(result, "auto.budget=1 leaves 1 epoch(s)")
