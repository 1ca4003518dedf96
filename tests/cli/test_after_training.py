"""After training: `ftcli eval`, `predict`, `export`, `report` and the plots, run as a user runs them.

One tiny 2-job sweep (digits 0-6, 5 images per class, 32 px, one epoch, random init) is trained once
for the session (the ``digits_sweep`` fixture, tests/helpers/shared_runs.py); job 0's checkpoint is
the model every command reads back. Each command must agree with what training recorded or with the
model itself, and bad input must end with exit code 2 and a message, never a traceback. The
commands run in the test process (helpers/cli_inprocess.py: no ~8 s of imports each), except the ONNX
export, which runs as a subprocess through the ``ftcli`` entry point as a user runs it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ftcli.errors import ConfigError, DataError

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import assert_ok, assert_user_error, output, run_cli, run_without_heavy_imports
from helpers.shared_runs import DIGITS_SWEEP_CLASSES, HAS_TENSORBOARD, TrainedSweep

CLASSES = DIGITS_SWEEP_CLASSES  # more than 5 classes: eval reports top-5 accuracy too


def assert_png(path: Path) -> None:
    assert path.is_file(), f"{path} missing"
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        assert image.width > 100 and image.height > 100


def digit_images(folder: Path, count: int, labels: list[int] = CLASSES) -> list[Path]:
    """Real 8x8 digits as grayscale PNG files, ``<index>_<digit>.png``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = [i for i, t in enumerate(digits.target) if int(t) in labels][:count]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in keep:
        pixels = np.round(digits.images[i] * (255.0 / 16.0)).astype(np.uint8)
        path = folder / f"{i}_{digits.target[i]}.png"
        Image.fromarray(pixels, mode="L").save(path)
        paths.append(path)
    return paths


@pytest.fixture
def sweep(digits_sweep: TrainedSweep) -> Path:
    """The session's finished 2-job sweep (strategy last_layers, full)."""
    return digits_sweep.sweep


@pytest.fixture
def checkpoint(digits_sweep: TrainedSweep) -> Path:
    return digits_sweep.checkpoint(0)


# ---------------------------------------------------------------------------- training curves


@pytest.mark.slow
def test_every_run_saves_its_training_curves_beside_metrics_csv(sweep: Path) -> None:
    for job in ("0", "1"):
        assert (sweep / job / "metrics.csv").is_file()
        assert_png(sweep / job / "curves.png")


@pytest.mark.slow
@pytest.mark.skipif(
    not HAS_TENSORBOARD, reason="tensorboard is not installed (pip install 'ftcli[tensorboard]')"
)
def test_tensorboard_logger_writes_events_and_keeps_metrics_csv(sweep: Path) -> None:
    assert list((sweep / "0" / "tensorboard").glob("events.out.tfevents.*"))
    with open(sweep / "0" / "metrics.csv", newline="") as f:
        assert "val/acc" in next(csv.reader(f))


# ---------------------------------------------------------------------------- eval


