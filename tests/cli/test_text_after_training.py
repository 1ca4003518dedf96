"""After training a text model: `ftcli eval`, `predict` and `export` on its checkpoint, as a user runs them.

One tiny text run (a random-init 2-layer Llama, 40 reviews, one epoch, ``data.max_length=24``) is trained
once for the session (tests/helpers/text_runs.py); every command reads its checkpoint, in the test
process (helpers/cli_inprocess.py). What a command prints or writes must agree with what training
recorded or with the network run directly on the same texts.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import assert_ok, assert_user_error, output
from helpers.text_runs import MAX_LENGTH, TEXT_CLASSES, TrainedTextRun, trained_text_run

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit:FutureWarning"
)  # deprecated upstream, still asked for


@pytest.fixture(scope="session")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedTextRun:
    """The session's tiny trained text run (trained once for all pytest-xdist workers)."""
    return trained_text_run(tmp_path_factory)


def model_probabilities(checkpoint: Path, texts: list[str]) -> torch.Tensor:
    """The checkpoint's class probabilities for ``texts``, computed here without the command."""
    from ftcli.data.text.batches import batch_of_texts
    from ftcli.data.text.tokenizer import load_tokenizer
    from ftcli.runs import trained_model

    model = trained_model.load(checkpoint)
    x = batch_of_texts(load_tokenizer(model.transform.tokenizer), texts, model.transform.max_length)
    with torch.no_grad():
        return torch.softmax(model.net(x), dim=1)


def read_predictions(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def assert_rows_are_the_models(rows: list[dict[str, str]], texts: list[str], checkpoint: Path) -> None:
    """One row per text in order, the model's argmax and probabilities, summing to 1 over the classes."""
    assert [row["text"] for row in rows] == texts
    probabilities = model_probabilities(checkpoint, texts)
    for row, probs in zip(rows, probabilities, strict=True):
        assert row["label"] == TEXT_CLASSES[int(probs.argmax())]
        assert float(row["probability"]) == pytest.approx(float(probs.max()), abs=1e-5)
        assert float(row["probability"]) + float(row["probability_2"]) == pytest.approx(1.0, abs=1e-5)
        assert {row["label"], row["label_2"]} == set(TEXT_CLASSES)


# ---------------------------------------------------------------------------- eval


@pytest.mark.slow
def test_eval_of_a_text_run_reports_accuracy_macro_f1_and_each_class(text_run: TrainedTextRun) -> None:
    result = run_cli_inprocess("eval", f"ckpt={text_run.checkpoint}", cwd=text_run.folder)
    assert_ok(result)

    out = text_run.run / "eval" / "best-text_csv-test"
    metrics = json.loads((out / "metrics.json").read_text())
    recorded = json.loads((text_run.run / "summary.json").read_text())["test_acc"]
    assert metrics["split"] == "test" and metrics["data"] == "text_csv"
    assert metrics["texts"] == 10 and metrics["max_length"] == MAX_LENGTH and metrics["truncated"] == 0
    assert metrics["accuracy"] == pytest.approx(recorded, abs=1e-6)  # the same split, the same network
    assert 0.0 <= metrics["macro_f1"] <= 1.0 and metrics["top5_accuracy"] is None
    assert [row["class"] for row in metrics["per_class"]] == TEXT_CLASSES
    assert all({"precision", "recall", "f1"} <= set(row) for row in metrics["per_class"])
    assert sum(row["support"] for row in metrics["per_class"]) == 10
    for shown in ("accuracy (top-1)", "macro-F1", "precision", "recall", "F1", "texts", "negative"):
        assert shown in result.stdout, shown
    assert (out / "confusion_matrix.png").is_file() and (out / "confusion_matrix.csv").is_file()


@pytest.mark.slow
def test_eval_of_a_text_run_counts_the_texts_cut_to_max_length(text_run: TrainedTextRun) -> None:
    result = run_cli_inprocess(
        "eval",
        f"ckpt={text_run.checkpoint}",
        "data.max_length=4",
        "split=val",
        "out=short",
        cwd=text_run.folder,
    )
    assert_ok(result)

    metrics = json.loads((text_run.folder / "short" / "metrics.json").read_text())
    assert metrics["max_length"] == 4 and metrics["truncated"] > 0
    assert f"{metrics['truncated']} of the {metrics['texts']} texts" in result.stdout


@pytest.mark.slow
def test_eval_of_a_text_run_on_image_data_says_which_data_it_takes(text_run: TrainedTextRun) -> None:
    result = run_cli_inprocess("eval", f"ckpt={text_run.checkpoint}", "data=digits", cwd=text_run.folder)

    assert_user_error(result, "is a text model", "data=digits holds images", "text_csv")


# ---------------------------------------------------------------------------- predict


@pytest.mark.slow
def test_predict_on_a_txt_file_writes_one_row_per_text(text_run: TrainedTextRun, tmp_path: Path) -> None:
    long = "an endless review that goes on " + "and on " * 30 + "until the end"
    texts = ["a lovely film", "boring and far too long", long]
    (tmp_path / "in.txt").write_text(f"{texts[0]}\n\n  {texts[1]}  \n{long}\n", encoding="utf-8")

    result = run_cli_inprocess(
        "predict", f"ckpt={text_run.checkpoint}", "inputs=in.txt", "topk=5", "out=preds", cwd=tmp_path
    )
    assert_ok(result)

    rows = read_predictions(tmp_path / "preds" / "predictions.csv")
    assert list(rows[0]) == ["text", "label", "probability", "label_2", "probability_2"]  # topk: 2 classes
    assert_rows_are_the_models(rows, texts, text_run.checkpoint)  # the long one cut as the model's input
    assert "3 texts from in.txt (lines)" in result.stdout
    assert "a lovely film" in result.stdout and "an endless review" in result.stdout
    assert "and on " * 30 not in result.stdout  # the table shows the long text shortened
    assert f"1 text(s) longer than max_length={MAX_LENGTH} tokens truncated" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", ["reviews.csv", "reviews.jsonl"])
def test_predict_on_a_csv_or_jsonl_file_reads_its_text_column(
    text_run: TrainedTextRun, tmp_path: Path, name: str
) -> None:
    texts = ["a joy, a real joy", 'the "worst" film', "warm and charming"]
    if name.endswith(".csv"):
        with open(tmp_path / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "text"])
            writer.writerows([i, text] for i, text in enumerate(texts))
    else:
        lines = [json.dumps({"id": i, "text": text}) for i, text in enumerate(texts)]
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = run_cli_inprocess(
        "predict", f"ckpt={text_run.checkpoint}", f"inputs={name}", "out=preds", cwd=tmp_path
    )
    assert_ok(result)

    assert_rows_are_the_models(
        read_predictions(tmp_path / "preds" / "predictions.csv"), texts, text_run.checkpoint
    )
    assert "truncated" not in result.stdout


