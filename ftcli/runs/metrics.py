"""The metrics of a trained model on a split, as plain data: what ``ftcli eval`` prints and writes."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


def compute_metrics(
    logits: Any, targets: Any, class_names: list[str], noun: str = "images"
) -> dict[str, Any]:
    """Every metric as plain data (torchmetrics' functional metrics, micro top-k, macro F1); the count
    of samples is stored under ``noun`` (``images``, ``texts``: the data's own word)."""
    import torch
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_confusion_matrix,
        multiclass_f1_score,
        multiclass_precision,
        multiclass_recall,
    )

    n = len(class_names)
    common = {"num_classes": n}
    per_class_args = {**common, "average": "none", "zero_division": 0}
    precision = multiclass_precision(logits, targets, **per_class_args).tolist()
    recall = multiclass_recall(logits, targets, **per_class_args).tolist()
    f1 = multiclass_f1_score(logits, targets, **per_class_args).tolist()
    support = torch.bincount(targets, minlength=n).tolist()
    metrics: dict[str, Any] = {
        noun: len(targets),
        "accuracy": float(multiclass_accuracy(logits, targets, **common, average="micro")),
        "top5_accuracy": (
            float(multiclass_accuracy(logits, targets, **common, average="micro", top_k=5)) if n > 5 else None
        ),
        "macro_f1": float(multiclass_f1_score(logits, targets, **common, average="macro", zero_division=0)),
        "loss": float(torch.nn.functional.cross_entropy(logits, targets)),
        "per_class": [
            {"class": name, "precision": p, "recall": r, "f1": f, "support": s}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
        ],
        "confusion_matrix": multiclass_confusion_matrix(logits, targets, num_classes=n).tolist(),
        "class_names": list(class_names),
    }
    return metrics


def write_confusion_csv(matrix: list[list[int]], class_names: list[str], out: Path) -> None:
    """Rows are true classes, columns predicted classes."""
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["true \\ predicted", *class_names])
        for name, row in zip(class_names, matrix, strict=True):
            writer.writerow([name, *row])
