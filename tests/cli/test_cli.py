"""The CLI as a user runs it: `ftcli train|inspect`, its run directories and its errors.

Training runs are tiny (digits, 5 images per class, 32 px, one epoch, random init), run as subprocesses
and marked slow; the tests that only read a finished run share the session's digits sweep (conftest).
Bad input must stop before training with exit code 2, a message naming the problem and what to
type instead, and no Python traceback; those command lines (and inspect's dry runs) run in the test
process (helpers/cli_inprocess.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import SMALL_SPLITS, assert_ok, assert_user_error, output, run_cli
from helpers.leaky_images import copied_into_val
from helpers.shared_runs import DIGITS_SWEEP_CLASSES, TrainedSweep

FAST = [
    "model=resnet18",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "print_config=false",
    "data.image_size=32",
]
DIGITS = ["data=digits", "data.per_class=5", *SMALL_SPLITS]
SOURCE_CLASSES = DIGITS_SWEEP_CLASSES  # job 0 of the session's digits sweep (strategy last_layers)
TARGET_CLASSES = [7, 8, 9, 0, 1]  # new classes and some of the source's, fewer than the source's


# ---------------------------------------------------------------------------- helpers


def command(
    name: str,
    tmp_path: Path,
    *overrides: str,
    data: list[str] = DIGITS,
    weights: str = "null",
    multirun: bool = False,
) -> list[str]:
    """The arguments of a fast ``ftcli <name>`` whose run (or sweep) directory is under tmp_path."""
    dirs = [f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    # Hydra's argparse takes the overrides as one positional list: flags must come before them.
    flags = ["-m"] if multirun else []
    return [name, *flags, *FAST, *data, f"model.weights={weights}", *dirs, *overrides]


def classes_override(classes: list[int]) -> str:
    return f"data.classes=[{','.join(map(str, classes))}]"


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def make_image_tree(root: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 6) -> Path:
    """``root/<class>/<i>.png``: tiny 16x16 images, a colour per class and image."""
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (16, 16), (40 * i, 120 * c, 200)).save(folder / f"{i}.png")
    return root


def imagefolder(root: Path) -> list[str]:
    return ["data=imagefolder", f"data.root={root}"]


# ---------------------------------------------------------------------------- training runs


@pytest.fixture
def source_run(digits_sweep: TrainedSweep) -> Path:
    """A training run on digits 0-6 (strategy last_layers): job 0 of the session's sweep."""
    return digits_sweep.sweep / "0"


@pytest.mark.slow
def test_train_writes_checkpoints_metrics_summary_and_config(source_run: Path) -> None:
    for name in ("checkpoints/best.ckpt", "checkpoints/last.ckpt", "metrics.csv", ".hydra/config.yaml"):
        assert (source_run / name).is_file(), f"{name} missing in {sorted(source_run.rglob('*'))}"

    summary = json.loads((source_run / "summary.json").read_text())
    assert 0.0 <= summary["test_acc"] <= 1.0
    assert 0 < summary["trainable_params"] < summary["total_params"]  # last_layers freezes the stem
    assert summary["strategy"] == "last_layers"
    assert summary["best_checkpoint"] == str(source_run / "checkpoints" / "best.ckpt")
    assert summary["last_checkpoint"] == str(source_run / "checkpoints" / "last.ckpt")

    with open(source_run / "metrics.csv", newline="") as f:
        header = next(csv.reader(f))
    assert "val/acc" in header

    config = OmegaConf.load(source_run / ".hydra" / "config.yaml")
    assert list(config.data.classes) == SOURCE_CLASSES


@pytest.mark.slow
def test_checkpoint_loads_weights_only_and_describes_itself(source_run: Path) -> None:
    checkpoint = load_checkpoint(source_run / "checkpoints" / "best.ckpt")

    meta = checkpoint["ftcli"]
    assert meta["class_names"] == [str(c) for c in SOURCE_CLASSES]
    assert meta["num_classes"] == len(SOURCE_CLASSES)
    assert meta["model"]["name"] == "resnet18"
    assert meta["recipe"]["name"] == "linear"
    assert meta["strategy"]["name"] == "last_layers"
    assert meta["transform"]["crop"] == 32
    assert checkpoint["state_dict"]["model.blocks.head.classifier.0.weight"].shape[0] == len(SOURCE_CLASSES)


