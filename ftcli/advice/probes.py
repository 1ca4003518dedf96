"""Linear probes: how well a converged linear classifier separates the classes from given features.

The probe is scikit-learn's logistic regression on standardised features (L-BFGS to convergence,
the usual linear-probe protocol), scored by stratified k-fold cross-validation on the training
split only: every image is held out once, so even a few labelled images per class give a usable
estimate, and the validation and test splits stay untouched.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ftcli.atomic_files import atomic_write_text

# Inverse L2 strength of the probe on standardised features, and its iteration cap.
PROBE_C = 1.0
PROBE_MAX_ITER = 500
MAX_FOLDS = 5


@dataclass(frozen=True)
class ProbeScore:
    """Cross-validated accuracy of one probe: the mean, and the standard error over folds."""

    accuracy: float
    stderr: float
    folds: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def fold_count(labels: torch.Tensor) -> int:
    """Folds for cross-validation: up to MAX_FOLDS, at most the smallest class's size (>= 2 needed)."""
    counts = torch.bincount(labels)
    smallest = int(counts[counts > 0].min()) if len(counts) else 0
    return min(MAX_FOLDS, smallest)


def make_probe() -> object:
    """The probe itself, for anyone who wants to repeat a measurement on the same features."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=PROBE_C, max_iter=PROBE_MAX_ITER))


def score(features: torch.Tensor, labels: torch.Tensor, seed: int) -> ProbeScore:
    """Stratified k-fold accuracy of the probe on ``features`` (k from :func:`fold_count`, >= 2)."""
    folds = fold_count(labels)
    if folds < 2:
        raise ValueError("cross-validation needs at least 2 images in every class")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    with warnings.catch_warnings():
        # a probe that stops at PROBE_MAX_ITER on separable data is converged for accuracy's sake
        warnings.simplefilter("ignore", ConvergenceWarning)
        per_fold = cross_val_score(make_probe(), x, y, cv=splitter, scoring="accuracy")
    values = [float(v) for v in per_fold]
    stderr = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return ProbeScore(statistics.fmean(values), stderr, folds)


def scores_of(
    by_block: dict[str, torch.Tensor], labels: torch.Tensor, seed: int, stored: Path | None
) -> dict[str, ProbeScore]:
    """:func:`score` for every block; kept beside the stored features they came from (``stored``), so a
    second ``advise`` on the same features and seed only reads them back."""
    memo = None
    if stored is not None:
        memo = stored.with_name(f"{stored.stem}-probes-seed{seed}-C{PROBE_C}-k{MAX_FOLDS}.json")
        try:
            known = json.loads(memo.read_text())
            if set(known) == set(by_block):
                return {name: ProbeScore(**known[name]) for name in by_block}
        except (OSError, ValueError, TypeError):
            pass  # missing or unreadable: compute
    result = {name: score(features, labels, seed) for name, features in by_block.items()}
    if memo is not None:
        # a read-only cache folder costs only the time of the probes next time
        with contextlib.suppress(OSError):
            atomic_write_text(memo, json.dumps({name: asdict(value) for name, value in result.items()}))
    return result