@pytest.mark.slow
def test_predict_with_a_text_model_on_images_says_which_inputs_it_takes(
    text_run: TrainedTextRun, tmp_path: Path
) -> None:
    from PIL import Image

    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "cat.png")

    result = run_cli_inprocess(
        "predict", f"ckpt={text_run.checkpoint}", "inputs=photos", "out=preds", cwd=tmp_path
    )

    assert_user_error(
        result, "is a text model", "not the 1 image file(s)", "FILE.txt", "FILE.csv", "FILE.jsonl"
    )
    assert not (tmp_path / "preds").exists()


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("in.txt", "caf\xe9\n".encode("latin-1"), "is not UTF-8 text"),
        ("in.csv", b"", "is empty"),
        ("in.csv", b"id,review\n1,nice\n", "no 'text' column"),
    ],
    ids=["latin-1", "empty", "no-text-column"],
)
def test_predict_checks_the_file_of_texts_before_the_checkpoint(
    tmp_path: Path, name: str, content: bytes, fragment: str
) -> None:
    (tmp_path / "model.ckpt").write_bytes(b"checked after the inputs")
    (tmp_path / name).write_bytes(content)

    result = run_cli_inprocess("predict", f"ckpt={tmp_path / 'model.ckpt'}", f"inputs={name}", cwd=tmp_path)

    assert_user_error(result, fragment, name)