@pytest.mark.slow
def test_chaining_starts_from_an_ftcli_checkpoint_with_new_classes(source_run: Path, tmp_path: Path) -> None:
    source_ckpt = source_run / "checkpoints" / "best.ckpt"
    result = run_cli_inprocess(
        *command(
            "train",
            tmp_path,
            classes_override(TARGET_CLASSES),
            "strategy=feature_extraction",
            weights=str(source_ckpt),
        ),
        cwd=tmp_path,
    )
    assert_ok(result)

    target = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.ckpt")
    source = load_checkpoint(source_ckpt)
    assert target["ftcli"]["num_classes"] == len(TARGET_CLASSES)
    assert target["ftcli"]["class_names"] == [str(c) for c in TARGET_CLASSES]
    assert target["state_dict"]["model.blocks.head.classifier.0.weight"].shape[0] == len(TARGET_CLASSES)
    # feature_extraction freezes every backbone block (BatchNorm statistics included): they must
    # still be the source run's tensors, bit for bit.
    backbone = [k for k in source["state_dict"] if k.startswith("model.blocks.") and ".head." not in k]
    assert any(k.startswith("model.blocks.stem") for k in backbone)
    for key in backbone:
        assert torch.equal(target["state_dict"][key], source["state_dict"][key]), key
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["weights"] == str(source_ckpt)


@pytest.mark.slow
def test_sweep_runs_one_job_per_strategy_and_prints_a_table(digits_sweep: TrainedSweep) -> None:
    """The session's sweep (``strategy=last_layers,full``, tests/helpers/shared_runs.py)."""
    sweep = digits_sweep.sweep
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name for p in jobs] == ["0", "1"]
    summaries = {}
    for job in jobs:
        assert (job / "checkpoints" / "best.ckpt").is_file()
        assert (job / "checkpoints" / "last.ckpt").is_file()
        summary = json.loads((job / "summary.json").read_text())
        summaries[summary["strategy"]] = summary
    assert set(summaries) == {"last_layers", "full"}
    assert summaries["last_layers"]["trainable_params"] < summaries["full"]["trainable_params"]
    cwd = digits_sweep.cwd
    assert not (cwd / "outputs").exists() and not (cwd / "multirun").exists()

    table = digits_sweep.stdout[digits_sweep.stdout.index("sweep ·") :]
    assert "2 runs" in table
    assert "print_config" not in table, "overrides shared by every job belong in no row"


