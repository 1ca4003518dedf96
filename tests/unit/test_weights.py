"""Weights: resolving ``model.weights``, the offline cache error, safe loading of files and chaining."""

from __future__ import annotations

import pickle
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import ResNet18_Weights

from ftcli.errors import WeightsError
from ftcli.finetune.phases import make_schedule
from ftcli.model import weights
from ftcli.model.backbones import build_torchvision, to_blocknet
from ftcli.model.blocks import HEAD, BlockNet
from ftcli.model.surgery import apply_recipe
from ftcli.model.weights_file import read_file
from ftcli.pipeline import plan_run
from ftcli.runs import checkpoint_schema
from ftcli.runs.weights_source import load_weights_file
from ftcli.training.lightning_module import FineTuneModule

pytestmark = pytest.mark.usefixtures("single_thread")

LINEAR = {"name": "linear", "n": 0, "hidden": [], "dropout": 0.0, "activation": "relu"}
MLP = {"name": "mlp", "n": 0, "hidden": [16], "dropout": 0.1, "activation": "relu"}
TRUNCATE = {"name": "truncate", "n": 1, "hidden": [], "dropout": 0.0, "activation": "relu"}


# --- helpers ------------------------------------------------------------------------------------


def source_resnet18(seed: int = 1) -> torch.nn.Module:
    """A resnet18 'trained elsewhere': random weights and non-default BN statistics."""
    torch.manual_seed(seed)
    model = build_torchvision("resnet18", None)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.num_batches_tracked.fill_(7)
    return model


def load_into_resnet18(path: Path, recipe: dict[str, Any] = LINEAR, num_classes: int = 5) -> BlockNet:
    """What pipeline.plan_run does with model.weights=PATH: build, cut, operate, then load the backbone."""
    torch.manual_seed(2)  # a different init than the source, so loading is visible
    model = build_torchvision("resnet18", None)
    net, block_map = to_blocknet(model, "resnet18")
    name_map = weights.source_name_map(model, net)
    apply_recipe(net, block_map, recipe, num_classes)
    loaded = read_file(path)
    load_weights_file(net, loaded, path, name_map, checkpoint_schema.find(loaded, path))
    return net


def assert_backbone_equals(net: BlockNet, source: torch.nn.Module) -> None:
    """Every kept backbone tensor equals the source's; torchvision names mapped to block names."""
    fresh = build_torchvision("resnet18", None)
    name_map = weights.source_name_map(fresh, to_blocknet(fresh, "resnet18")[0])
    got = net.state_dict()
    compared = 0
    for tv_name, value in source.state_dict().items():
        block_name = name_map[tv_name]
        if block_name.startswith(f"blocks.{HEAD}.") or block_name not in got:
            continue
        assert torch.equal(got[block_name], value), tv_name
        compared += 1
    assert compared > 50


def assert_fresh_head(net: BlockNet, num_classes: int) -> None:
    assert net.blocks[HEAD].classifier[-1].out_features == num_classes
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, num_classes)


# --- resolve ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "null", "None", ""])
def test_resolve_null_means_random_init(value) -> None:
    source = weights.resolve("resnet18", value)
    assert source.kind == "none" and source.value is None


def test_resolve_enum_names() -> None:
    assert weights.resolve("resnet18", "DEFAULT").value is ResNet18_Weights.DEFAULT
    source = weights.resolve("resnet18", "IMAGENET1K_V1")
    assert source.kind == "enum" and source.value is ResNet18_Weights.IMAGENET1K_V1


def test_resolve_unknown_enum_name_lists_the_valid_ones() -> None:
    with pytest.raises(WeightsError) as err:
        weights.resolve("resnet18", "IMAGENET1K_V2")  # a resnet50 name, not resnet18's
    text = str(err.value)
    assert "IMAGENET1K_V2" in text and "resnet18" in text
    assert "DEFAULT" in text and "IMAGENET1K_V1" in text and "null" in text