# ---------------------------------------------------------------------------- export


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_of_a_text_model_reproduces_pytorch_on_padded_batches_of_any_length(
    text_run: TrainedTextRun, tmp_path: Path, fmt: str
) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="pip install 'ftcli[export]'")
        pytest.importorskip("onnxscript", reason="pip install 'ftcli[export]'")
    result = run_cli_inprocess(
        "export", f"ckpt={text_run.checkpoint}", f"format={fmt}", f"out={tmp_path}", cwd=tmp_path
    )
    assert_ok(result)
    assert f"max |{fmt} - pytorch|" in output(result)

    suffix = ".onnx" if fmt == "onnx" else ".torchscript.pt"
    meta = json.loads((tmp_path / f"best{suffix}.json").read_text())
    assert meta["class_names"] == TEXT_CLASSES
    assert meta["input"]["shape"] == ["batch", 2, "tokens"] and meta["input"]["dtype"] == "int64"
    assert meta["input"]["name"] == "tokens" and meta["input"]["max_length"] == MAX_LENGTH
    assert meta["input"]["tokenizer"] == meta["transform"]["tokenizer"] == str(text_run.model_folder)
    assert meta["transform"]["kind"] == "tokens" and meta["check"]["max_abs_diff"] <= 1e-4

    # batches other than the check's: one text alone (no padding), and a longer padded batch
    from ftcli.data.text.batches import batch_of_texts
    from ftcli.data.text.tokenizer import load_tokenizer
    from ftcli.runs import trained_model

    model = trained_model.load(text_run.checkpoint)
    tokenizer = load_tokenizer(str(text_run.model_folder))
    for texts in (["fine"], ["a wonderful film", "no", "a film that is " + "very " * 12 + "long"]):
        x = batch_of_texts(tokenizer, texts, MAX_LENGTH)
        with torch.no_grad():
            expected = model.net(x)
        if fmt == "onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(
                str(tmp_path / "best.onnx"), providers=["CPUExecutionProvider"]
            )
            (actual,) = session.run(None, {"tokens": x.numpy()})
            actual = torch.from_numpy(actual)
        else:
            with torch.no_grad():
                actual = torch.jit.load(str(tmp_path / "best.torchscript.pt"))(x)
        assert (actual - expected).abs().max() <= 1e-4, texts


# ---------------------------------------------------------------------------- chaining


@pytest.mark.slow
def test_a_text_checkpoint_is_the_start_of_the_next_text_task(
    text_run: TrainedTextRun, tmp_path: Path
) -> None:
    from hydra import compose, initialize_config_dir

    from ftcli.command_line.config_groups import config_dir
    from ftcli.pipeline import plan_run
    from ftcli.runs import trained_model

    reviews = tmp_path / "next.csv"
    reviews.write_text(
        "text,label\n" + "".join(f"fine film {i},a\nbad film {i},b\nodd film {i},c\n" for i in range(6))
    )
    overrides = [
        f"model.name=hf/{text_run.model_folder}", f"model.weights={text_run.checkpoint}",
        "data=text_csv", f"data.root={reviews}", "strategy=last_layers", "trainer=cpu",
    ]  # fmt: skip
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    plan = plan_run(cfg)
    source = trained_model.load(text_run.checkpoint).net.state_dict()
    chained = plan.net.state_dict()
    backbone = [name for name in source if not name.startswith("blocks.head.")]
    assert backbone and all(torch.equal(chained[name], source[name]) for name in backbone)
    assert plan.net.blocks["head"].classifier[-1].out_features == 3  # a new head for the new classes
    assert plan.checkpoint_meta()["chained_from"] == str(text_run.checkpoint)

    # the same checkpoint into a run that groups the 2 layers into one block: each layer found again
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        grouped = compose("train", overrides=[*overrides, "model.layers_per_block=2"])
    regrouped = plan_run(grouped).net
    assert regrouped.backbone_names == ["stem", "stage1"]
    state = regrouped.state_dict()
    for name in ("self_attn.q_proj.weight", "mlp.down_proj.weight"):
        assert torch.equal(state[f"blocks.stage1.layers.0.{name}"], source[f"blocks.stage1.layers.0.{name}"])
        assert torch.equal(state[f"blocks.stage1.layers.1.{name}"], source[f"blocks.stage2.layers.0.{name}"])
    assert torch.equal(state["blocks.stage1.norm.weight"], source["blocks.stage2.norm.weight"])
