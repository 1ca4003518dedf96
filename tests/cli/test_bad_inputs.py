"""Every bad input gets a clear error: one table of bad command lines, each run as a user runs it.

For each row, ``ftcli`` runs in a folder that already holds an earlier run, and must exit 2 with a
short message that names the problem (and the valid names, where names are involved), print no
Python traceback, and leave the earlier run exactly as it was. Rows fail before training, so they
run in the test process (helpers/cli_inprocess.py: ``ftcli.cli.main`` with the subprocess's
environment, cwd, exit code and separate stdout/stderr), not paying ``import torch`` each;
one row runs as a real subprocess too (FTCLI_DEBUG's traceback, marked slow).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import SMALL_SPLITS, run_cli
from helpers.leaky_images import copied_into_val
from helpers.nets import make_net

FAST = [
    "model=resnet18",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "print_config=false",
    "data.image_size=32",
    "model.weights=null",
]
DIGITS = ["data=digits", "data.per_class=5", *SMALL_SPLITS]
EARLIER = Path("outputs") / "2020-01-01" / "00-00-00-000000"  # an earlier run in the cwd
MAX_MESSAGE_LINES = 5


# ---------------------------------------------------------------------------- what the rows set up


def image_tree(root: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 6) -> Path:
    """``root/<class>/<i>.png``: tiny 16x16 images."""
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (16, 16), (40 * i, 120 * c, 200)).save(root / name / f"{i}.png")
    return root


def loose_images(tmp: Path) -> None:
    (tmp / "images").mkdir()
    for i in range(3):
        Image.new("RGB", (16, 16), (i, 0, 0)).save(tmp / "images" / f"{i}.png")


def empty_class_folder(tmp: Path) -> None:
    (image_tree(tmp / "images") / "empty").mkdir()


def one_class(tmp: Path) -> None:
    image_tree(tmp / "images", classes=("cat",))


def not_an_image(tmp: Path) -> None:
    # "[raw]" would vanish if messages were printed as rich markup
    image_tree(tmp / "images", classes=("cat", "dog [raw]"))
    (tmp / "images" / "dog [raw]" / "notes.jpg").write_text("this is not a JPEG")


def manifest(columns: str, rows: list[str]) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        image_tree(tmp / "images")
        (tmp / "labels.csv").write_text("\n".join([columns, *rows]) + "\n")

    return write


GOOD_ROWS = [f"images/{c}/{i}.png,{c}" for c in ("cat", "dog") for i in range(6)]


def resnet18_state(tmp: Path) -> dict[str, torch.Tensor]:
    from ftcli.model.backbones import build_torchvision

    torch.manual_seed(0)
    return build_torchvision("resnet18", None).state_dict()


def truncated_checkpoint(tmp: Path) -> None:
    torch.save(resnet18_state(tmp), tmp / "whole.ckpt")
    data = (tmp / "whole.ckpt").read_bytes()
    (tmp / "truncated.ckpt").write_bytes(data[: len(data) // 2])


def damaged_safetensors(tmp: Path) -> None:
    """resnet18 weights written by ftcli (with their checksum), then one byte of a tensor changed."""
    from ftcli.model.safetensors_checksum import save

    path = save(resnet18_state(tmp), tmp / "r18.safetensors")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def text_file_as_weights(tmp: Path) -> None:
    (tmp / "weights.pt").write_text("epoch,loss\n1,0.5\n")


def other_architecture(tmp: Path) -> None:
    from ftcli.model.backbones import build_torchvision

    torch.save(build_torchvision("mobilenet_v3_small", None).state_dict(), tmp / "mobilenet.pth")


class Exploit:
    """Unpickling this creates the file ``marker``: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def code_running_pickle(tmp: Path) -> None:
    payload = {"state_dict": resnet18_state(tmp), "extra": Exploit(tmp / "pwned")}
    torch.save(payload, tmp / "evil.ckpt")  # tests/test_weights.py shows an unsafe load does run it


