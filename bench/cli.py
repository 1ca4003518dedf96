"""``make bench``: ftcli's training speed against a raw PyTorch loop, per strategy, in one run.

ftcli runs as a user runs it: the CLI in a subprocess per run; its summary.json gives images/s
without the warm-up epoch, per-epoch seconds and when the first training step ended; each child's
peak resident memory comes from ``os.wait4``. The raw loop (the ceiling: forward, backward, AdamW
step) runs in a subprocess of the bench too (``--raw-worker``, internal), composed from the same
overrides, on the same network built by ftcli, with every training image decoded and preprocessed
once, through ftcli's own dataset, into one tensor in memory. Two data sets, each compared on the
same model, batch size, precision and ``--threads``:

1. digits (scikit-learn's 8x8 digits, upscaled; ``--model`` from scratch): ``--repeats`` rounds of
   raw loop, ``ftcli full``, ``ftcli last_layers``, the order reversed every other round (raw, full,
   last_layers, last_layers, full, raw, raw, ...), so that a slow spell or a drift of a shared
   machine hits every contender alike; then ``first_layers`` and
   ``feature_extraction`` live once each, and ``feature_extraction`` with the feature cache (the run
   that builds it, then a run that reuses it).
2. a folder of real-size JPEGs (``--no-jpeg`` skips it), made once in the bench's temporary folder:
   ``--jpeg-images`` random crops of scikit-image's bundled sample photos (astronaut, coffee,
   chelsea, rocket, hubble_deep_field; one class per photo), each side 0.6x-1x ``--jpeg-size`` px,
   as ``train/<class>/*.jpg`` and ``val/<class>/*.jpg``; the ImageNet EfficientNet-Lite0
   (``--jpeg-model``, its default weights, offline) at ``--jpeg-image-size``. ``--repeats`` rounds
   of raw loop and ``ftcli full`` (the order reversed every other round), then ``last_layers`` once.
   ftcli runs ``data=imagefolder`` as a user's run does (``data.num_workers`` and
   ``data.cache_images`` at auto: decoding, threads and its own preprocess-once store are its
   choices), but with
   ``data.augment.random_resized_crop=false data.augment.hflip=false``: a deterministic training
   transform, so both contenders train on the same tensor for each image and the gap is ftcli's
   own cost. With random crops or flips, the raw loop's tensors, made once, would not be the work
   ftcli must do per epoch. (A split over ``data.image_cache_mb`` is stored on disk beside the
   feature cache and reused by the next round: only the first step's time would show it.)

3. LoRA (``--no-lora`` skips it): ``full`` and ``lora`` on the ImageNet EfficientNet-Lite0 (``--lora-model``)
   with the digits config, ``--repeats`` interleaved rounds: step throughput and peak memory of LoRA
   against full fine-tuning of the same pretrained network.

4. text (``--no-text`` skips it): SmolLM2-135M fine-tuned on movie-review sentences, the raw
   transformers loop and ``ftcli full`` in ``--repeats`` rounds, then ``last_layers`` live and on its
   cached hidden states (:mod:`bench.text_speed`).

Each row reports the median over its runs of img/s and epoch seconds, with their min-max; ratios
such as ``full_vs_raw`` are ratios of medians, with ``*_min``/``*_max`` from pairing each round's
runs. Also timed: ``ftcli --help``, and ``ftcli advise`` on 1,000 MNIST digits at 64 px with the
ImageNet Lite0, cold and again with its block features cached (``--no-advise`` skips it). Results:
a rich table and ``bench-results.json``. The defaults take 15-26 minutes on 2 idle CPU cores,
depending on the machine's day (digits 6-10, JPEG folder 8-14, advise ~1); ``phase_seconds`` in the
JSON says what it took.

    python -m bench                                # 2-CPU defaults: resnet18, 64 px, batch 32
    python -m bench --repeats 2 --per-class 10 --jpeg-images 60 --no-advise        # a quick check
    python -m bench --model resnet50 --image-size 224 --batch-size 64 --epochs 4 \\
        --jpeg-images 2000 --jpeg-epochs 4                                          # a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.contenders import (
    DIGITS_ONCE,
    DIGITS_ROUNDS,
    LIVE,
    Suite,
    common_overrides,
    contend,
    run_lora_suite,
    run_lp_ft_probe,
)
from bench.jpeg import JPEG_ROUNDS, run_jpeg_suite
from bench.processes import ROOT, trainer_preset
from bench.report import machine, show
from bench.stats import ratio_keys, ratios
from bench.text_speed import run_text_suite
from bench.timings import help_seconds, run_advise

RESULTS = ROOT / "bench-results.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The bench's flags; ``--raw-worker`` and ``--raw-override`` are its own, for the raw loop child."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="per run; the first is warm-up, not timed")
    parser.add_argument("--per-class", type=int, default=None, help="digits per class (null: all, ~900)")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="intra-op threads, everywhere"
    )
    parser.add_argument(
        "--trainer", default=None, help="ftcli trainer preset (default: gpu if CUDA, else cpu)"
    )
    parser.add_argument(
        "--repeats",
        type=_positive,
        default=4,
        help="rounds of raw loop, ftcli full (, ...) interleaved, the order reversed every other round; "
        "medians and min-max over them (an even number balances the order)",
    )
    jpeg = parser.add_argument_group("the JPEG folder (ImageNet EfficientNet-Lite0 on real-size photos)")
    jpeg.add_argument("--no-jpeg", action="store_true", help="skip the JPEG folder rows")
    jpeg.add_argument(
        "--jpeg-images", type=_positive, default=250, help="JPEGs generated, train and val together"
    )
    jpeg.add_argument(
        "--jpeg-size",
        type=_positive,
        default=500,
        help="longest possible side in px; each side is drawn from 0.6x-1x of it (default 300-500)",
    )
    jpeg.add_argument("--jpeg-model", default="efficientnet_lite0", help="an ftcli model config")
    jpeg.add_argument(
        "--jpeg-weights",
        default=None,
        help="model.weights for the JPEG rows (default: the model config's own; null: random init, "
        "for a model whose pretrained weights would download)",
    )
    jpeg.add_argument("--jpeg-image-size", type=_positive, default=224, help="the network's input side")
    jpeg.add_argument("--jpeg-batch-size", type=_positive, default=32)
    jpeg.add_argument(
        "--jpeg-epochs", type=_positive, default=2, help="per run; the first is warm-up, not timed"
    )
    lora = parser.add_argument_group("the LoRA rows (full vs lora on a pretrained network, digits)")
    lora.add_argument("--no-lora", action="store_true", help="skip the LoRA rows")
    lora.add_argument(
        "--lora-model", default="efficientnet_lite0", help="an ftcli model config with pretrained weights"
    )
    text = parser.add_argument_group("the text rows (SmolLM2-135M on movie-review sentences)")
    text.add_argument("--no-text", action="store_true", help="skip the text rows")
    text.add_argument("--text-model", default="smollm2_135m", help="an ftcli text model config")
    text.add_argument("--text-per-class", type=_positive, default=32, help="training sentences per class")
    text.add_argument("--text-batch-size", type=_positive, default=16)
    text.add_argument("--text-max-length", type=_positive, default=64, help="data.max_length (tokens)")
    text.add_argument(
        "--text-epochs", type=_positive, default=3, help="per run; the first is warm-up, not timed"
    )
    parser.add_argument(
        "--no-advise", action="store_true", help="skip the two ftcli advise rows (quick checks)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--raw-worker", action="store_true", help=argparse.SUPPRESS)
    # the raw worker's config: the same overrides as the ftcli runs it is compared with
    parser.add_argument("--raw-override", action="append", default=[], help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    """The whole bench (or, with ``--raw-worker``, one raw loop child); writes ``--out`` and the report."""
    args = parse_args(argv)
    if args.raw_worker:
        from bench.raw_loop import raw_worker  # the child's side: the one module that imports ftcli

        raw_worker(args)
        return 0
    args.trainer = trainer_preset(args)
    work = Path(tempfile.mkdtemp(prefix="ftcli-bench-"))
    cache = work / "feature-cache"
    started = time.perf_counter()
    try:
        print(f"bench: working in {work}", flush=True)
        phase_seconds: dict[str, float] = {}
        phase = time.perf_counter()
        digits = Suite("digits", "", tuple(common_overrides(args)), args.epochs)
        once = [
            *((s, LIVE, s) for s in DIGITS_ONCE),
            ("feature_extraction", [], "feature_extraction cache build"),
            ("feature_extraction", [], "feature_extraction cached"),
        ]
        rows, runs = contend(args, digits, DIGITS_ROUNDS, once, work, cache)
        by_name = {name: row for name, row in zip(runs, rows, strict=True)}
        phase_seconds["digits"] = time.perf_counter() - phase
        jpeg: dict[str, Any] | None = None
        jpeg_ratios: dict[str, Any] = {}
        if not args.no_jpeg:
            jpeg_rows, jpeg, jpeg_ratios = run_jpeg_suite(args, work, cache, phase_seconds)
            rows += jpeg_rows
        text: dict[str, Any] | None = None
        text_ratios: dict[str, Any] = {}
        if not args.no_text:
            text_rows, text, text_ratios = run_text_suite(args, work, cache, phase_seconds)
            rows += text_rows
        lora_ratios: dict[str, Any] = {}
        if not args.no_lora:
            lora_rows, lora_ratios = run_lora_suite(args, work, cache, phase_seconds)
            rows += lora_rows
        phase = time.perf_counter()
        lp_ft = run_lp_ft_probe(args, digits, work, cache)
        phase_seconds["lp_ft"] = time.perf_counter() - phase
        advise: list[dict[str, Any]] = []
        if not args.no_advise:
            phase = time.perf_counter()
            advise = [run_advise(args, work, cache, label) for label in ("advise", "advise-again")]
            phase_seconds["advise"] = time.perf_counter() - phase
        for row in advise:
            print(f"  {row['label']}: {row['wall_seconds']:.1f} s ({row['advice_seconds']:.1f} s advising)")
        full = by_name["full"]
        cached = by_name["feature_extraction cached"]
        frozen = ("last_layers", "first_layers", "feature_extraction")
        last_vs_full = ratios(runs["last_layers"], runs["full"])
        results = {
            **ratio_keys("full_vs_raw", ratios(runs["full"], runs["raw"])),
            **ratio_keys("full_vs_raw_step", ratios(runs["full"], runs["raw"], "step_images_per_second")),
            "last_layers_vs_full": last_vs_full["median"],
            "last_layers_vs_full_min": last_vs_full["min"],
            "last_layers_vs_full_max": last_vs_full["max"],
            "cached_epoch_speedup": full["epoch_seconds"] / cached["epoch_seconds"],
            "help_seconds": help_seconds(),
            "first_step_seconds": full["first_step_seconds"],
            "advise_seconds": advise[0]["wall_seconds"] if advise else None,
            "advise_again_seconds": advise[1]["advice_seconds"] if advise else None,
            "advise": advise,
            **lp_ft,
            "frozen_peak_rss_lower": all(by_name[s]["peak_rss_mib"] < full["peak_rss_mib"] for s in frozen),
            "jpeg_full_vs_raw": None,
            "jpeg_full_vs_raw_min": None,
            "jpeg_full_vs_raw_max": None,
            "jpeg_full_vs_raw_rounds": None,
            "jpeg_last_layers_vs_full": None,
            "jpeg_first_step_seconds": None,
            **jpeg_ratios,
            "text_full_vs_raw": None,
            "text_full_vs_raw_min": None,
            "text_full_vs_raw_max": None,
            "text_full_vs_raw_rounds": None,
            "text_cached_epoch_speedup": None,
            **text_ratios,
            "lora_vs_full_step": None,
            "lora_peak_rss_vs_full": None,
            **lora_ratios,
            "repeats": args.repeats,
            "machine": machine(args),
            "config": {
                "model": args.model,
                "image_size": args.image_size,
                "batch_size": args.batch_size,
                "epochs": args.epochs,
                "per_class": args.per_class,
                "trainer": args.trainer,
                "timed_epochs": "all but the first",
                "repeats": args.repeats,
                "interleaved": {"digits": ["raw", *DIGITS_ROUNDS], "jpeg": ["raw", *JPEG_ROUNDS]},
                "jpeg": jpeg,
                "text": text,
            },
            "runs": rows,
            "phase_seconds": phase_seconds,
            "bench_seconds": time.perf_counter() - started,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    show(rows, results)
    phases = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in results["phase_seconds"].items())
    print(f"wrote {args.out} ({results['bench_seconds']:.0f} s: {phases})")
    return 0
