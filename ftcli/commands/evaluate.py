"""``ftcli eval ckpt=PATH [split=test|val|train] [data=NAME data.KEY=VALUE ...]``: metrics of a checkpoint.

Top-1 (and top-5 with more than 5 classes) accuracy, macro-F1, per-class precision/recall/F1, and a
confusion matrix (PNG and CSV), all written with a metrics.json into ``<run>/eval/<ckpt>-<data>-<split>/``
(``-2``, ``-3``, ... when an earlier eval holds that folder: results are never overwritten).
By default the data is the checkpoint's own (same config, same seed, so the same split); ``data=``
and ``data.KEY=`` evaluate on other data whose class names must be the checkpoint's, and of the
modality the model reads (images, or texts for a text model: its tokenizer and ``max_length``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftcli.atomic_files import atomic_write_text
from ftcli.command_line.key_value_args import Key, data_config, parse, usage, wants_help
from ftcli.errors import ConfigError, DataError
from ftcli.runs import checkpoint_schema
from ftcli.runs.output_folder import check_named, results_folder, writing_results
from ftcli.runs.trained_model import checkpoint_path

if TYPE_CHECKING:
    from ftcli.runs.trained_model import TrainedModel
from ftcli.ui import console

SUMMARY = "accuracy, macro-F1, per-class precision/recall and a confusion matrix of a checkpoint"
KEYS = (
    Key("ckpt", "the checkpoint of a training run (<run>/checkpoints/best.ckpt)", required=True),
    Key("split", "test, val or train (default: test when the data has one, else val)"),
    Key("out", "output folder (default: a new <run>/eval/<checkpoint>-<data>-<split>[-N])"),
    Key("batch_size", "images or texts per batch (default: the data config's)", kind=int),
    Key("device", "auto (a GPU when there is one), cpu or cuda", default="auto"),
    Key("seed", "the split seed (default: the training run's, so val/test are the same samples)", kind=int),
)
EXTRA = """data: the checkpoint's own by default; data=NAME and data.KEY=VALUE as in `ftcli train`, e.g.
  ftcli eval ckpt=outputs/.../checkpoints/best.ckpt data=imagefolder data.root=~/trucks_2024 split=val"""
SPLITS = ("train", "val", "test")
WRITES = ("metrics.json", "confusion_matrix.csv", "confusion_matrix.png")  # never over an earlier eval's


def main(args: list[str]) -> int:
    """Entry point of ``ftcli eval``."""
    if wants_help(args):
        print(usage("eval", SUMMARY, KEYS, EXTRA))
        return 0
    parsed = parse("eval", args, KEYS, accepts_data=True)
    options = parsed.values
    path = checkpoint_path(options["ckpt"])
    check_named(options["out"], WRITES)  # before the work: out= must not hold earlier results
    split = options["split"]
    if split is not None and split not in SPLITS:
        from ftcli.errors import unknown_name

        raise unknown_name("split", split, list(SPLITS), key="split")
    evaluate(path, parsed.data, split, options)
    return 0


def evaluate(path: Path, data_overrides: list[str], split: str | None, options: dict[str, Any]) -> dict:
    """Run the checkpoint over one split; print and write every metric; return metrics.json's content."""
    import torch

    from ftcli.data.sources import build_datamodule
    from ftcli.device import inference_device
    from ftcli.runs import plots, trained_model
    from ftcli.runs.metrics import compute_metrics, write_confusion_csv

    model = trained_model.load(path)
    stored = dict(model.meta.get(checkpoint_schema.DATA) or {})
    try:  # the data config is the checkpoint's, plus the command line's overrides: an error says so
        data_cfg = data_config(stored, [*_group_defaults(stored, data_overrides, path), *data_overrides])
        if options["batch_size"] is not None:
            data_cfg["batch_size"] = options["batch_size"]
        seed = (
            options["seed"]
            if options["seed"] is not None
            else int(model.meta.get(checkpoint_schema.SEED, 42))
        )
        spec = input_spec(model, data_cfg, data_overrides)
        datamodule = build_datamodule(data_cfg, spec, seed)
    except ConfigError as err:
        origin = " plus the data overrides given here" if data_overrides else ""
        raise ConfigError(
            f"{err.message}\n(the data config is the one stored in the checkpoint {path}{origin})", err.hint
        ) from err
    remap = class_mapping(model.class_names, datamodule.class_names, data_cfg.get("name"))
    split = split or ("test" if datamodule.has_test else "val")
    dataset = datamodule.dataset(split)
    noun = datamodule.sample_noun
    if split == "train" and not model.reads_text:
        from ftcli.data.images.transforms import eval_transform

        dataset.transform = eval_transform(spec)  # measure the network, not the augmentation
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise DataError(f"The {split} split of data={data_cfg.get('name')} holds no {noun}.")

    device = inference_device(options["device"])
    net = model.net.to(device)
    logits, targets = [], []
    with torch.inference_mode():
        for x, y in datamodule.loader(split):
            logits.append(net(x.to(device)).float().cpu())
            targets.append(remap[y])
    metrics = compute_metrics(torch.cat(logits), torch.cat(targets), model.class_names, noun)
    if model.reads_text:  # texts cut to max_length are counted, never silent
        metrics.update(max_length=spec.max_length, truncated=int(getattr(dataset, "truncated", 0)))
    metrics.update(
        checkpoint=str(path),
        data=data_cfg.get("name"),
        data_root=str(datamodule.root) if datamodule.root is not None else None,
        split=split,
        seed=seed,
    )

    data_name = str(data_cfg.get("name"))
    default = model.run_dir / "eval" / f"{path.stem}-{data_name}-{split}"
    out = results_folder(options["out"], default, WRITES)  # a new folder unless out= names one
    title = f"{path.name} on {data_name} {split} · accuracy {100 * metrics['accuracy']:.1f}%"
    with writing_results(out, fresh=options["out"] in (None, "")):
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
        write_confusion_csv(metrics["confusion_matrix"], model.class_names, out / "confusion_matrix.csv")
        plots.confusion_matrix(
            metrics["confusion_matrix"], model.class_names, out / "confusion_matrix.png", title
        )
    heading = f"ftcli eval · {path} · {model.label} · data {data_name}, {split} split"
    console.console.print(heading, style="bold", markup=False, highlight=False, soft_wrap=True)
    console.show(metrics_table(metrics, noun))
    console.show(per_class_table(metrics, noun))
    if metrics.get("truncated"):
        console.console.print(
            f"note: {metrics['truncated']} of the {metrics[noun]} {noun} were longer than "
            f"max_length={metrics['max_length']} tokens and were truncated",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    console.console.print(
        f"written to {out}: metrics.json, confusion_matrix.png, confusion_matrix.csv",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return metrics


def input_spec(model: TrainedModel, data_cfg: dict[str, Any], overrides: list[str]) -> Any:
    """The preprocessing the data is read with: the checkpoint's own (trained_model.load read it).

    Images: ``data.image_size``/``mean``/``std`` of the data config still apply (``input_transform``).
    Texts: the checkpoint's tokenizer and ``max_length``; ``data.max_length=N`` given here overrides it.
    The data must hold what the model reads (a ConfigError naming both otherwise).
    """
    from ftcli.data.images.transforms import input_transform
    from ftcli.data.sources import holds_texts, text_sources
    from ftcli.data.text.spec import text_spec

    text_data = holds_texts(data_cfg)
    name = data_cfg.get("name")
    if model.reads_text and not text_data:
        raise ConfigError(
            f"{model.path} is a text model ({model.label}), but data={name} holds images.",
            f"Evaluate it on texts: data=NAME with NAME one of {', '.join(text_sources())} "
            "(e.g. data=text_csv data.root=FILE.csv); no data= evaluates on its own data.",
        )
    if text_data and not model.reads_text:
        raise ConfigError(
            f"{model.path} is an image model ({model.label}), but data={name} holds texts.",
            "Evaluate it on images (e.g. data=imagefolder data.root=DIR); "
            "no data= evaluates on its own data.",
        )
    if not model.reads_text:
        return input_transform(data_cfg, model.transform)
    given = any(arg.split("=", 1)[0].lstrip("+") == "data.max_length" for arg in overrides)
    return text_spec(data_cfg, model.transform.tokenizer) if given else model.transform


def _group_defaults(stored: dict[str, Any], overrides: list[str], path: Path) -> list[str]:
    """``data=NAME`` when the checkpoint stored only its data's name (from before it stored the whole
    data config): eval then starts from that group's defaults. A checkpoint that records no data at
    all needs ``data=NAME`` on the command line."""
    if len(stored) > 1:
        return []
    if stored.get("name"):
        return [f"data={stored['name']}"]
    if any(arg.split("=", 1)[0].lstrip("+") == "data" for arg in overrides):
        return []
    raise DataError(
        f"{path} does not record the data it was trained on.",
        "Name it: ftcli eval ckpt=PATH data=NAME (plus data.KEY=VALUE as for ftcli train).",
    )


def class_mapping(checkpoint_classes: list[str], data_classes: list[str], data_name: Any) -> Any:
    """A tensor mapping the data's label indices to the checkpoint's; the class names must match as sets."""
    import torch

    ours, theirs = [str(c) for c in checkpoint_classes], [str(c) for c in data_classes]
    if set(ours) != set(theirs):
        only_ckpt = sorted(set(ours) - set(theirs))
        only_data = sorted(set(theirs) - set(ours))
        raise DataError(
            f"The checkpoint and data={data_name} have different classes.\n"
            f"checkpoint ({len(ours)}): {', '.join(ours)}\n"
            f"data ({len(theirs)}): {', '.join(theirs)}",
            f"Only in the checkpoint: {', '.join(only_ckpt) or '-'}; "
            f"only in the data: {', '.join(only_data) or '-'}. "
            "Evaluate on data with the same class names (folder names for imagefolder).",
        )
    return torch.tensor([ours.index(name) for name in theirs], dtype=torch.long)


def metrics_table(metrics: dict[str, Any], noun: str = "images") -> Any:
    from rich.table import Table

    table = Table(show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    table.add_row(noun, f"{metrics[noun]:,}")
    table.add_row("accuracy (top-1)", _pct(metrics["accuracy"]))
    if metrics["top5_accuracy"] is not None:
        table.add_row("top-5 accuracy", _pct(metrics["top5_accuracy"]))
    table.add_row("macro-F1", f"{metrics['macro_f1']:.3f}")
    table.add_row("loss", f"{metrics['loss']:.4f}")
    return table


def per_class_table(metrics: dict[str, Any], noun: str = "images") -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="per class", title_justify="left")
    table.add_column("class")
    for column in ("precision", "recall", "F1", noun):
        table.add_column(column, justify="right")
    for row in metrics["per_class"]:
        table.add_row(
            Text(row["class"]),
            _pct(row["precision"]),
            _pct(row["recall"]),
            f"{row['f1']:.3f}",
            str(row["support"]),
        )
    return table


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"