def stored_config_with_code_target(tmp: Path) -> None:
    """An ftcli checkpoint whose stored model config names os.system as a _target_."""
    net = make_net("resnet18", num_classes=2)
    state = {f"model.{k}": v for k, v in net.state_dict().items()}
    meta = {
        "num_classes": 2,
        "class_names": ["a", "b"],
        "model": {"name": "resnet18", "_target_": "os.system", "_args_": [f"touch {tmp / 'pwned'}"]},
    }
    torch.save({"state_dict": state, "ftcli": meta}, tmp / "targeted.ckpt")


def torch_home(tmp: Path) -> None:
    (tmp / "torch_home").mkdir()


def read_only_folder(tmp: Path) -> None:
    (tmp / "ro").mkdir()
    (tmp / "ro").chmod(0o555)


def earlier_sweep(tmp: Path) -> None:
    (tmp / "sweep" / "0" / "checkpoints").mkdir(parents=True)
    (tmp / "sweep" / "0" / "checkpoints" / "last.ckpt").write_bytes(b"earlier sweep job")
    (tmp / "sweep" / "multirun.yaml").write_text("hydra: {}\n")


# ---------------------------------------------------------------------------- the table


def plain_state_dict(tmp: Path) -> None:
    torch.save({"weight": torch.zeros(2, 2)}, tmp / "plain.pt")


@dataclass
class Row:
    """One bad command line: ``ftcli <command> <FAST> <args>`` and the fragments its message must hold.

    ``{tmp}`` in args, fragments and env stands for the test's folder (the cwd of the run).
    """

    id: str
    args: list[str]
    expected: list[str]
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    command: str = "train"
    fast_args: bool = True
    root_skips: bool = False  # root ignores permission bits