@pytest.mark.parametrize("name", ["missing.pt", "sub/dir/missing.ckpt"])
def test_resolve_missing_path(tmp_path, name) -> None:
    with pytest.raises(WeightsError) as err:
        weights.resolve("resnet18", str(tmp_path / name))
    assert "no such file" in str(err.value) and "null" in str(err.value)


def test_resolve_existing_path(tmp_path) -> None:
    path = tmp_path / "w.pt"
    torch.save({}, path)
    source = weights.resolve("resnet18", str(path))
    assert source.kind == "file" and source.value == path.resolve()


# --- enum weights offline -----------------------------------------------------------------------


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def test_uncached_enum_weights_offline_name_the_cache_path(empty_torch_home, monkeypatch) -> None:
    monkeypatch.setenv("FTCLI_OFFLINE", "1")

    def no_download(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("FTCLI_OFFLINE must not try to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    member = weights.resolve("resnet18", "DEFAULT").value
    with pytest.raises(WeightsError) as err:
        weights.ensure_enum_available("resnet18", member)
    text = str(err.value)
    cache = empty_torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert weights.hub_cache_path(member) == cache
    assert str(cache) in text
    assert "model.weights=null" in text and "FTCLI_OFFLINE" in text


def test_cached_enum_weights_need_no_network(empty_torch_home, monkeypatch) -> None:
    monkeypatch.setenv("FTCLI_OFFLINE", "1")
    member = ResNet18_Weights.IMAGENET1K_V1
    cache = weights.hub_cache_path(member)
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"placeholder")
    weights.ensure_enum_available("resnet18", member)  # no error


def test_failed_download_names_the_reason_and_the_cache_path(empty_torch_home, monkeypatch) -> None:
    monkeypatch.delenv("FTCLI_OFFLINE", raising=False)

    def failing_download(*args: Any, **kwargs: Any) -> None:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", failing_download)
    with pytest.raises(WeightsError) as err:
        weights.ensure_enum_available("resnet18", ResNet18_Weights.IMAGENET1K_V1)
    text = str(err.value)
    assert "URLError" in text and "Name or service not known" in text
    assert str(empty_torch_home) in text and "model.weights=null" in text


def test_real_download_attempt_fails_fast_without_internet(empty_torch_home, monkeypatch) -> None:
    # The test machines are offline: the real fetch fails on DNS at once.
    monkeypatch.delenv("FTCLI_OFFLINE", raising=False)
    member = ResNet18_Weights.IMAGENET1K_V1
    try:
        weights.ensure_enum_available("resnet18", member)
    except WeightsError as err:
        assert str(weights.hub_cache_path(member)) in str(err)
        assert "model.weights=null" in str(err)
    else:
        pytest.skip("this machine is online: the weights were downloaded")


# --- loading files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipe", "num_classes"), [(LINEAR, 5), (MLP, 3), (TRUNCATE, 4)], ids=["linear", "mlp", "truncate"]
)
def test_torchvision_state_dict_loads_into_the_backbone(tmp_path, recipe, num_classes) -> None:
    source = source_resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    net = load_into_resnet18(path, recipe, num_classes)
    assert_backbone_equals(net, source)
    assert_fresh_head(net, num_classes)


def test_safetensors_file_loads_into_the_backbone(tmp_path) -> None:
    source = source_resnet18()
    path = tmp_path / "resnet18.safetensors"
    save_file(source.state_dict(), str(path))
    net = load_into_resnet18(path, LINEAR, num_classes=3)
    assert_backbone_equals(net, source)
    assert_fresh_head(net, 3)


def ftcli_checkpoint(path: Path, source: torch.nn.Module, num_classes: int = 10) -> dict[str, Any]:
    """Save a checkpoint shaped like one from `ftcli train`: Lightning state_dict + ftcli metadata."""
    net, block_map = to_blocknet(source, "resnet18")
    apply_recipe(net, block_map, LINEAR, num_classes)
    schedule = make_schedule({"name": "full"}, net)
    meta = {"model": {"name": "resnet18"}, "num_classes": num_classes, "run_dir": "/runs/cars"}
    module = FineTuneModule(net, schedule, {"name": "adamw", "lr": 1e-3}, {"name": "none"}, meta)
    torch.save({"epoch": 3, "state_dict": module.state_dict(), checkpoint_schema.KEY: meta}, path)
    return meta