@pytest.mark.slow
def test_eval_accuracy_equals_the_test_accuracy_recorded_by_training(sweep: Path, checkpoint: Path) -> None:
    result = run_cli_inprocess("eval", f"ckpt={checkpoint}", cwd=sweep.parent)
    assert_ok(result)

    out = sweep / "0" / "eval" / "best-digits-test"
    metrics = json.loads((out / "metrics.json").read_text())
    recorded = json.loads((sweep / "0" / "summary.json").read_text())["test_acc"]
    assert metrics["split"] == "test"
    assert metrics["accuracy"] == pytest.approx(recorded, abs=1e-6)
    assert metrics["top5_accuracy"] >= metrics["accuracy"]
    assert 0.0 <= metrics["macro_f1"] <= 1.0
    assert [row["class"] for row in metrics["per_class"]] == [str(c) for c in CLASSES]
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.sum() == metrics["images"] and np.trace(matrix) / matrix.sum() == pytest.approx(recorded)
    with open(out / "confusion_matrix.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][1:] == [str(c) for c in CLASSES] and len(rows) == len(CLASSES) + 1
    assert_png(out / "confusion_matrix.png")
    assert "top-5 accuracy" in result.stdout and "precision" in result.stdout
    assert str(out) in result.stdout


@pytest.mark.slow
def test_eval_on_another_dataset_with_the_same_class_names(checkpoint: Path, tmp_path: Path) -> None:
    root = tmp_path / "digit_folders"
    for digit in CLASSES:
        digit_images(root / str(digit), 6, labels=[digit])
    result = run_cli_inprocess(
        "eval",
        f"ckpt={checkpoint}",
        "data=imagefolder",
        f"data.root={root}",
        "data.image_size=32",
        "data.val_fraction=0.5",
        f"out={tmp_path / 'eval'}",
        cwd=tmp_path,
    )
    assert_ok(result)

    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["split"] == "val" and metrics["data"] == "imagefolder"  # no test split: val
    assert metrics["images"] == 3 * len(CLASSES)


@pytest.mark.slow
def test_eval_on_data_with_other_classes_lists_both_sets(checkpoint: Path, tmp_path: Path) -> None:
    result = run_cli_inprocess("eval", f"ckpt={checkpoint}", "data.classes=[7,8,9]", cwd=tmp_path)

    assert_user_error(result, "different classes", "checkpoint (7): 0, 1, 2, 3, 4, 5, 6", "data (3): 7, 8, 9")


# ---------------------------------------------------------------------------- predict


@pytest.mark.slow
def test_predict_labels_are_the_models_argmax(checkpoint: Path, tmp_path: Path) -> None:
    from ftcli.data.images.transforms import eval_transform
    from ftcli.runs import trained_model as trained

    images = digit_images(tmp_path / "photos", 9)
    (tmp_path / "photos" / "broken.png").write_text("not a PNG")
    result = run_cli_inprocess(
        "predict", f"ckpt={checkpoint}", f"inputs={tmp_path / 'photos'}", "topk=3", "out=preds", cwd=tmp_path
    )
    assert_ok(result)
    assert "broken.png" in output(result) and "unreadable" in output(result)

    with open(tmp_path / "preds" / "predictions.csv", newline="") as f:
        rows = {Path(row["path"]).name: row for row in csv.DictReader(f)}
    assert set(rows) == {p.name for p in images}
    model = trained.load(checkpoint)
    transform = eval_transform(model.transform)
    with torch.no_grad():
        batch = torch.stack([transform(Image.open(p)) for p in images])
        probabilities = torch.softmax(model.net(batch), dim=1)
    for path, probs in zip(images, probabilities, strict=True):
        row = rows[path.name]
        assert row["label"] == model.class_names[int(probs.argmax())]
        assert float(row["probability"]) == pytest.approx(float(probs.max()), abs=1e-5)
        assert float(row["probability"]) >= float(row["probability_2"]) >= float(row["probability_3"])


def test_predict_inputs_folder_glob_file_and_nothing(tmp_path: Path) -> None:
    from ftcli.commands.predict import find_inputs

    for name in ("2.png", "10.png", "notes.txt", "sub/1.jpg"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_bytes(b"")
    folder = [p.relative_to(tmp_path / "in").as_posix() for p in find_inputs(str(tmp_path / "in"))]
    assert folder == ["2.png", "10.png", "sub/1.jpg"]  # image extensions only, numbers in natural order
    assert [p.name for p in find_inputs(str(tmp_path / "in" / "*.png"))] == ["2.png", "10.png"]
    assert find_inputs(str(tmp_path / "in" / "notes.txt")) == [tmp_path / "in" / "notes.txt"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No images found"):
        find_inputs(str(tmp_path / "empty"))


# ---------------------------------------------------------------------------- export


def exported_and_pytorch(checkpoint: Path, batch_size: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    from ftcli.runs import trained_model as trained

    model = trained.load(checkpoint)
    x = torch.randn(batch_size, 3, model.transform.crop, model.transform.crop, generator=torch.Generator())
    with torch.no_grad():
        return x, model.net(x)


@pytest.mark.slow
def test_onnx_export_reproduces_pytorch_with_a_dynamic_batch(checkpoint: Path, tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime", reason="pip install 'ftcli[export]'")
    result = run_cli("export", f"ckpt={checkpoint}", "format=onnx", f"out={tmp_path}", cwd=tmp_path)
    assert_ok(result)
    assert "max |onnx - pytorch|" in result.stdout

    meta = json.loads((tmp_path / "best.onnx.json").read_text())
    assert meta["class_names"] == [str(c) for c in CLASSES]
    assert meta["transform"]["crop"] == 32 and len(meta["transform"]["mean"]) == 3
    assert meta["check"]["max_abs_diff"] <= 1e-4
    x, expected = exported_and_pytorch(checkpoint, batch_size=5)  # exported with 2, checked with 3
    session = onnxruntime.InferenceSession(str(tmp_path / "best.onnx"), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {meta["input"]["name"]: x.numpy()})
    assert np.abs(actual - expected.numpy()).max() <= 1e-4


@pytest.mark.slow
@pytest.mark.filterwarnings(
    "ignore:`torch.jit:FutureWarning"
)  # deprecated upstream, still the format asked for
def test_torchscript_export_reproduces_pytorch(checkpoint: Path, tmp_path: Path) -> None:
    result = run_cli_inprocess(
        "export", f"ckpt={checkpoint}", "format=torchscript", f"out={tmp_path}", cwd=tmp_path
    )
    assert_ok(result)

    extra = {"ftcli.json": ""}
    loaded = torch.jit.load(str(tmp_path / "best.torchscript.pt"), _extra_files=extra)
    assert json.loads(extra["ftcli.json"])["class_names"] == [str(c) for c in CLASSES]
    assert (tmp_path / "best.torchscript.pt.json").is_file()
    x, expected = exported_and_pytorch(checkpoint)
    with torch.no_grad():
        assert (loaded(x) - expected).abs().max() <= 1e-4


# ---------------------------------------------------------------------------- report


@pytest.mark.slow
def test_report_lists_every_job_of_a_sweep_with_its_overrides(sweep: Path) -> None:
    result = run_cli_inprocess("report", str(sweep), "sort=test_acc", cwd=sweep.parent)
    assert_ok(result)
    assert "2 runs" in result.stdout and "last_layers" in result.stdout

    with open(sweep / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    assert {row["run"]: row["differs"] for row in rows} == {"0": "strategy=last_layers", "1": "strategy=full"}
    accuracies = [float(row["test_acc"]) for row in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    for row in rows:
        summary = json.loads((sweep / row["run"] / "summary.json").read_text())
        assert int(row["trainable_params"]) == summary["trainable_params"]
        assert "data.per_class=5" in row["overrides"]
    assert_png(sweep / "report.png")


# ---------------------------------------------------------------------------- bad input


def test_eval_of_a_missing_checkpoint_says_so(tmp_path: Path) -> None:
    result = run_cli_inprocess("eval", f"ckpt={tmp_path / 'nope.ckpt'}", cwd=tmp_path)

    assert_user_error(result, "nope.ckpt: no such file", "checkpoints/best.ckpt")


def test_a_file_that_is_not_an_ftcli_checkpoint_is_refused(tmp_path: Path) -> None:
    torch.save({"weight": torch.zeros(2)}, tmp_path / "plain.pt")
    result = run_cli_inprocess("eval", f"ckpt={tmp_path / 'plain.pt'}", cwd=tmp_path)

    assert_user_error(result, "is not an ftcli checkpoint", "ftcli train")


def test_predict_on_an_empty_folder_says_so(tmp_path: Path) -> None:
    (tmp_path / "model.ckpt").write_bytes(b"checked after the inputs")
    (tmp_path / "empty").mkdir()
    result = run_cli_inprocess(
        "predict", f"ckpt={tmp_path / 'model.ckpt'}", f"inputs={tmp_path / 'empty'}", cwd=tmp_path
    )

    assert_user_error(result, "No images found", str(tmp_path / "empty"))


def test_unknown_export_format_lists_the_formats(tmp_path: Path) -> None:
    result = run_cli_inprocess("export", "ckpt=whatever.ckpt", "format=tflite", cwd=tmp_path)

    assert_user_error(result, "tflite", "onnx", "torchscript")


def test_unknown_key_lists_the_valid_keys(tmp_path: Path) -> None:
    result = run_cli_inprocess("predict", "ckpt=x.ckpt", "input=photos", cwd=tmp_path)

    assert_user_error(result, "Unknown key 'input'", "inputs", "topk")


def test_report_of_a_folder_without_runs_says_so(tmp_path: Path) -> None:
    result = run_cli_inprocess("report", str(tmp_path), cwd=tmp_path)

    assert_user_error(result, "No finished run", "summary.json")


@pytest.mark.parametrize("command", ["eval", "predict", "export", "report"])
def test_command_help_lists_its_keys_without_importing_torch(tmp_path: Path, command: str) -> None:
    code = f"import ftcli.cli\nassert ftcli.cli.main([{command!r}, '--help']) == 0"
    result = run_without_heavy_imports(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"ftcli {command}" in result.stdout and "=" in result.stdout


def test_data_overrides_name_a_missing_or_unknown_key() -> None:
    from ftcli.command_line.key_value_args import data_config

    with pytest.raises(ConfigError, match=r"data\.root is required"):
        data_config({"name": "digits"}, ["data=imagefolder"])
    with pytest.raises(ConfigError, match=r"data\.per_clas is not a key"):
        data_config({"name": "digits", "per_class": None}, ["data.per_clas=3"])
    assert data_config({"name": "digits", "per_class": None}, ["data.per_class=3"])["per_class"] == 3