ROWS = [
    # names: each lists the valid ones
    Row("unknown-model", ["model=resnet19"], ["Unknown model 'resnet19'", "resnet18", "resnet50"]),
    Row("unknown-recipe", ["recipe=linaer"], ["Unknown recipe 'linaer'", "linear", "mlp", "truncate"]),
    Row("unknown-strategy", ["strategy=fine"], ["Unknown strategy 'fine'", "feature_extraction", "full"]),
    Row("unknown-data", ["data=mnits"], ["Unknown data 'mnits'", "digits", "imagefolder", "csv", "mnist"]),
    Row("unknown-trainer", ["trainer=tpu"], ["Unknown trainer 'tpu'", "cpu", "ddp", "gpu", "default"]),
    Row("unknown-optimizer", ["optimizer=adam"], ["Unknown optimizer 'adam'", "adamw", "sgd"]),
    Row("unknown-scheduler", ["scheduler=step"], ["Unknown scheduler 'step'", "cosine", "none"]),
    Row(
        "unknown-model-name",
        [*DIGITS, "model.name=resnet19"],
        ["model.name=resnet19", "resnet18", "convnext_tiny"],
    ),
    Row(
        "unknown-optimizer-name",
        [*DIGITS, "optimizer.name=adam"],
        ["optimizer.name=adam", "adamw, sgd"],
    ),
    Row(
        "unknown-command",
        ["model=resnet18"],
        ["frobnicate", "train", "inspect", "ls", "ftcli --help"],
        command="frobnicate",
        fast_args=False,
    ),
    # Hydra's own errors: exit 2 and a short message, not Hydra's exit 1
    Row("hydra-unknown-key", ["trainer.foo=1"], ["trainer.foo", "+trainer.foo=1", "--cfg job"]),
    Row("hydra-override-syntax", ["trainer.max_epochs=[1,"], ["[1,", "override_grammar"]),
    Row("hydra-multirun-with-cfg", ["-m", "--cfg", "job"], ["Only one of", "--multirun", "--cfg"]),
    # types and ranges
    Row(
        "trainer-max-epochs-type",
        [*DIGITS, "trainer.max_epochs=abc"],
        ["trainer.max_epochs='abc'", "whole number", "trainer.max_epochs=10"],
    ),
    # Lightning's pass-through keys: refused before the Trainer starts, the valid values listed
    Row(
        "trainer-devices-zero",
        [*DIGITS, "trainer.devices=0"],
        ["trainer.devices=0 is not valid", "auto, -1 (all), a number of devices >= 1", "trainer.devices=1"],
    ),
    Row(
        "trainer-strategy-unknown",
        [*DIGITS, "trainer.strategy=dpp"],
        ["trainer.strategy='dpp' is not valid", "auto, ddp,", "ddp_spawn", "fsdp"],
    ),
    Row(
        "trainer-precision-unknown",
        [*DIGITS, "trainer.precision=fp8"],
        ["trainer.precision='fp8' is not valid", "auto, 32-true, 16-mixed, bf16-mixed", "bf16"],
    ),
    Row(
        "trainer-max-time-format",
        [*DIGITS, "trainer.max_time=12h"],
        ["trainer.max_time='12h' is not valid", "DD:HH:MM:SS", "trainer.max_time=00:12:00:00"],
    ),
    Row(
        "trainer-gradient-clip-algorithm",
        [*DIGITS, "trainer.gradient_clip_algorithm=l2"],
        ["trainer.gradient_clip_algorithm='l2' is not valid", "norm or value", "or null"],
    ),
    Row("strategy-n-negative", [*DIGITS, "strategy.n=-1"], ["strategy.n=-1", "out of range", "stage4"]),
    Row(
        "strategy-n-too-large",
        [*DIGITS, "strategy=last_layers", "strategy.n=99"],
        ["strategy.n=99", "stem", "stage4", "ftcli inspect"],
    ),
    # data on disk
    Row("data-root-unset", ["data=imagefolder"], ["data.root is required", "one sub-folder per class"]),
    Row(
        "data-root-missing",
        ["data=imagefolder", "data.root={tmp}/no_such_folder"],
        ["data.root={tmp}/no_such_folder", "does not exist", "one sub-folder per class"],
    ),
    Row(
        "data-root-is-a-file",
        ["data=imagefolder", "data.root={tmp}/notes.txt"],
        ["data.root={tmp}/notes.txt", "is a file, not a folder"],
    ),
    Row(
        "no-class-folders",
        ["data=imagefolder", "data.root={tmp}/images"],
        ["{tmp}/images has no class folders", "holds 3 image(s) directly", "one folder per class"],
        setup=loose_images,
    ),
    Row(
        "class-folder-without-images",
        ["data=imagefolder", "data.root={tmp}/images"],
        ["{tmp}/images/empty", "holds no images", "remove the folder"],
        setup=empty_class_folder,
    ),
    Row(
        "only-one-class",
        ["data=imagefolder", "data.root={tmp}/images"],
        ["only one class folder ('cat')", "at least 2"],
        setup=one_class,
    ),
    Row(
        "not-an-image",
        ["data=imagefolder", "data.root={tmp}/images"],
        ["{tmp}/images/dog [raw]/notes.jpg", "unreadable", "data.on_bad_image=skip"],
        setup=not_an_image,
    ),
    Row("manifest-unset", ["data=csv"], ["data.manifest is required", "data.manifest=/path/to/labels.csv"]),
    Row(
        "manifest-missing-column",
        ["data=csv", "data.manifest={tmp}/labels.csv"],
        ["lacks the column(s) path", "columns found: 'file', 'label'", "header"],
        setup=manifest("file,label", [r.replace("images/", "") for r in GOOD_ROWS]),
    ),
    Row(
        "manifest-missing-file",
        ["data=csv", "data.manifest={tmp}/labels.csv"],
        ["1 file(s) listed in {tmp}/labels.csv do not exist", "{tmp}/images/cat/gone.png", "data.root"],
        setup=manifest("path,label", [*GOOD_ROWS, "images/cat/gone.png,cat"]),
    ),
    # weights
    Row(
        "weights-missing",
        [*DIGITS, "model.weights={tmp}/no_such.ckpt"],
        ["model.weights={tmp}/no_such.ckpt: no such file", "model.weights=null"],
    ),
    Row(
        "weights-truncated",
        [*DIGITS, "model.weights={tmp}/truncated.ckpt"],
        ["{tmp}/truncated.ckpt is not a readable weights file", "truncated"],
        setup=truncated_checkpoint,
    ),
    Row(
        "weights-not-a-checkpoint",
        [*DIGITS, "model.weights={tmp}/weights.pt"],
        ["{tmp}/weights.pt is not a readable weights file", "state_dict"],
        setup=text_file_as_weights,
    ),
    Row(
        "weights-other-architecture",
        [*DIGITS, "model.weights={tmp}/mobilenet.pth"],
        [
            "{tmp}/mobilenet.pth does not fit the resnet backbone",
            "0/120 tensors match",
            "different architecture",
        ],
        setup=other_architecture,
    ),
    Row(
        "weights-pickle-that-runs-code",
        [*DIGITS, "model.weights={tmp}/evil.ckpt"],
        ["Refused to load {tmp}/evil.ckpt", "could run code"],
        setup=code_running_pickle,
    ),
    Row(
        "weights-stored-config-targets-code",
        [*DIGITS, "model.weights={tmp}/targeted.ckpt"],
        [
            "Refused the config stored in {tmp}/targeted.ckpt",
            "model._target_ is 'os.system'",
            "could run code",
        ],
        setup=stored_config_with_code_target,
    ),
    Row(
        "weights-uncached-offline",
        [*DIGITS, "model.weights=DEFAULT"],
        ["{tmp}/torch_home/hub/checkpoints", "model.weights=null"],
        setup=torch_home,
        env={"TORCH_HOME": "{tmp}/torch_home"},
    ),
    # resume
    Row(
        "resume-path-missing",
        [*DIGITS, "resume={tmp}/gone/last.ckpt"],
        ["no checkpoint at {tmp}/gone/last.ckpt", "resume=last"],
    ),
    Row(
        "resume-not-a-training-checkpoint",
        [*DIGITS, "resume={tmp}/plain.pt"],
        ["{tmp}/plain.pt is not a training checkpoint", "model.weights=PATH"],
        setup=plain_state_dict,
    ),
    Row(
        "resume-last-finds-nothing",
        [*DIGITS, "resume=last"],
        ["resume=last: none of the", "has this config", "resume=outputs/"],
    ),
    # outputs
    Row(
        "output-dir-below-a-file",
        [*DIGITS, "hydra.run.dir={tmp}/notes.txt/run"],
        ["Cannot write the run directory {tmp}/notes.txt/run", "hydra.run.dir=PATH"],
    ),
    Row(
        "output-dir-read-only",
        [*DIGITS, "hydra.run.dir={tmp}/ro/run"],
        ["Cannot write the run directory {tmp}/ro/run", "Permission denied", "hydra.run.dir=PATH"],
        setup=read_only_folder,
        root_skips=True,
    ),
    Row(
        "output-dir-holds-a-run",
        [*DIGITS, f"hydra.run.dir={{tmp}}/{EARLIER}"],
        [f"hydra.run.dir={{tmp}}/{EARLIER} already holds a run", "checkpoints/", f"{{tmp}}/{EARLIER}-1"],
    ),
    Row(
        "sweep-dir-holds-a-sweep",
        ["-m", *DIGITS, "strategy=full,scratch", "hydra.sweep.dir={tmp}/sweep"],
        ["hydra.sweep.dir={tmp}/sweep already holds a sweep", "{tmp}/sweep-1"],
        setup=earlier_sweep,
    ),
    Row(
        "run-dir-path-too-long",
        [*DIGITS, "hydra.run.dir={tmp}/" + "a" * 5000],
        [
            "hydra.run.dir={tmp}/aaaa",
            "(5",
            "characters) is not valid: the path is too long for the file system",
        ],
    ),
    Row(
        "ckpt-path-too-long",
        ["ckpt={tmp}/" + "a" * 5000],
        ["ckpt={tmp}/aaaa", "characters) is not valid: the path is too long for the file system"],
        command="eval",
        fast_args=False,
    ),
    # the strings of a list or sweep
    Row(
        "non-ascii-list-item-unquoted",
        [*DIGITS, "data.classes=[é,b]"],
        ["data.classes=[é,b] is not valid", "outside ASCII must be quoted", """'data.classes=["é",b]'"""],
    ),
    Row(
        "weights-safetensors-damaged",
        [*DIGITS, "model.weights={tmp}/r18.safetensors"],
        ["{tmp}/r18.safetensors is damaged: the SHA-256 of its tensors differs", "Use another copy"],
        setup=damaged_safetensors,
    ),
    # leaked samples
    Row(
        "on-leak-unknown",
        [*DIGITS, "data.on_leak=ignore"],
        ["data.on_leak='ignore' is not valid", "one of warn, error, drop"],
    ),
    Row(
        "val-images-copied-from-train",
        ["data=imagefolder", "data.root={tmp}/images", "data.on_leak=error"],
        [
            "5 val/test images are exact copies",
            "{tmp}/images/val/cat/copy0.png = {tmp}/images/train/cat/0.png",
        ],
        setup=lambda tmp: copied_into_val(tmp / "images"),
    ),
]