def test_ftcli_checkpoint_loads_into_the_backbone_with_a_new_head(tmp_path) -> None:
    source = source_resnet18()
    path = tmp_path / "cars.ckpt"
    meta = ftcli_checkpoint(path, source, num_classes=10)
    loaded = read_file(path)
    assert checkpoint_schema.is_ftcli_checkpoint(loaded)
    assert checkpoint_schema.find(loaded, path) == meta
    net = load_into_resnet18(path, MLP, num_classes=3)
    assert_backbone_equals(net, source)
    assert_fresh_head(net, 3)


def test_chaining_through_prepare_uses_the_checkpoint_backbone(tmp_path, compose_train) -> None:
    source = source_resnet18()
    path = tmp_path / "cars.ckpt"
    ftcli_checkpoint(path, source, num_classes=7)
    cfg = compose_train(f"model.weights={path}", "data.classes=[0,1,2]", "strategy=last_layers")
    run_plan = plan_run(cfg)
    assert run_plan.weights_label == str(path)
    assert run_plan.source_meta["run_dir"] == "/runs/cars"
    assert_backbone_equals(run_plan.net, source)
    assert run_plan.net.blocks[HEAD].classifier[-1].out_features == 3


def test_checkpoint_of_a_different_architecture_is_refused(tmp_path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "mobilenet.pth"
    torch.save(build_torchvision("mobilenet_v3_small", None).state_dict(), path)
    with pytest.raises(WeightsError) as err:
        load_into_resnet18(path)
    assert "different architecture" in str(err.value)
    assert str(path) in str(err.value)


def test_checkpoint_with_other_shapes_is_refused(tmp_path) -> None:
    # Same names, one tensor of another shape: still another architecture, not a partial load.
    torch.manual_seed(0)
    state = build_torchvision("resnet18", None).state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(32, 64, 3, 3)
    path = tmp_path / "other.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="different architecture") as err:
        load_into_resnet18(path)
    assert "1 of another shape" in str(err.value)


@pytest.mark.parametrize("suffix", [".pth", ".ckpt", ".safetensors"])
def test_truncated_file_is_a_weights_error(tmp_path, suffix) -> None:
    state = source_resnet18().state_dict()
    whole = tmp_path / f"whole{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(whole))
    else:
        torch.save(state, whole)
    data = whole.read_bytes()
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError) as err:
        read_file(truncated)
    assert str(truncated) in str(err.value)


def test_file_that_is_not_a_dict_is_a_weights_error(tmp_path) -> None:
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(WeightsError, match="not a state_dict"):
        read_file(path)


class _Exploit:
    """Unpickling this creates ``marker``: the kind of payload a hostile checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_without_running_it(tmp_path, writer) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = {"state_dict": {"conv1.weight": torch.zeros(1)}, "extra": _Exploit(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with path.open("wb") as f:
            pickle.dump(payload, f)

    with pytest.raises(WeightsError) as err:
        read_file(path)
    assert "could run code" in str(err.value)
    assert not marker.exists()

    # control: the payload is real, an unsafe load does run it
    with path.open("rb") as f:
        if writer == "torch.save":
            torch.load(f, weights_only=False)
        else:
            pickle.load(f)
    assert marker.exists()


@pytest.mark.parametrize(
    "content",
    [b"epoch,loss\n1,0.5\n", b'{"state_dict": {}}', bytes(range(256)) * 4, b"\x80\x02garbage"],
    ids=["csv", "json", "bytes", "pickle-header-then-garbage"],
)
def test_a_file_that_is_not_a_torch_file_is_unreadable_not_dangerous(tmp_path, content) -> None:
    path = tmp_path / "weights.pt"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="not a readable weights file") as err:
        read_file(path)
    assert "could run code" not in str(err.value)
