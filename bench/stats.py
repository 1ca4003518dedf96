"""The bench's bookkeeping over repeated rounds: rows of medians and spreads, ratios, the round order.

Pure Python (no torch), so the tests check it in milliseconds and a report can be recomputed from
``bench-results.json`` without a training stack.
"""

from __future__ import annotations

import statistics
from typing import Any

# per row: the median, the min and max and every run's value
SPREAD_KEYS = ("images_per_second", "step_images_per_second", "epoch_seconds", "peak_rss_mib")
# per row: the median over runs
MEDIAN_KEYS = ("first_step_seconds", "wall_seconds", "val_acc", "preprocess_seconds")


def aggregate(runs: list[dict[str, Any]], label: str, suite: str) -> dict[str, Any]:
    """One row from the runs of one contender (one per round): medians, min-max and each run's value;
    keys that are not measurements (trainable params, precision, ...) come from the first run."""
    row: dict[str, Any] = {"label": label, "suite": suite, "repeats": len(runs)}
    for key, value in runs[0].items():
        values = [run.get(key) for run in runs]
        if key == "label":
            continue
        if key in SPREAD_KEYS + MEDIAN_KEYS and all(v is not None for v in values):
            row[key] = statistics.median(values)
            if key in SPREAD_KEYS:
                row[f"{key}_min"], row[f"{key}_max"], row[f"{key}_runs"] = min(values), max(values), values
        else:
            row[key] = value
    return row


def ratios(
    over: list[dict[str, Any]], under: list[dict[str, Any]], key: str = "images_per_second"
) -> dict[str, Any]:
    """img/s of ``over`` / img/s of ``under``: the ratio of the medians, and each round's own ratio
    (round i's run of one against round i's run of the other) with their min and max."""
    a = [run[key] for run in over]
    b = [run[key] for run in under]
    rounds = [x / y for x, y in zip(a, b, strict=True)]
    return {
        "median": statistics.median(a) / statistics.median(b),
        "min": min(rounds),
        "max": max(rounds),
        "rounds": rounds,
    }


def ratio_keys(key: str, ratio: dict[str, Any]) -> dict[str, Any]:
    """``key`` (the ratio of medians) with its ``_min``, ``_max`` and per-round ``_rounds``."""
    return {
        key: ratio["median"],
        f"{key}_min": ratio["min"],
        f"{key}_max": ratio["max"],
        f"{key}_rounds": ratio["rounds"],
    }


def round_order(contenders: list[str], round_number: int) -> list[str]:
    """The order of round ``round_number`` (from 1): as given in odd rounds, reversed in even ones.

    A machine that speeds up or slows down over the bench then favours no contender: over each pair
    of rounds, every contender has run as often early as late (an ABBA design)."""
    return contenders if round_number % 2 else contenders[::-1]
