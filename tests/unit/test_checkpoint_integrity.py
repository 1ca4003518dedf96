"""A damaged checkpoint is refused by every reader before it is used: byte-flipped, zero-filled,
truncated, NaN weights, metadata of the wrong type or inconsistent with the tensors.

Readers: ``trained_model.load`` (eval, predict, export), ``inspect ckpt=``, chaining
(``model.weights=PATH`` through ``pipeline.plan_run``) and ``resume=PATH``. Each must raise an
FtcliError (exit 2 at the boundary) that names the file, never accept it or raise anything else.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from ftcli.errors import FtcliError, WeightsError
from ftcli.runs import checkpoint_schema, resume, trained_model

from helpers.nets import LINEAR_RECIPE, make_net

CLASSES = ["0", "1", "2"]
TRANSFORM = {"resize": 32, "crop": 32, "mean": [0.5] * 3, "std": [0.25] * 3, "interpolation": "bilinear"}

pytestmark = pytest.mark.usefixtures("single_thread")


def metadata(net: Any) -> dict[str, Any]:
    return checkpoint_schema.build(
        class_names=CLASSES,
        model={"name": "resnet18", "weights": None, "kwargs": {}, "family": "resnet", "weights_used": "x"},
        recipe=dict(LINEAR_RECIPE),
        strategy={"name": "full"},
        transform=dict(TRANSFORM),
        blocks=net.block_names,
        data={"name": "digits", "image_size": 32},
        seed=7,
        chained_from=None,
    )


def checkpoint(net: Any, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Shaped like `ftcli train`'s: resumable (loops, optimizer_states) with the ftcli metadata."""
    state = {f"model.{k}": v.clone() for k, v in net.state_dict().items()}
    saved: dict[str, Any] = {
        "epoch": 1,
        "global_step": 4,
        "state_dict": state,
        "loops": {},
        "optimizer_states": [],
    }
    checkpoint_schema.attach(
        saved, meta or metadata(net), [{"label": "all", "start_epoch": 0}], {"index": 0, "count": 1}
    )
    return saved


@pytest.fixture(scope="module")
def net() -> Any:
    return make_net("resnet18", num_classes=len(CLASSES))


