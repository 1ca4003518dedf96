"""``make study`` (bench/regime_study.py): every job of every cell is a valid ftcli config, so an hour-long
study does not stop at its first sweep of a cell because a key was renamed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from bench import regime_study
from ftcli.command_line import config_groups
from ftcli.config.schema import check_config

CELLS = [(similarity, size) for similarity in regime_study.SOURCES for size in ("little", "much")]
# the similar and dissimilar cells differ from the imagenet ones only by the source checkpoint's path;
# the image cells compose in make test only (make test-fast's 2 minutes are tight)
COMPOSED = [
    pytest.param(similarity, size, id=f"{similarity}_{size}", marks=[pytest.mark.slow] if image else [])
    for similarity, image in (("imagenet", True), ("text", False))
    for size in ("little", "much")
]


def jobs(similarity: str, size: str) -> list[list[str]]:
    """The override lists of every job of a cell's sweeps (a comma list is one job per value)."""
    weights = {"text": "package", "imagenet": "imagenet"}.get(similarity, "/runs/source/best.ckpt")
    target = [*regime_study.cell_overrides(similarity, size, much_epochs=3), f"model.weights={weights}"]
    result = []
    for _, chosen in regime_study.cell_sweeps(Path("study") / f"{similarity}_{size}", similarity, size, True):
        swept = [o for o in chosen if o.startswith("strategy=")]
        fixed = [o for o in chosen if not o.startswith("strategy=")]
        for value in swept[0].removeprefix("strategy=").split(","):
            result.append([*target, f"strategy={value}", *fixed, "seed=0"])
    return result


@pytest.mark.parametrize(("similarity", "size"), COMPOSED)
def test_each_sweep_of_a_study_cell_composes_and_passes_the_schema(similarity: str, size: str) -> None:
    """One job per sweep (the strategies themselves compose in test_configs.py)."""
    first_of_each_sweep = {}
    for job in jobs(similarity, size):
        first_of_each_sweep.setdefault(tuple(o for o in job if not o.startswith("strategy=")), job)
    with initialize_config_dir(config_dir=str(config_groups.config_dir()), version_base="1.3"):
        for overrides in first_of_each_sweep.values():
            check_config(compose("train", overrides=overrides))


@pytest.mark.parametrize(("similarity", "size"), CELLS, ids=[f"{s}_{z}" for s, z in CELLS])
def test_every_cell_runs_every_strategy_and_auto_on_its_model(similarity: str, size: str) -> None:
    cell_jobs = jobs(similarity, size)
    strategies = {o for job in cell_jobs for o in job if o.startswith("strategy=")}
    assert {f"strategy={s}" for s in regime_study.STRATEGIES} | {"strategy=auto"} == strategies
    text = similarity == "text"
    model = next(o for o in cell_jobs[0] if o.startswith("model="))
    assert model == ("model=minilm_l6" if text else "model=efficientnet_lite0")
    # BatchNorm recalibration runs in the little image cells only: a text network has no BatchNorm
    recalibrated = any("strategy.bn_recalibrate=true" in job for job in cell_jobs)
    assert recalibrated == (size == "little" and not text)


def test_the_text_cells_train_at_the_transformer_rate_and_the_probe_at_its_own() -> None:
    for job in jobs("text", "little"):
        lr = [o for o in job if o.startswith("optimizer.lr=")][-1]  # the last override wins
        probe = "strategy=feature_extraction" in job
        assert lr == f"optimizer.lr={regime_study.PROBE_LR if probe else regime_study.TEXT_LR}"


def test_an_unknown_cell_is_refused_naming_the_valid_ones(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        regime_study.main(["--cells", "text_litle", "--out", str(tmp_path / "study")])
    assert stopped.value.code == 2
    assert "unknown cell(s) text_litle; valid cells: similar_little" in capsys.readouterr().err
    assert not (tmp_path / "study").exists()  # refused before anything ran or was written
