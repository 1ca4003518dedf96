"""The PNG figures ftcli writes: training curves, confusion matrices, sweep comparisons.

matplotlib is imported inside each function with the headless Agg backend, so importing this module
costs nothing and no display is ever needed (servers, CI, DDP ranks).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CURVES_FILE = "curves.png"
CURVE_KEYS = ("train/loss", "val/loss", "train/acc", "val/acc")


def headless_pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_epochs(metrics_csv: Path) -> dict[str, list[tuple[int, float]]]:
    """Per curve key, (epoch, value) pairs from Lightning's metrics.csv (train and val rows are separate)."""
    by_epoch: dict[str, dict[int, float]] = {key: {} for key in CURVE_KEYS}
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            epoch = row.get("epoch")
            if not epoch:
                continue
            for key in CURVE_KEYS:
                if row.get(key):
                    by_epoch[key][int(float(epoch))] = float(row[key])
    return {key: sorted(values.items()) for key, values in by_epoch.items()}


def training_curves(metrics_csv: Path, out: Path | None = None, title: str = "") -> Path | None:
    """Loss and accuracy per epoch, train and val, beside metrics.csv; None when there is nothing to plot."""
    metrics_csv = Path(metrics_csv)
    if not metrics_csv.is_file():
        return None
    curves = read_epochs(metrics_csv)
    if not any(curves.values()):
        return None
    plt = headless_pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "acc")):
        for stage, style in (("train", "-o"), ("val", "-s")):
            points = curves[f"{stage}/{metric}"]
            if points:
                epochs = [e + 1 for e, _ in points]
                values = [100 * v if metric == "acc" else v for _, v in points]
                ax.plot(epochs, values, style, markersize=3, label=stage)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)" if metric == "acc" else "cross-entropy loss")
        ax.grid(alpha=0.3)
        ax.legend()
    acc_ax.set_ylim(0, 100)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out) if out is not None else metrics_csv.parent / CURVES_FILE
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def confusion_matrix(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], out: Path, title: str
) -> Path:
    """Counts per (true, predicted) class, row-normalised colours; numbers shown up to 20 classes."""
    import numpy as np

    plt = headless_pyplot()
    counts = np.asarray(matrix, dtype=np.int64)
    n = len(class_names)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(14.0, 2.5 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ticks = range(n)
    ax.set_xticks(
        ticks, [str(c) for c in class_names], rotation=45 if n > 8 else 0, ha="right" if n > 8 else "center"
    )
    ax.set_yticks(ticks, [str(c) for c in class_names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                colour = "white" if rates[i, j] > 0.5 else "black"
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", color=colour, fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)


def accuracy_bars(
    labels: Sequence[str], series: dict[str, Sequence[float | None]], out: Path, title: str
) -> Path:
    """Horizontal bars per run (one colour per series, e.g. best val and test accuracy), in table order."""
    import numpy as np

    plt = headless_pyplot()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.5 * n * max(1, len(series)) ** 0.5))
    height = 0.8 / max(1, len(series))
    positions = np.arange(n)
    for index, (name, values) in enumerate(series.items()):
        shown = [100 * v if v is not None and not math.isnan(v) else 0.0 for v in values]
        bars = ax.barh(positions + index * height, shown, height=height, label=name)
        for bar, value in zip(bars, values, strict=True):
            text = "-" if value is None else f"{100 * value:.1f}%"
            ax.text(bar.get_width() + 0.5, bar.get_y() + bar.get_height() / 2, text, va="center", fontsize=8)
    ax.set_yticks(positions + height * (len(series) - 1) / 2, list(labels), fontsize=8)
    ax.invert_yaxis()  # first row of the table on top
    ax.set_xlim(0, 110)
    ax.set_xlabel("accuracy (%)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)


def lr_range_curve(
    lrs: Sequence[float], losses: Sequence[float], suggestion: float | None, out: Path, title: str = ""
) -> Path:
    """The learning-rate range test (``ftcli lrfind``): smoothed training loss against lr (log scale),
    the suggestion marked."""
    plt = headless_pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(list(lrs), list(losses), "-")
    if suggestion is not None and lrs:
        index = min(range(len(lrs)), key=lambda i: abs(lrs[i] - suggestion))
        ax.plot([lrs[index]], [losses[index]], "o", color="red", label=f"suggested lr {suggestion:.3g}")
        ax.legend()
    finite = [v for v in losses if math.isfinite(v)]
    if finite:
        low = min(finite)
        ax.set_ylim(low - 0.05 * abs(low), min(max(finite), 4 * max(low, 1e-3)))
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (optimizer.lr)")
    ax.set_ylabel("training loss (smoothed)")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
