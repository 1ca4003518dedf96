"""``ftcli predict ckpt=PATH inputs=FOLDER|GLOB|FILE [topk=3]``: classify images or texts with a checkpoint.

Images go through the checkpoint's own eval transform (resize, centre crop, mean/std as in
training); texts (one ``.txt``, ``.csv`` or ``.jsonl`` file, ``ftcli.runs.text_inputs``) through its
tokenizer, cut to its ``max_length`` (the texts cut are counted). Results go to predictions.csv (path,
or the text itself, then label, probability, then the next top-k labels); an image file that cannot
be decoded is listed, not fatal, as long as at least one image could be read.
"""

from __future__ import annotations

import csv
import glob
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftcli.command_line.key_value_args import Key, natural_key, parse, usage, wants_help
from ftcli.errors import DataError
from ftcli.runs.output_folder import check_named, results_folder
from ftcli.runs.text_inputs import FILE_HINT, TextInputs, is_text_file, read_texts, shorten
from ftcli.runs.trained_model import checkpoint_path
from ftcli.ui import console

if TYPE_CHECKING:
    from ftcli.runs.trained_model import TrainedModel

SUMMARY = (
    "classify images (a folder, a glob or one file) or texts (a .txt, .csv or .jsonl file) with a "
    "checkpoint; writes predictions.csv"
)
KEYS = (
    Key("ckpt", "the checkpoint of a training run (<run>/checkpoints/best.ckpt)", required=True),
    Key(
        "inputs",
        "images: a folder (searched recursively), a quoted glob such as 'photos/*.jpg', or one image; "
        "texts (a text model): FILE.txt (one per line), FILE.csv (column text) or FILE.jsonl (key text)",
        required=True,
    ),
    Key("topk", "how many labels per input, best first", default=3, kind=int),
    Key("out", "output folder (default: a new <run>/predict/<date>_<time>[-N])"),
    Key("batch_size", "inputs per batch", default=32, kind=int),
    Key("device", "auto (a GPU when there is one), cpu or cuda", default="auto"),
    Key("show", "rows printed in the terminal", default=10, kind=int),
)
WRITES = ("predictions.csv",)  # never over an earlier call's
IMAGES_HINT = "Give a folder of images, a quoted glob such as 'photos/*.jpg', or one image file."
Inputs = list[Path] | TextInputs  # image files, or the texts of one file


def main(args: list[str]) -> int:
    """Entry point of ``ftcli predict``."""
    if wants_help(args):
        print(usage("predict", SUMMARY, KEYS))
        return 0
    options = parse("predict", args, KEYS).values
    path = checkpoint_path(options["ckpt"])
    check_named(options["out"], WRITES)  # before the work: out= must not hold earlier predictions
    inputs = str(options["inputs"])
    given: Inputs = read_texts(Path(inputs)) if is_text_file(inputs) else find_inputs(inputs)
    for key in ("topk", "batch_size"):
        if options[key] < 1:
            from ftcli.errors import ConfigError

            raise ConfigError(f"{key}={options[key]} must be 1 or more.")
    predict(path, given, options)
    return 0


def find_inputs(inputs: str) -> list[Path]:
    """The image files ``inputs`` names: a folder's images (recursively), a glob's matches, or one file."""
    from ftcli.data.images.files import IMAGE_EXTENSIONS

    path = Path(inputs).expanduser()
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        where = f"the folder {path} (extensions {', '.join(IMAGE_EXTENSIONS)})"
    elif path.is_file():
        files = [path]
        where = str(path)
    else:
        files = [Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file()]
        where = f"inputs={inputs}" + ("" if glob.has_magic(inputs) else " (no such file or folder)")
    files.sort(key=natural_key)
    if not files:
        raise DataError(
            f"No images found in {where}.",
            "Give a folder of images, a glob such as 'photos/*.jpg', or a file; for a text model, "
            "FILE.txt (one text per line), FILE.csv (column text) or FILE.jsonl (key text).",
        )
    return files


def check_modality(model: TrainedModel, given: Inputs) -> None:
    """A text model takes a file of texts and an image model images: say which inputs this one takes."""
    texts = isinstance(given, TextInputs)
    if model.reads_text and not texts:
        shown = ", ".join(str(p) for p in given[:3]) + (", ..." if len(given) > 3 else "")
        raise DataError(
            f"{model.path} is a text model ({model.label}): it classifies texts, not the "
            f"{len(given)} image file(s) given ({shown}).",
            FILE_HINT,
        )
    if texts and not model.reads_text:
        raise DataError(
            f"{model.path} is an image model ({model.label}): it classifies images, not the texts of "
            f"{given.path}.",
            IMAGES_HINT,
        )