@pytest.mark.slow
def test_ddp_sweep_runs_each_job_once_with_two_cpu_ranks(tmp_path: Path) -> None:
    """Lightning re-runs the command line for rank 1: it must re-run the job, never the sweep."""
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    args = command("train", tmp_path, *ddp, "strategy=feature_extraction,full", multirun=True)
    result = run_cli(*args, cwd=tmp_path)
    assert_ok(result)

    jobs = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    assert output(result).count("Launching 2 jobs") == 1
    for job in jobs:
        job_dir = tmp_path / "sweep" / job
        assert sorted(p.name for p in (job_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
        assert (job_dir / "summary.json").is_file()
        assert (job_dir / "train_ddp_process_1.log").is_file(), "rank 1 ran inside the job's directory"
    assert output(result).count("Initializing distributed: GLOBAL_RANK: 1") == 2
    assert result.stdout.count("ftcli run ·") == 2, "one summary per job, printed by rank 0 only"
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()


@pytest.mark.slow
def test_ddp_text_run_writes_one_run_dir_one_checkpoint_set_and_one_summary(
    tmp_path: Path, tiny_llama: str
) -> None:
    """Two CPU ranks (gloo) in the default, timestamped run dir: rank 1 joins rank 0's directory.

    A text run (the tiny Llama, ``last_layers`` on the cached hidden states of its fixed blocks), so
    DDP is exercised on text too; the DDP sweep above trains images."""
    pytest.importorskip("transformers")
    from helpers.text_runs import write_reviews

    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    text = [
        f"model.name={tiny_llama}", "model.weights=null", "data=text_csv",
        f"data.root={write_reviews(tmp_path / 'reviews.csv')}", "data.batch_size=8",
        "strategy=last_layers", "strategy.n=1", f"data.feature_cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    quick = ["trainer=cpu", "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "print_config=false"]
    result = run_cli("train", *quick, *text, *ddp, cwd=tmp_path)
    assert_ok(result)
    assert "feature cache: on · fixed blocks stem-stage1" in result.stdout

    runs = [p for p in (tmp_path / "outputs").glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    run = runs[0]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert (run / "summary.json").is_file() and (run / "train_ddp_process_1.log").is_file()
    assert result.stdout.count("ftcli run ·") == 1
    assert output(result).count("Initializing distributed: GLOBAL_RANK: 1") == 1


@pytest.mark.slow
def test_two_nodes_of_one_process_each_train_one_run(tmp_path: Path) -> None:
    """``trainer.num_nodes=2``: two processes started as a multi-node launcher starts them (torchrun-style
    MASTER_ADDR/PORT, WORLD_SIZE, NODE_RANK, LOCAL_RANK; SLURM sets the same through SLURMEnvironment), CPU
    and gloo on this one machine. Both join one process group and train the same steps; node 0 writes
    the one run folder, its checkpoints and summary; node 1 writes nothing of its own."""
    import os
    import socket
    import subprocess
    import sys

    from helpers.cli_runner import QUIET_ENV

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = tmp_path / "run"
    nodes = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.num_nodes=2"]
    command = [
        sys.executable, "-m", "ftcli.cli", "train", *FAST, *DIGITS, "model.weights=null", *nodes,
        f"hydra.run.dir={run}",
    ]  # fmt: skip
    launched = []
    for node in ("0", "1"):
        env = {
            **os.environ, **QUIET_ENV, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
            "WORLD_SIZE": "2", "NODE_RANK": node, "LOCAL_RANK": "0",
        }  # fmt: skip
        launched.append(
            subprocess.Popen(
                command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outputs = [process.communicate(timeout=600)[0] for process in launched]
    assert [process.returncode for process in launched] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in outputs[0] and "GLOBAL_RANK: 1, MEMBER: 2/2" in outputs[1]
    # both exit 0 only when every collective (gradient all-reduce each step) met its peer: the same steps
    assert "`Trainer.fit` stopped: `max_epochs=1` reached." in outputs[0]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert json.loads((run / "summary.json").read_text())["epochs"] == 1
    assert "ftcli run ·" in outputs[0] and "ftcli run ·" not in outputs[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], "node 1 made no folder of its own"


def test_inspect_prints_the_block_plan_and_writes_nothing(tmp_path: Path) -> None:
    result = run_cli_inprocess(
        "inspect", *FAST, *DIGITS, "model.weights=null", "strategy=last_layers", cwd=tmp_path
    )
    assert_ok(result)

    rows = {}
    for line in result.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if cells and cells[0] in ("stem", "stage1", "stage2", "stage3", "stage4", "head"):
            rows[cells[0]] = line
    assert list(rows) == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    for block in ("stem", "stage1", "stage2", "stage3"):
        assert "frozen" in rows[block] and "trainable" not in rows[block], rows[block]
    for block in ("stage4", "head"):
        assert "trainable" in rows[block], rows[block]
    assert list(tmp_path.iterdir()) == [], "inspect must not write outputs/ (or anything) into the cwd"


@pytest.mark.slow
def test_image_that_fails_to_decode_during_training_stops_cleanly(tmp_path: Path) -> None:
    # A valid PNG header with the pixel data cut off passes the header check and fails in a
    # DataLoader worker: the error must still come out as a message naming the file.
    root = make_image_tree(tmp_path / "images")
    full = root / "cat" / "big.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(full)
    full.write_bytes(full.read_bytes()[: full.stat().st_size // 2])

    result = run_cli_inprocess(*command("train", tmp_path, data=imagefolder(root)), cwd=tmp_path)

    assert_user_error(result, str(full), "Cannot decode")


# ---------------------------------------------------------------------------- bad input


@pytest.mark.slow
def test_skipped_images_are_counted_and_reported_at_the_end(tmp_path: Path) -> None:
    root = make_image_tree(tmp_path / "images")
    bad = [root / "cat" / "notes.jpg", root / "dog" / "cut.png"]
    bad[0].write_text("not a JPEG")
    bad[1].write_bytes(b"\x89PNG\r\n")
    result = run_cli_inprocess(
        *command("train", tmp_path, "data.on_bad_image=skip", data=imagefolder(root)), cwd=tmp_path
    )
    assert_ok(result)

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert sorted(summary["skipped_images"]) == sorted(map(str, bad))
    table = result.stdout[result.stdout.index("ftcli run ·") :]
    assert "skipped images" in table and "2 unreadable (data.on_bad_image=skip)" in table


# ---------------------------------------------------------------------------- leaked images


@pytest.fixture(scope="module")
def leaky_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """train/ and val/ folders, 5 training images copied into val/ (helpers/leaky_images.py)."""
    root = tmp_path_factory.mktemp("leaky") / "images"
    return root, copied_into_val(root)


def test_inspect_reports_copied_val_images_with_their_paths(
    leaky_folder: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    root, copies = leaky_folder
    result = run_cli_inprocess(*command("inspect", tmp_path, data=imagefolder(root)), cwd=tmp_path)
    assert_ok(result)
    text = output(result)
    assert "data leak: 5 val/test images are exact copies (file bytes): 5 val in train" in text
    assert f"{copies[0]} = {root / 'train' / 'cat' / '0.png'}" in text and "data.on_leak=drop leaves" in text


def test_on_leak_error_stops_before_training(leaky_folder: tuple[Path, list[Path]], tmp_path: Path) -> None:
    root, copies = leaky_folder
    result = run_cli_inprocess(
        *command("train", tmp_path, "data.on_leak=error", data=imagefolder(root)), cwd=tmp_path
    )
    assert_user_error(result, "5 val/test images are exact copies", str(copies[0]), "data.on_leak=drop")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_train_drops_copied_val_images_and_records_them(
    leaky_folder: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    root, copies = leaky_folder
    cache = f"data.feature_cache_dir={tmp_path / 'cache'}"
    args = command(
        "train", tmp_path, "data.on_leak=drop", "strategy=feature_extraction", cache, data=imagefolder(root)
    )
    result = run_cli_inprocess(*args, cwd=tmp_path)
    assert_ok(result)
    text = output(result)
    assert "data leak: 5 val/test images are exact copies" in text and str(copies[0]) in text
    assert "dropped (data.on_leak=drop): 5 from val" in text and "train 12 · val 2" in text
    leaks = json.loads((tmp_path / "run" / "summary.json").read_text())["leaks"]
    assert leaks["leaked"] == 5 and leaks["across"] == {"val in train": 5} and leaks["dropped"] == {"val": 5}
    assert leaks["checked_by"] == "file bytes" and leaks["samples_checked"] == 19
    assert "leaked samples" in result.stdout and "dropped 5 from val" in result.stdout
    assert (
        "data leak" in (tmp_path / "run" / "train.log").read_text()
    )  # through the logger, into the run's log


# One table of bad command lines (names, types, data, weights, outputs): tests/test_bad_inputs.py


def test_failing_sweep_jobs_exit_2_and_are_all_reported(tmp_path: Path) -> None:
    first, second = tmp_path / "missing1", tmp_path / "missing2"
    result = run_cli_inprocess(
        *command("train", tmp_path, data=["data=imagefolder", f"data.root={first},{second}"], multirun=True),
        cwd=tmp_path,
    )

    assert_user_error(result, f"failed {tmp_path / 'sweep' / '0'}", f"failed {tmp_path / 'sweep' / '1'}")
    assert_user_error(result, f"data.root={first}", f"data.root={second}", "2 of 2 jobs failed")
    assert not list((tmp_path / "sweep").glob("*/summary.json"))


def write_user_configs(root: Path) -> Path:
    """A --config-dir with a user strategy and recipe, as the README shows (no code)."""
    (root / "strategy").mkdir(parents=True)
    (root / "recipe").mkdir()
    (root / "strategy" / "top2_slow.yaml").write_text(
        "# Head and last two blocks, backbone at a tenth of the head's rate\n"
        "name: last_layers\nn: 2\nbn: frozen\nbackbone_lr_mult: 0.1\npretrained: true\n"
    )
    (root / "recipe" / "wide_mlp.yaml").write_text(
        "# Two hidden layers\nname: wide_mlp\nn: 0\nhidden: [32, 16]\ndropout: 0.1\nactivation: gelu\n"
    )
    return root


def test_user_config_dir_adds_strategies_and_recipes(tmp_path: Path) -> None:
    user = write_user_configs(tmp_path / "my_configs")
    listed = run_cli_inprocess("ls", "--config-dir", str(user), cwd=tmp_path)
    assert_ok(listed)
    assert "top2_slow" in listed.stdout and "wide_mlp" in listed.stdout
    # overrides before and after the flag: the dispatcher hands Hydra one contiguous run of overrides
    result = run_cli_inprocess(
        "inspect",
        *FAST[:1],
        "strategy=top2_slow",
        "--config-dir",
        str(user),
        "recipe=wide_mlp",
        *DIGITS,
        "model.weights=null",
        cwd=tmp_path,
    )
    assert_ok(result)
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 3}
    assert "frozen" in rows["stage2"] and "trainable" in rows["stage3"] and "trainable" in rows["stage4"]
    assert "1.00e-04" in rows["stage4"] and "1.00e-03" in rows["head"]
    assert "Linear(512->32)" in result.stdout and "GELU" in result.stdout


def test_unknown_user_option_lists_builtin_and_user_names(tmp_path: Path) -> None:
    user = write_user_configs(tmp_path / "my_configs")
    result = run_cli_inprocess("inspect", "--config-dir", str(user), "strategy=top3", cwd=tmp_path)
    assert_user_error(result, "top3", "top2_slow", "last_layers")


def test_vit_with_the_wrong_input_size_says_which_size(tmp_path: Path) -> None:
    result = run_cli_inprocess(
        "inspect", "model=vit_b_16", "model.weights=null", *DIGITS, "data.image_size=32", cwd=tmp_path
    )
    assert_user_error(result, "224x224", "data.image_size=224", "+model.kwargs.image_size=32")