# ---------------------------------------------------------------------------- the checks


def earlier_run(cwd: Path) -> dict[Path, bytes]:
    """An earlier run (and a file) in the cwd; returns every file's bytes, to compare afterwards."""
    run = cwd / EARLIER
    (run / "checkpoints").mkdir(parents=True)
    (run / ".hydra").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(os.urandom(256))
    (run / "summary.json").write_text('{"best_val_acc": 0.9}')
    (run / ".hydra" / "config.yaml").write_text("seed: 42\n")
    (run / "train.log").write_text("earlier log\n")
    (cwd / "notes.txt").write_text("my notes\n")
    return snapshot(run) | {cwd / "notes.txt": (cwd / "notes.txt").read_bytes()}


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fill(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp))


def run_row(row: Row, tmp: Path, env: dict[str, str] | None = None, subprocess: bool = False) -> Any:
    """The row's command line in ``tmp``: in the test process, or (``subprocess``) as a process of its own."""
    if row.setup is not None:
        row.setup(tmp)
    args = [*(FAST if row.fast_args else []), *(fill(a, tmp) for a in row.args)]
    row_env = {k: fill(v, tmp) for k, v in row.env.items()}
    run = run_cli if subprocess else run_cli_inprocess
    return run(row.command, *args, cwd=tmp, env={**row_env, **(env or {})})


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input_exits_2_with_a_short_message(row: Row, tmp_path: Path) -> None:
    if row.root_skips and hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root can write to read-only folders (covered by output-dir-below-a-file)")
    before = earlier_run(tmp_path)

    result = run_row(row, tmp_path)

    text = result.stdout + result.stderr
    assert result.returncode == 2, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert "???" not in text, "an unset value must be named, not shown as ???"
    for fragment in row.expected:
        assert fill(fragment, tmp_path) in text, f"{fill(fragment, tmp_path)!r} not in:\n{text[-3000:]}"
    message = result.stderr[result.stderr.index("error:") :].strip().splitlines()
    assert len(message) <= MAX_MESSAGE_LINES, "\n".join(message)
    after = snapshot(tmp_path / EARLIER) | {tmp_path / "notes.txt": (tmp_path / "notes.txt").read_bytes()}
    assert after == before, "an earlier run (or file) in the cwd was changed"
    assert not (tmp_path / "pwned").exists(), "a weights file ran code"


@pytest.mark.parametrize(
    "row_id",
    ["data-root-missing", "hydra-unknown-key"],
)
def test_ftcli_debug_shows_the_traceback(row_id: str, tmp_path: Path) -> None:
    row = next(row for row in ROWS if row.id == row_id)
    result = run_row(row, tmp_path, env={"FTCLI_DEBUG": "1"})

    assert_debug_traceback(result, row_id)


@pytest.mark.slow
def test_ftcli_debug_shows_the_traceback_in_a_real_process(tmp_path: Path) -> None:
    """The same through the ``ftcli`` entry point in a process of its own (stderr of a real process)."""
    row = next(row for row in ROWS if row.id == "data-root-missing")
    result = run_row(row, tmp_path, env={"FTCLI_DEBUG": "1"}, subprocess=True)

    assert_debug_traceback(result, row.id)


def assert_debug_traceback(result: Any, row_id: str) -> None:
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" in text, text[-3000:]
    assert ("DataError" if row_id == "data-root-missing" else "ConfigCompositionException") in text


def test_the_table_covers_at_least_twenty_distinct_bad_inputs() -> None:
    assert len({row.id for row in ROWS}) == len(ROWS) >= 20