def predict(path: Path, given: Inputs, options: dict[str, Any]) -> list[dict[str, Any]]:
    """Predict every input; write predictions.csv; print the first rows (and what was skipped or cut)."""
    from ftcli.device import inference_device
    from ftcli.runs import trained_model

    model = trained_model.load(path)
    check_modality(model, given)
    device = inference_device(options["device"])
    net = model.net.to(device)
    k = min(int(options["topk"]), model.num_classes)
    if isinstance(given, TextInputs):
        rows, notes = _predict_texts(model, net, given, k, int(options["batch_size"]), device)
        first, column, noun, where = "text", "text", "texts", f" from {given.path} ({given.source})"
    else:
        rows, notes = _predict_images(model, net, given, k, int(options["batch_size"]), device)
        first, column, noun, where = "path", "file", "images", ""

    default = model.run_dir / "predict" / time.strftime("%Y-%m-%d_%H-%M-%S")
    out = results_folder(options["out"], default, WRITES)  # a new folder unless out= names one
    csv_path = write_csv(rows, k, out / "predictions.csv", first)
    heading = f"ftcli predict · {path} · {model.label} · {len(rows)} {noun}{where}"
    console.console.print(heading, style="bold", markup=False, highlight=False, soft_wrap=True)
    console.show(predictions_table(rows, int(options["show"]), column))
    done = " · ".join([f"written to {csv_path}", *notes])
    console.console.print(done, markup=False, highlight=False, soft_wrap=True)
    return rows


def _predict_images(
    model: TrainedModel, net: Any, files: list[Path], k: int, batch_size: int, device: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of every readable image, in batches; the unreadable ones are printed and counted."""
    import torch

    from ftcli.data.images.files import load_image
    from ftcli.data.images.transforms import eval_transform

    transform = eval_transform(model.transform)
    rows: list[dict[str, Any]] = []
    unreadable: list[tuple[Path, str]] = []
    for start in range(0, len(files), batch_size):
        batch, names = [], []
        for file in files[start : start + batch_size]:
            try:
                batch.append(transform(load_image(file)))
                names.append(file)
            except DataError as err:
                unreadable.append((file, err.message))
        if batch:
            top = _top_k(net, torch.stack(batch), k, device, model.class_names)
            rows += [
                {"input": str(file.resolve()), "shown": str(file), "top": labels}
                for file, labels in zip(names, top, strict=True)
            ]
    for _file, message in unreadable:
        console.error_console.print(
            f"[yellow]unreadable, skipped:[/yellow] {_escape(message)}", soft_wrap=True
        )
    if not rows:
        raise DataError(f"None of the {len(files)} input file(s) could be read as an image.")
    return rows, [f"{len(unreadable)} unreadable file(s) skipped"] if unreadable else []


def _predict_texts(
    model: TrainedModel, net: Any, given: TextInputs, k: int, batch_size: int, device: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of every text: tokenized as in training (the checkpoint's tokenizer and ``max_length``),
    padded per batch; how many texts were cut to ``max_length`` is reported, never silent."""
    from ftcli.data.text.batches import encode_texts, pad_batch
    from ftcli.data.text.tokenizer import load_tokenizer, pad_id

    spec = model.transform
    tokenizer = load_tokenizer(spec.tokenizer)
    ids, truncated = encode_texts(tokenizer, given.texts, spec.max_length)
    pad = pad_id(tokenizer)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), batch_size):
        top = _top_k(net, pad_batch(ids[start : start + batch_size], pad), k, device, model.class_names)
        texts = given.texts[start : start + batch_size]
        rows += [
            {"input": text, "shown": shorten(text), "top": labels}
            for text, labels in zip(texts, top, strict=True)
        ]
    notes = [f"{truncated} text(s) longer than max_length={spec.max_length} tokens truncated"]
    return rows, notes if truncated else []


def _top_k(net: Any, x: Any, k: int, device: Any, class_names: list[str]) -> list[list[tuple[str, float]]]:
    """Per input, the ``k`` best ``(class name, probability)``, best first."""
    import torch

    with torch.inference_mode():
        probs = torch.softmax(net(x.to(device)).float(), dim=1).cpu()
    top_p, top_i = probs.topk(k, dim=1)
    return [
        [(class_names[c], q) for c, q in zip(i, p, strict=True)]
        for p, i in zip(top_p.tolist(), top_i.tolist(), strict=True)
    ]


def write_csv(rows: list[dict[str, Any]], k: int, out: Path, first: str = "path") -> Path:
    """``first`` (the absolute path, or the text itself), label, probability (the best class), then
    label_2, probability_2 ... up to k."""
    header = [first, "label", "probability"]
    for rank in range(2, k + 1):
        header += [f"label_{rank}", f"probability_{rank}"]
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            cells = [row["input"]]
            for label, probability in row["top"]:
                cells += [label, f"{probability:.6f}"]
            writer.writerow(cells)
    return out


def predictions_table(rows: list[dict[str, Any]], limit: int, first: str = "file") -> Any:
    from rich.table import Table
    from rich.text import Text

    shown = rows[: max(0, limit)]
    caption = f"first {len(shown)} of {len(rows)} rows" if len(shown) < len(rows) else None
    table = Table(caption=caption, caption_justify="left")
    table.add_column(first, overflow="fold")
    table.add_column("label")
    table.add_column("probability", justify="right")
    with_next = len(rows[0]["top"]) > 1
    if with_next:
        table.add_column("next", overflow="fold")
    for row in shown:
        (label, probability), rest = row["top"][0], row["top"][1:]
        cells = [Text(row["shown"]), Text(label), f"{100 * probability:.1f}%"]
        if with_next:
            cells.append(Text(", ".join(f"{name} {100 * p:.1f}%" for name, p in rest)))
        table.add_row(*cells)
    return table


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
