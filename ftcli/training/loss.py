"""The training loss: cross-entropy with optional label smoothing and class weights (``loss.*``).

Both options change only the loss the optimizer follows. Validation and test loss stay the plain,
unweighted, unsmoothed cross-entropy (:func:`eval_loss`): that number then measures how well the
network fits the data as it is, so it stays comparable between runs with different ``loss.*``
settings and with the (unweighted) accuracy beside it, and early stopping on ``val/loss`` compares
like with like. Class weights are computed from the training split only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ftcli.config.loss import AUTO, LossOptions
from ftcli.errors import ConfigError

# The training split counts as imbalanced (and says so in one line) from this ratio of the largest
# class to the smallest one.
IMBALANCE_RATIO = 2.0


def class_counts(labels: Sequence[int], num_classes: int) -> list[int]:
    """Images per class in ``labels`` (class indices), every class listed."""
    return torch.bincount(torch.as_tensor(list(labels), dtype=torch.long), minlength=num_classes).tolist()


def inverse_frequency(counts: Sequence[int]) -> list[float]:
    """Weights proportional to 1 / count, scaled to a mean of 1 over the classes present.

    A class absent from the training split gets weight 0: it is never a target, so its weight only
    matters to label smoothing's share, where 0 keeps an unseen class from being pushed.
    """
    present = [c for c in counts if c > 0]
    if not present:
        return [1.0] * len(counts)
    inverse = [1.0 / c if c > 0 else 0.0 for c in counts]
    scale = len(present) / sum(inverse)
    return [w * scale for w in inverse]


def resolve_weights(options: LossOptions, counts: Sequence[int] | None) -> torch.Tensor | None:
    """The per-class weight tensor of the training loss (``counts`` is needed for ``auto``)."""
    if options.class_weights is None:
        return None
    if options.class_weights == AUTO:
        if counts is None:
            raise ConfigError(
                "loss.class_weights=auto needs the training split's labels, and this data gives none.",
                "Give one weight per class instead, e.g. loss.class_weights=[1,2,1].",
            )
        return torch.tensor(inverse_frequency(counts), dtype=torch.float32)
    return torch.tensor(options.class_weights, dtype=torch.float32)


def imbalance_line(counts: Sequence[int], class_names: Sequence[str], weighted: bool) -> str | None:
    """One line with the per-class counts when the largest class is >= 2x the smallest, else None."""
    present = [c for c in counts if c > 0]
    if not present:
        return None
    if len(present) == len(counts) and max(present) < IMBALANCE_RATIO * min(present):
        return None
    shown = ", ".join(f"{name} {count}" for name, count in zip(class_names, counts, strict=False))
    advice = "" if weighted else "; loss.class_weights=auto weights the loss by inverse class frequency"
    return f"imbalanced training split ({shown}){advice}"


def train_loss(
    logits: torch.Tensor, targets: torch.Tensor, options: LossOptions, weight: torch.Tensor | None
) -> torch.Tensor:
    """The loss the optimizer follows: cross-entropy, class-weighted and label-smoothed as configured."""
    return F.cross_entropy(logits, targets, weight=weight, label_smoothing=options.label_smoothing)


def eval_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Validation and test loss: plain cross-entropy (see the module docstring for why)."""
    return F.cross_entropy(logits, targets)
