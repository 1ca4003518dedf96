"""``ftcli predict ckpt=PATH inputs=FOLDER|GLOB|FILE [topk=3]``: classify images with a checkpoint.

Images go through the checkpoint's own eval transform (resize, centre crop, mean/std as in
training). Results go to predictions.csv (path, label, probability, then the next top-k labels);
a file that cannot be decoded is listed, not fatal, as long as at least one image could be read.
"""

from __future__ import annotations

import csv
import glob
import time
from pathlib import Path
from typing import Any

from ftcli.command_line.key_value_args import Key, natural_key, parse, usage, wants_help
from ftcli.errors import DataError
from ftcli.runs.output_folder import check_named, results_folder
from ftcli.runs.trained_model import checkpoint_path
from ftcli.ui import console

SUMMARY = "classify images (a folder, a glob or one file) with a checkpoint; writes predictions.csv"
KEYS = (
    Key("ckpt", "the checkpoint of a training run (<run>/checkpoints/best.ckpt)", required=True),
    Key(
        "inputs",
        "a folder (searched recursively), a quoted glob such as 'photos/*.jpg', or one image",
        required=True,
    ),
    Key("topk", "how many labels per image, best first", default=3, kind=int),
    Key("out", "output folder (default: a new <run>/predict/<date>_<time>[-N])"),
    Key("batch_size", "images per batch", default=32, kind=int),
    Key("device", "auto (a GPU when there is one), cpu or cuda", default="auto"),
    Key("show", "rows printed in the terminal", default=10, kind=int),
)
WRITES = ("predictions.csv",)  # never over an earlier call's


def main(args: list[str]) -> int:
    """Entry point of ``ftcli predict``."""
    if wants_help(args):
        print(usage("predict", SUMMARY, KEYS))
        return 0
    options = parse("predict", args, KEYS).values
    path = checkpoint_path(options["ckpt"])
    check_named(options["out"], WRITES)  # before the work: out= must not hold earlier predictions
    files = find_inputs(str(options["inputs"]))
    for key in ("topk", "batch_size"):
        if options[key] < 1:
            from ftcli.errors import ConfigError

            raise ConfigError(f"{key}={options[key]} must be 1 or more.")
    predict(path, files, options)
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
            "Give a folder of images, a glob such as 'photos/*.jpg', or a file.",
        )
    return files


def predict(path: Path, files: list[Path], options: dict[str, Any]) -> list[dict[str, Any]]:
    """Predict every readable file; write predictions.csv; print the first rows and the unreadable files."""
    import torch

    from ftcli.data.images.files import load_image
    from ftcli.data.images.transforms import eval_transform
    from ftcli.device import inference_device
    from ftcli.runs import trained_model

    model = trained_model.load(path)
    transform = eval_transform(model.transform)
    device = inference_device(options["device"])
    net = model.net.to(device)
    k = min(int(options["topk"]), model.num_classes)
    rows: list[dict[str, Any]] = []
    unreadable: list[tuple[Path, str]] = []
    batch_size = int(options["batch_size"])
    with torch.inference_mode():
        for start in range(0, len(files), batch_size):
            batch, names = [], []
            for file in files[start : start + batch_size]:
                try:
                    batch.append(transform(load_image(file)))
                    names.append(file)
                except DataError as err:
                    unreadable.append((file, err.message))
            if not batch:
                continue
            probs = torch.softmax(net(torch.stack(batch).to(device)).float(), dim=1).cpu()
            top_p, top_i = probs.topk(k, dim=1)
            for file, p, i in zip(names, top_p.tolist(), top_i.tolist(), strict=True):
                rows.append(
                    {
                        "path": str(file.resolve()),
                        "shown": str(file),
                        "top": [(model.class_names[c], q) for c, q in zip(i, p, strict=True)],
                    }
                )
    for _file, message in unreadable:
        console.error_console.print(
            f"[yellow]unreadable, skipped:[/yellow] {_escape(message)}", soft_wrap=True
        )
    if not rows:
        raise DataError(f"None of the {len(files)} input file(s) could be read as an image.")

    default = model.run_dir / "predict" / time.strftime("%Y-%m-%d_%H-%M-%S")
    out = results_folder(options["out"], default, WRITES)  # a new folder unless out= names one
    csv_path = write_csv(rows, k, out / "predictions.csv")
    heading = f"ftcli predict · {path} · {model.label} · {len(rows)} images"
    console.console.print(heading, style="bold", markup=False, highlight=False, soft_wrap=True)
    console.show(predictions_table(rows, int(options["show"])))
    skipped = f" · {len(unreadable)} unreadable file(s) skipped" if unreadable else ""
    console.console.print(f"written to {csv_path}{skipped}", markup=False, highlight=False, soft_wrap=True)
    return rows


def write_csv(rows: list[dict[str, Any]], k: int, out: Path) -> Path:
    """path (absolute), label, probability (the best class), then label_2, probability_2 ... up to k."""
    header = ["path", "label", "probability"]
    for rank in range(2, k + 1):
        header += [f"label_{rank}", f"probability_{rank}"]
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            cells = [row["path"]]
            for label, probability in row["top"]:
                cells += [label, f"{probability:.6f}"]
            writer.writerow(cells)
    return out


def predictions_table(rows: list[dict[str, Any]], limit: int) -> Any:
    from rich.table import Table
    from rich.text import Text

    shown = rows[: max(0, limit)]
    caption = f"first {len(shown)} of {len(rows)} rows" if len(shown) < len(rows) else None
    table = Table(caption=caption, caption_justify="left")
    table.add_column("file", overflow="fold")
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