@pytest.fixture(scope="module")
def good(net: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "best.ckpt"
    torch.save(checkpoint(net), path)
    return path


# ---------------------------------------------------------------------------- the corruptions


def flipped(good: Path, out: Path) -> None:
    data = bytearray(good.read_bytes())
    rng = random.Random(0)
    for position in rng.sample(range(len(data) // 10, len(data) * 9 // 10), 64):
        data[position] ^= 0xFF
    out.write_bytes(bytes(data))


def zero_filled(good: Path, out: Path) -> None:
    data = bytearray(good.read_bytes())
    start = len(data) // 3
    data[start : start + (1 << 20)] = bytes(1 << 20)
    out.write_bytes(bytes(data))


def truncated(good: Path, out: Path) -> None:
    data = good.read_bytes()
    out.write_bytes(data[: len(data) // 2])


def nan_weights(good: Path, out: Path) -> None:
    saved = torch.load(good, weights_only=True)
    name = next(k for k in saved["state_dict"] if k.endswith("conv1.weight"))
    saved["state_dict"][name][0, 0, 0, 0] = float("nan")
    torch.save(saved, out)


def inf_head(good: Path, out: Path) -> None:
    saved = torch.load(good, weights_only=True)
    name = next(k for k in saved["state_dict"] if k.startswith("model.blocks.head.") and k.endswith("bias"))
    saved["state_dict"][name][0] = float("inf")
    torch.save(saved, out)


CORRUPTIONS: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "byte_flipped": (flipped, "damaged"),
    "zero_filled": (zero_filled, "damaged"),
    "truncated": (truncated, "not a readable weights file"),
    "nan_weights": (nan_weights, "NaN/inf"),
    "inf_head": (inf_head, "NaN/inf"),
}


# ---------------------------------------------------------------------------- the readers


def read_for_model(path: Path, compose_train: Any) -> None:
    trained_model.load(path)


def read_for_inspect(path: Path, compose_train: Any) -> None:
    from ftcli.commands.inspect_run import inspect_checkpoint

    inspect_checkpoint(path)


def read_for_chaining(path: Path, compose_train: Any) -> None:
    from ftcli.pipeline import plan_run

    plan_run(compose_train(f"model.weights={path}", "strategy=full", "data.per_class=2"))


def read_for_resume(path: Path, compose_train: Any) -> None:
    net = make_net("resnet18", num_classes=len(CLASSES))
    resume.resolve(str(path), compose_train(), path.parent / "run", net.block_names, len(CLASSES))


READERS = {
    "eval_predict_export": read_for_model,
    "inspect": read_for_inspect,
    "chaining": read_for_chaining,
    "resume": read_for_resume,
}


def test_the_intact_checkpoint_reads_everywhere(good: Path, compose_train: Any) -> None:
    trained_model.load(good)
    read_for_inspect(good, compose_train)
    point = resume.resolve(str(good), compose_train(), good.parent / "run", make_net().block_names, 3)
    assert point is not None and point.epoch == 1


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
@pytest.mark.parametrize("reader", list(READERS))
def test_every_reader_refuses_a_corrupted_checkpoint(
    corruption: str, reader: str, good: Path, tmp_path: Path, compose_train: Any
) -> None:
    corrupt, fragment = CORRUPTIONS[corruption]
    path = tmp_path / f"{corruption}.ckpt"
    corrupt(good, path)
    with pytest.raises(FtcliError) as err:
        READERS[reader](path, compose_train)
    assert str(path) in str(err.value)
    assert fragment in str(err.value)


def test_a_plain_weights_file_with_nan_is_refused_for_chaining(net: Any, tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    state = {k: v.clone() for k, v in net.state_dict().items()}
    next(v for k, v in state.items() if v.is_floating_point()).fill_(float("inf"))
    torch.save(state, path)
    from ftcli.model.weights_file import read_file

    with pytest.raises(WeightsError, match="NaN/inf"):
        checkpoint_schema.find(read_file(path), path)


# ---------------------------------------------------------------------------- metadata


def with_meta(net: Any, tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    meta = metadata(net)
    change(meta)
    path = tmp_path / "edited.ckpt"
    torch.save(checkpoint(net, meta), path)
    return path


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(meta: dict[str, Any]) -> None:
        target = meta
        *parents, last = key.split(".")
        for parent in parents:
            target = target[parent]
        target[last] = value

    return change


def _one_more_class(meta: dict[str, Any]) -> None:
    meta["class_names"] = [*CLASSES, "extra"]
    meta["num_classes"] = 4


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (_set("model", "resnet18"), ["ftcli.model is str", "not a mapping"]),
        (_set("class_names", "abc"), ["ftcli.class_names is str"]),
        (_set("class_names", [*CLASSES, "extra"]), ["num_classes is 3", "4 class names"]),
        (_one_more_class, ["4 class names", "has 3 outputs"]),
        (_set("class_names", ["a", "a", "b"]), ["repeats a name"]),
        (_set("seed", "abc"), ["ftcli.seed is str"]),
        (_set("transform.crop", -5), ["ftcli.transform", "crop"]),
        (_set("model.kwargs", 5), ["ftcli.model.kwargs"]),
        (_set("model.name", 7), ["ftcli.model.name"]),
        (_set("recipe", ["linear"]), ["ftcli.recipe is list"]),
        (_set("blocks", [1, 2]), ["ftcli.blocks"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_metadata_of_the_wrong_type_or_inconsistent_says_it_came_from_the_checkpoint(
    change: Callable[[dict[str, Any]], None], fragments: list[str], net: Any, tmp_path: Path
) -> None:
    path = with_meta(net, tmp_path, change)
    for reader in (trained_model.load, _inspect):
        with pytest.raises(WeightsError) as err:
            reader(path)
        text = str(err.value)
        assert str(path) in text and "checkpoint" in text
        for fragment in fragments:
            assert fragment in text, text


def _inspect(path: Path) -> None:
    from ftcli.commands.inspect_run import inspect_checkpoint

    inspect_checkpoint(path)


def test_a_head_tensor_of_the_wrong_shape_is_named(net: Any, tmp_path: Path) -> None:
    saved = checkpoint(net)
    name = next(k for k in saved["state_dict"] if k.startswith("model.blocks.head.") and k.endswith("weight"))
    saved["state_dict"][name] = torch.zeros(len(CLASSES), 100)  # right outputs, wrong input features
    path = tmp_path / "shape.ckpt"
    torch.save(saved, path)
    with pytest.raises(WeightsError, match="do not fit") as err:
        trained_model.load(path)
    assert str(path) in str(err.value)


def test_kwargs_the_builder_does_not_take_say_they_came_from_the_checkpoint(net: Any, tmp_path: Path) -> None:
    path = with_meta(net, tmp_path, _set("model.kwargs", {"bogus_arg": 1}))
    with pytest.raises(WeightsError, match="metadata describes cannot be rebuilt") as err:
        trained_model.load(path)
    assert "bogus_arg" in str(err.value)


def test_a_damaged_resume_checkpoint_epoch_is_named(net: Any, tmp_path: Path, compose_train: Any) -> None:
    saved = checkpoint(net)
    saved["epoch"] = "three"
    path = tmp_path / "last.ckpt"
    torch.save(saved, path)
    with pytest.raises(FtcliError, match="epoch is 'three'"):
        resume.resolve(str(path), compose_train(), tmp_path / "run", net.block_names, len(CLASSES))


def test_a_resume_checkpoint_with_a_non_finite_optimizer_state_is_refused(
    net: Any, tmp_path: Path, compose_train: Any
) -> None:
    saved = checkpoint(net)
    moments = {0: {"exp_avg": torch.tensor([0.1, float("nan")]), "step": torch.tensor(4.0)}}
    saved["optimizer_states"] = [{"state": moments, "param_groups": [{"lr": float("inf"), "params": [0]}]}]
    path = tmp_path / "last.ckpt"
    torch.save(saved, path)
    with pytest.raises(WeightsError, match="optimizer state holds NaN/inf in 2 value") as err:
        resume.resolve(str(path), compose_train(), tmp_path / "run", net.block_names, len(CLASSES))
    assert "optimizer_states[0].state.0.exp_avg" in str(err.value) and f"model.weights={path}" in str(
        err.value
    )
