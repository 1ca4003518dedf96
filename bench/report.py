"""The bench's report: the machine it ran on, and a rich table of its rows with each headline ratio
against its target, so that one look says whether ftcli kept up with the raw loop."""

from __future__ import annotations

import argparse
import os
import platform
from typing import Any

# the headline keys of bench-results.json, each with its target (op, value), or none where it is shown only
TARGETS: dict[str, tuple[str, float | None]] = {
    "full_vs_raw": (">=", 0.95),
    "full_vs_raw_step": ("", None),  # the same runs, each by its median step (bursts left out)
    "last_layers_vs_full": (">=", 1.5),
    "jpeg_full_vs_raw": ("", None),  # measured and shown; the CPU target is full_vs_raw
    "jpeg_last_layers_vs_full": ("", None),  # no target: the JPEG rows are measured, not judged
    "cached_epoch_speedup": (">=", 20.0),
    "lp_ft_probe_epoch_speedup": (">=", 10.0),
    "help_seconds": ("<", 1.0),
    "first_step_seconds": ("<", 10.0),
    "jpeg_first_step_seconds": ("", None),
    "jpeg_augment_on_device_vs_per_image": ("", None),  # one run each; auto uses it on a GPU only
    "text_full_vs_raw": (">=", 0.95),  # texts/s of ftcli full over the raw transformers loop
    "text_cached_epoch_speedup": (">=", 5.0),  # last_layers epoch seconds, live over cached hidden states
    "lora_vs_full_step": ("", None),  # median-step img/s of lora over full, same pretrained network
    "lora_peak_rss_vs_full": ("", None),  # peak resident memory of a lora run over a full run's
    "advise_seconds": ("<", 60.0),
    "advise_again_seconds": ("<", 5.0),
}


def machine(args: argparse.Namespace) -> dict[str, Any]:
    """Where the numbers come from: cores, threads, torch and the device, for the JSON and the title."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": gpu or "cpu",
        "platform": platform.platform(),
    }


def show(rows: list[dict[str, Any]], results: dict[str, Any]) -> None:
    """Print the rows as a table, then each headline key with its per-round spread and its target."""
    from rich.console import Console
    from rich.table import Table

    m = results["machine"]
    cfg = results["config"]
    title = (
        f"make bench · {cfg['model']} {cfg['image_size']}px batch {cfg['batch_size']} · "
        f"{m['device']} · {m['threads']} threads / {m['cpu_count']} cpus · torch {m['torch']}"
    )
    jpeg = cfg.get("jpeg")
    caption = (
        f"img/s and epoch s: median over runs (n), min-max beside; first step s, peak RSS, val acc: "
        f"medians. Timed epochs: all but the first of {cfg['epochs']}"
        + (f" (jpeg: {jpeg['epochs']})" if jpeg else "")
        + "."
    )
    if jpeg:
        caption += (
            f"\njpeg · {jpeg['model']} {jpeg['image_size']}px batch {jpeg['batch_size']}, "
            f"{jpeg['train_images']} train + {jpeg['val_images']} val JPEGs of {len(jpeg['classes'])} "
            f"photos, {jpeg['side_px'][0]}-{jpeg['side_px'][1]} px, workers auto; augmentation off "
            "but in the two 'augmented' rows (random crop + flip)."
        )
    text = cfg.get("text")
    if text:
        caption += (
            f"\ntext · {text['model']} on movie_reviews, {text['train_texts']} train sentences "
            f"({text['train_tokens']:,} tokens, at most {text['max_length']} each), "
            f"batch {text['batch_size']}, "
            f"{text['epochs']} epochs; 'img/s' is texts/s. last_layers: strategy.n=1."
        )
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    columns = (
        "run", "n", "img/s", "min-max", "median step img/s", "epoch s", "min-max", "first step s",
        "peak RSS MiB", "val acc",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "run" else "right", no_wrap=column == "run")
    for i, row in enumerate(rows):
        if i and row["suite"] != rows[i - 1]["suite"]:
            table.add_section()
        acc = row.get("val_acc")
        repeated = row["repeats"] > 1
        table.add_row(
            row["label"],
            str(row["repeats"]),
            f"{row['images_per_second']:,.0f}",
            f"{row['images_per_second_min']:,.0f}-{row['images_per_second_max']:,.0f}" if repeated else "-",
            f"{row['step_images_per_second']:,.0f}" if row.get("step_images_per_second") else "-",
            f"{row['epoch_seconds']:.2f}",
            f"{row['epoch_seconds_min']:.2f}-{row['epoch_seconds_max']:.2f}" if repeated else "-",
            f"{row['first_step_seconds']:.1f}" if "first_step_seconds" in row else "-",
            f"{row['peak_rss_mib']:,.0f}",
            f"{acc:.1%}" if acc is not None else "-",
        )
    console = Console(width=max(Console().width, 150))
    console.print(table)
    for key, (op, target) in TARGETS.items():
        value = results.get(key)
        if value is None:
            console.print(f"{key:>24} = skipped")
            continue
        if target is None:
            verdict = ""
        else:
            met = value >= target if op == ">=" else value < target
            verdict = f"   target {op} {target:g}   {'met' if met else 'NOT met'}"
        spread = ""
        if results.get(f"{key}_min") is not None:
            spread = (
                f" (per-round {results[f'{key}_min']:.2f}-{results[f'{key}_max']:.2f}, "
                f"{results['repeats']} round{'s' * (results['repeats'] != 1)})"
            )
        console.print(f"{key:>24} = {value:.2f}{spread}{verdict}")
    accs = results["lp_ft_val_acc"]
    console.print(
        f"{'lp_ft val acc':>24} = live {accs['live']:.4f}, probe on the cache {accs['cached']:.4f} "
        f"({'equal' if abs(accs['live'] - accs['cached']) < 1e-6 else 'DIFFERENT'})"
    )
    console.print(f"{'frozen_peak_rss_lower':>24} = {results['frozen_peak_rss_lower']}")
    tokens = results.get("text_tokens_per_second")
    if tokens:
        accs = results["text_last_layers_val_acc"]
        raw, full = tokens["raw"], tokens["full"]
        console.print(f"{'text tokens/s':>24} = raw loop {raw:,.0f}, ftcli full {full:,.0f}")
        live, cached = accs["live"], accs["cached"]
        console.print(f"{'text last_layers val acc':>24} = live {live:.4f}, on cached states {cached:.4f}")
