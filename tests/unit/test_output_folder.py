"""eval, predict and export never overwrite earlier results: each call gets a folder of its own
unless ``out=`` names one, and an ``out=`` that holds an earlier result is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from ftcli.errors import OutputError
from ftcli.runs import checkpoint_schema
from ftcli.runs.output_folder import check_named, results_folder

from helpers.nets import LINEAR_RECIPE, make_net

pytestmark = pytest.mark.usefixtures("single_thread")


def test_each_call_without_out_gets_a_new_folder(tmp_path: Path) -> None:
    default = tmp_path / "run" / "eval" / "best-digits-test"
    first = results_folder(None, default, ["metrics.json"])
    second = results_folder(None, default, ["metrics.json"])
    third = results_folder(None, default, ["metrics.json"])
    assert first == default and second.name == "best-digits-test-2" and third.name == "best-digits-test-3"
    assert all(p.is_dir() for p in (first, second, third))


def test_a_shared_default_is_reused_until_it_holds_the_file(tmp_path: Path) -> None:
    default = tmp_path / "export"
    assert results_folder(None, default, ["best.onnx"], share=True) == default
    (default / "best.torchscript.pt").write_text("x")
    assert results_folder(None, default, ["best.onnx"], share=True) == default
    (default / "best.onnx").write_text("x")
    assert results_folder(None, default, ["best.onnx"], share=True) == tmp_path / "export-2"


def test_out_may_exist_but_never_holds_an_earlier_result(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert results_folder(str(out), tmp_path / "unused", ["metrics.json"]) == out
    (out / "metrics.json").write_text("{}")
    with pytest.raises(OutputError, match=r"already holds metrics\.json") as err:
        check_named(str(out), ["metrics.json"])
    assert "out=" in str(err.value)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(OutputError, match="is a file"):
        check_named(str(tmp_path / "a_file"), ["metrics.json"])


def test_an_unusable_out_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="characters"):
        results_folder("x" * 5000, tmp_path, ["metrics.json"])
    with pytest.raises(OutputError, match="Cannot create"):
        results_folder(None, tmp_path / ("y" * 300) / "z", ["metrics.json"])


def tiny_checkpoint(tmp_path: Path) -> Path:
    """A 3-digit resnet18 checkpoint (random weights) that eval reads with its own data config."""
    net = make_net("resnet18", num_classes=3)
    meta = checkpoint_schema.build(
        class_names=["0", "1", "2"],
        model={"name": "resnet18", "weights": None, "kwargs": {}, "family": "resnet", "weights_used": "x"},
        recipe=dict(LINEAR_RECIPE),
        strategy={"name": "full"},
        transform={"resize": 32, "crop": 32, "mean": [0.5] * 3, "std": [0.25] * 3},
        blocks=net.block_names,
        data={"name": "digits", "classes": [0, 1, 2], "image_size": 32, "test_fraction": 0.3,
              "val_fraction": 0.2, "per_class": None, "batch_size": 64, "num_workers": 0},
        seed=7,
        chained_from=None,
    )  # fmt: skip
    saved: dict[str, Any] = {"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}}
    checkpoint_schema.attach(saved, meta, [], {})
    path = tmp_path / "run" / "checkpoints" / "best.ckpt"
    path.parent.mkdir(parents=True)
    torch.save(saved, path)
    return path


@pytest.mark.slow  # two evals of a trained checkpoint
def test_two_evals_with_other_data_overrides_keep_both_results(tmp_path: Path) -> None:
    from ftcli.commands.evaluate import evaluate

    path = tiny_checkpoint(tmp_path)
    options = {"out": None, "batch_size": None, "seed": None, "device": "cpu"}
    evaluate(path, [], "test", options)
    evaluate(path, ["data.test_fraction=0.5"], "test", options)
    first = json.loads((tmp_path / "run" / "eval" / "best-digits-test" / "metrics.json").read_text())
    second = json.loads((tmp_path / "run" / "eval" / "best-digits-test-2" / "metrics.json").read_text())
    assert first["images"] != second["images"]  # the second did not replace the first

    with pytest.raises(OutputError, match=r"already holds metrics\.json"):
        evaluate(path, [], "test", {**options, "out": str(tmp_path / "run" / "eval" / "best-digits-test")})
