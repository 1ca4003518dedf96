"""Splitting labelled samples into train/val/test: stratified per class, seeded, no split left empty."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from ftcli.errors import DataError

SPLITS = ("train", "val", "test")
Sample = tuple[str, int]


def stratified_split(
    labels: Sequence[int],
    class_names: Sequence[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    where: str,
    noun: str = "image",
) -> dict[str, list[int]]:
    """Indices per split, drawn per class with a seeded shuffle.

    Each class gives ``round(fraction * n)`` samples (at least one) to val and to test when their
    fraction is above zero, and the rest to train, so every class appears in every split. ``noun``
    names a sample in the error of a class too small to split (``image``, ``text``).
    """
    rng = np.random.default_rng(seed)
    fractions = {"val": val_fraction, "test": test_fraction}
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_class[int(label)].append(i)
    out: dict[str, list[int]] = {split: [] for split in SPLITS if split == "train" or fractions[split] > 0}
    for label in sorted(by_class):
        members = rng.permutation(np.asarray(by_class[label])).tolist()
        n = len(members)
        held = {s: max(1, math.floor(f * n + 0.5)) for s, f in fractions.items() if f > 0}
        if n - sum(held.values()) < 1:
            raise _too_few(class_names[label], n, held, val_fraction, test_fraction, where, noun)
        start = 0
        for split, count in held.items():
            out[split].extend(members[start : start + count])
            start += count
        out["train"].extend(members[start:])
    return {split: sorted(ids) for split, ids in out.items()}


def _too_few(
    name: str, n: int, held: Mapping[str, int], val: float, test: float, where: str, noun: str
) -> DataError:
    splits = ", ".join(["train", *held][:-1]) + f" and {[*held][-1]}"
    needed = 1 + sum(held.values())
    settings = f"data.val_fraction={val:g}" + (f", data.test_fraction={test:g}" if test > 0 else "")
    no_test = "set data.test_fraction=0, " if "test" in held else ""
    return DataError(
        f"Class '{name}' in {where} has {n} {noun}(s): too few for at least one each in {splits} "
        f"({settings}); the train split would get none.",
        f"Give that class at least {needed} {noun}s, {no_test}lower the fractions, or remove the class.",
    )


def carve_missing(
    samples: dict[str, list[Sample]],
    class_names: list[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    where: str,
    noun: str = "image",
) -> dict[str, list[Sample]]:
    """Split val and test off train (stratified, seeded) where ``samples`` does not hold them."""
    val_fraction = 0.0 if "val" in samples else val_fraction
    test_fraction = 0.0 if "test" in samples else test_fraction
    if not val_fraction and not test_fraction:
        return samples
    train = samples["train"]
    labels = [label for _, label in train]
    idx = stratified_split(labels, class_names, val_fraction, test_fraction, seed, where, noun)
    out = {s: v for s, v in samples.items() if s != "train"}
    for split, ids in idx.items():
        if ids:
            out[split] = [train[i] for i in ids]
    return out


def first_per_class(indices: list[int], labels: np.ndarray, per_class: int, seed: int) -> list[int]:
    """The first ``per_class`` indices of each label after a seeded shuffle (returned sorted)."""
    rng = np.random.default_rng([seed, 1])
    shuffled = rng.permutation(np.asarray(indices, dtype=np.int64))
    kept: list[int] = []
    counts: dict[int, int] = defaultdict(int)
    for i in shuffled.tolist():
        label = int(labels[i])
        if counts[label] < per_class:
            counts[label] += 1
            kept.append(i)
    return sorted(kept)


def as_columns(samples: Mapping[str, list[Sample]]) -> dict[str, tuple[list[str], list[int]]]:
    """``{split: [(item, label), ...]}`` as ``{split: (items, labels)}``: what a text datamodule takes."""
    return {
        split: ([item for item, _ in rows], [label for _, label in rows]) for split, rows in samples.items()
    }
