"""One checkpoint schema: what is written is what every reader checks, old checkpoints still load,
and a checkpoint from a newer ftcli, or one missing what a reader needs, is a clear WeightsError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ftcli import __version__
from ftcli.errors import WeightsError
from ftcli.model.weights_file import read_file
from ftcli.runs import checkpoint_schema, trained_model

from helpers.nets import LINEAR_RECIPE, make_net

CLASSES = ["cat", "dog", "truck"]
TRANSFORM = {"resize": 36, "crop": 32, "mean": [0.5] * 3, "std": [0.25] * 3, "interpolation": "bilinear"}


def metadata() -> dict[str, Any]:
    net = make_net("resnet18", num_classes=len(CLASSES))
    return checkpoint_schema.build(
        class_names=CLASSES,
        model={"name": "resnet18", "weights": None, "kwargs": {}, "family": "resnet", "weights_used": "x"},
        recipe=dict(LINEAR_RECIPE),
        strategy={"name": "full"},
        transform=TRANSFORM,
        blocks=net.block_names,
        data={"name": "digits", "image_size": 32},
        seed=7,
        chained_from=None,
    )


def save_checkpoint(path: Path, meta: dict[str, Any], seed: int = 0) -> torch.nn.Module:
    """A file shaped like `ftcli train`'s: Lightning's ``model.``-prefixed state_dict plus the metadata."""
    net = make_net("resnet18", num_classes=len(CLASSES), seed=seed)
    state = {f"model.{k}": v for k, v in net.state_dict().items()}
    checkpoint: dict[str, Any] = {"epoch": 2, "state_dict": state}
    checkpoint_schema.attach(checkpoint, meta, schedule=[{"label": "all"}], phase={"index": 0, "count": 1})
    torch.save(checkpoint, path)
    return net


def test_what_is_written_reads_back_with_its_format_and_progress(tmp_path: Path) -> None:
    path = tmp_path / "best.ckpt"
    save_checkpoint(path, metadata())

    meta = checkpoint_schema.read(read_file(path), path, needs=checkpoint_schema.FOR_MODEL)
    assert meta["format"] == checkpoint_schema.FORMAT and meta["version"] == __version__
    assert meta["class_names"] == CLASSES and meta["num_classes"] == 3 and meta["seed"] == 7
    assert meta["schedule"] == [{"label": "all"}] and meta["phase"]["count"] == 1


def test_a_checkpoint_from_before_the_schema_still_loads_and_predicts_the_same(tmp_path: Path) -> None:
    """Format 0: no ``format`` key, the package version under ``version``; everything else the same."""
    old = {k: v for k, v in metadata().items() if k != "format"}
    old["version"] = "0.1.0"
    path = tmp_path / "old.ckpt"
    net = save_checkpoint(path, old, seed=3).eval()

    model = trained_model.load(path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.net(x), net(x))
    assert model.class_names == CLASSES and model.transform.crop == 32


def test_a_checkpoint_from_a_newer_ftcli_says_to_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "new.ckpt"
    save_checkpoint(path, {**metadata(), "format": checkpoint_schema.FORMAT + 1, "version": "9.0"})

    with pytest.raises(WeightsError) as err:
        trained_model.load(path)
    assert f"checkpoint format {checkpoint_schema.FORMAT + 1}" in str(err.value)
    assert "Upgrade ftcli" in str(err.value)


def test_a_reader_names_the_metadata_it_misses(tmp_path: Path) -> None:
    path = tmp_path / "partial.ckpt"
    save_checkpoint(path, {k: v for k, v in metadata().items() if k not in ("recipe", "transform")})

    with pytest.raises(WeightsError, match="its ftcli metadata lacks recipe, transform"):
        trained_model.load(path)


def test_a_plain_state_dict_is_not_an_ftcli_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save(make_net("resnet18").state_dict(), path)
    loaded = read_file(path)

    assert checkpoint_schema.find(loaded, path) == {}
    with pytest.raises(WeightsError, match="is not an ftcli checkpoint"):
        checkpoint_schema.read(loaded, path)


def test_eval_of_a_checkpoint_that_records_no_data_asks_for_data_name(tmp_path: Path) -> None:
    """No silent fallback to some dataset: the user names the data, or eval starts from the stored name."""
    from ftcli.commands.evaluate import _group_defaults
    from ftcli.errors import DataError

    path = tmp_path / "best.ckpt"
    with pytest.raises(DataError, match="does not record the data it was trained on") as err:
        _group_defaults({}, [], path)
    assert "data=NAME" in str(err.value)
    assert _group_defaults({}, ["data=digits"], path) == []
    assert _group_defaults({"name": "shapes"}, [], path) == ["data=shapes"]  # only its name: group defaults
    assert _group_defaults({"name": "digits", "image_size": 32}, [], path) == []
