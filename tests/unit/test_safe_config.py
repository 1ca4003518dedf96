"""Config stored in a checkpoint is never instantiated into code outside ftcli, torch and torchvision."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ftcli.errors import WeightsError
from ftcli.model.weights_file import read_file
from ftcli.runs import checkpoint_schema
from ftcli.runs.safe_config import check_targets, is_allowed


@pytest.mark.parametrize(
    "target",
    [
        "os.system",
        "builtins.open",
        "subprocess.run",
        "torch.serialization.os.system",  # an allowed prefix that resolves to os.system
        "torch.hub.load",  # runs a repository's hubconf.py
        "torch.load",
        "torch.jit.load",
        "torch.no_such_thing",
    ],
)
def test_targets_outside_the_allowlist_are_refused(target: str) -> None:
    assert not is_allowed(target)


ALLOWED = ["torch.nn.Linear", "torchvision.models.resnet18", "ftcli.model.blocks.BlockNet"]


@pytest.mark.parametrize("target", ALLOWED)
def test_ftcli_torch_and_torchvision_callables_are_allowed(target: str) -> None:
    assert is_allowed(target)


def test_a_nested_target_is_refused_by_its_key_path(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    config = {"head": [{"_target_": "builtins.open", "file": str(marker), "mode": "w"}]}

    with pytest.raises(WeightsError) as err:
        check_targets(config, "a.ckpt")
    assert "head[0]._target_ is 'builtins.open'" in str(err.value)
    assert not marker.exists()


def test_a_checkpoint_whose_stored_config_targets_os_system_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "targeted.ckpt"
    meta = {"model": {"name": "resnet18", "kwargs": {"_target_": "os.system", "_args_": ["true"]}}}
    torch.save({"state_dict": {"model.x": torch.zeros(1)}, "ftcli": meta}, path)

    with pytest.raises(WeightsError, match=r"model.kwargs._target_ is 'os.system'"):
        checkpoint_schema.read(read_file(path), path)


def test_plain_checkpoint_config_passes() -> None:
    check_targets({"model": {"name": "resnet18", "kwargs": {}}, "recipe": {"hidden": [32]}}, "a.ckpt")
