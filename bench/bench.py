"""``make bench``: ftcli's training speed against a raw PyTorch loop, per strategy, in one run.

ftcli runs as a user runs it: the CLI in a subprocess per run; its summary.json gives images/s
without the warm-up epoch, per-epoch seconds and when the first training step ended; each child's
peak resident memory comes from ``os.wait4``. The raw loop (the ceiling: forward, backward, AdamW
step) runs in a subprocess of this script too (``--raw-worker``, internal), composed from the same
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

Each row reports the median over its runs of img/s and epoch seconds, with their min-max; ratios
such as ``full_vs_raw`` are ratios of medians, with ``*_min``/``*_max`` from pairing each round's
runs. Also timed: ``ftcli --help``, and ``ftcli advise`` on 1,000 MNIST digits at 64 px with the
ImageNet Lite0, cold and again with its block features cached (``--no-advise`` skips it). Results:
a rich table and ``bench-results.json``. The defaults take 15-26 minutes on 2 idle CPU cores,
depending on the machine's day (digits 6-10, JPEG folder 8-14, advise ~1); ``phase_seconds`` in the
JSON says what it took.

    python bench/bench.py                          # 2-CPU defaults: resnet18, 64 px, batch 32
    python bench/bench.py --repeats 2 --per-class 10 --jpeg-images 60 --no-advise   # a quick check
    python bench/bench.py --model resnet50 --image-size 224 --batch-size 64 --epochs 4 \\
        --jpeg-images 2000 --jpeg-epochs 4                                          # a GPU
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results.json"
# the live path (no feature cache): the frozen blocks run every epoch
LIVE = ["data.cache_features=false"]
# digits: these strategies run in every round, interleaved with the raw loop (their ratios are targets) ...
DIGITS_ROUNDS = ("full", "last_layers")
# ... these once each, after the rounds (then the feature_extraction cache build and the cached run)
DIGITS_ONCE = ("first_layers", "feature_extraction")
# the JPEG folder: full in every round against the raw loop, last_layers once
JPEG_ROUNDS = ("full",)
JPEG_ONCE = ("last_layers",)
# ... and full with a training augmentation (random crop + flip), per image in loader workers vs per
# batch on the training device from images stored once (data.augment_on_device)
AUGMENT = ["data.augment.random_resized_crop=true", "data.augment.hflip=true"]
JPEG_AUGMENTED = (
    ("full", [*LIVE, *AUGMENT, "data.augment_on_device=false"], "full augmented per image"),
    ("full", [*LIVE, *AUGMENT, "data.augment_on_device=true"], "full augmented on the device"),
)
# scikit-image's bundled colour photos (no download), one class each (skimage's cat() is chelsea())
JPEG_SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field")
JPEG_VAL_FRACTION = 0.2


@dataclass(frozen=True)
class Suite:
    """One data set the contenders run on: the overrides that build model and data, and epochs."""

    name: str  # digits | jpeg: the run folders' prefix and each row's "suite"
    prefix: str  # before each row's label
    overrides: tuple[str, ...]
    epochs: int


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
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


def common_overrides(args: argparse.Namespace) -> list[str]:
    """The digits config both ftcli and the raw loop are built from (same model, data, batch)."""
    overrides = [
        f"model={args.model}",
        "model.weights=null",
        "data=digits",
        f"data.image_size={args.image_size}",
        f"data.batch_size={args.batch_size}",
    ]
    if args.per_class:
        overrides.append(f"data.per_class={args.per_class}")
    return overrides


def jpeg_overrides(args: argparse.Namespace, root: Path) -> list[str]:
    """The JPEG config: the model's default (pretrained) weights, ``data.num_workers`` at auto, and a
    deterministic training transform (resize + normalise, no random crop or flip), so that ftcli and the
    raw loop do the same work per image."""
    return [
        f"model={args.jpeg_model}",
        *([f"model.weights={args.jpeg_weights}"] if args.jpeg_weights else []),
        "data=imagefolder",
        f"data.root={root}",
        f"data.image_size={args.jpeg_image_size}",
        f"data.batch_size={args.jpeg_batch_size}",
        "data.augment.random_resized_crop=false",
        "data.augment.hflip=false",
    ]


def make_jpeg_folder(root: Path, images: int, size: int, seed: int = 0) -> dict[str, Any]:
    """``root/train|val/<photo>/*.jpg``: random crops of scikit-image's sample photos, rescaled to
    sides drawn from ``0.6 * size`` to ``size`` px, one class per photo; returns what it made."""
    import numpy as np
    from PIL import Image
    from skimage import data as samples

    rng = np.random.default_rng(seed)
    per_class = max(2, images // len(JPEG_SOURCES))
    val = max(1, round(per_class * JPEG_VAL_FRACTION))
    smallest = max(1, round(0.6 * size))
    made = {"train": 0, "val": 0}
    for name in JPEG_SOURCES:
        photo = Image.fromarray(getattr(samples, name)()).convert("RGB")
        width, height = photo.size
        for split in ("train", "val"):
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            split = "val" if i < val else "train"
            w, h = (int(v) for v in rng.integers(smallest, size + 1, size=2))
            # a box of the output's aspect covering 40-100% of the largest such box inside the photo
            box_w = min(width, height * w / h) * math.sqrt(rng.uniform(0.4, 1.0))
            box_h = box_w * h / w
            x0, y0 = rng.uniform(0, width - box_w), rng.uniform(0, height - box_h)
            crop = photo.resize((w, h), Image.Resampling.BICUBIC, box=(x0, y0, x0 + box_w, y0 + box_h))
            crop.save(root / split / name / f"{name}-{i:04d}.jpg", quality=90)
            made[split] += 1
    return {
        "root": str(root),
        "classes": list(JPEG_SOURCES),
        "train_images": made["train"],
        "val_images": made["val"],
        "side_px": [smallest, size],
    }


def trainer_preset(args: argparse.Namespace) -> str:
    if args.trainer:
        return args.trainer
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------------------- children


def run_child(command: list[str], env: dict[str, str], log: Path) -> tuple[int, float, float, float]:
    """Run a command; (exit code, launch time.time(), wall seconds, peak RSS in MiB of that process)."""
    with open(log, "w") as out:
        launched = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: tell Popen
    return proc.returncode, launched, wall, usage.ru_maxrss / 1024  # Linux: KiB


def child_env(args: argparse.Namespace, cache: Path) -> dict[str, str]:
    threads = str(args.threads)
    return {
        **os.environ,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "FTCLI_OFFLINE": "1",
        "FTCLI_FEATURE_CACHE": str(cache),
        "COLUMNS": "120",
    }


def ftcli_command() -> list[str]:
    script = Path(sys.executable).parent / "ftcli"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ftcli.cli"]


def run_ftcli(
    args: argparse.Namespace,
    suite: Suite,
    strategy: str,
    extra: list[str],
    work: Path,
    cache: Path,
    label: str,
) -> dict[str, Any]:
    """One ``ftcli train`` subprocess; ``label`` names its folder under ``work``."""
    run_dir = work / label
    run_dir.mkdir(parents=True)
    command = [
        *ftcli_command(),
        "train",
        *suite.overrides,
        f"strategy={strategy}",
        f"trainer={trainer_preset(args)}",
        f"trainer.max_epochs={suite.epochs}",
        "print_config=false",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    code, launched, wall, rss = run_child(command, child_env(args, cache), run_dir / "bench.log")
    if code != 0:
        tail = (run_dir / "bench.log").read_text()[-3000:]
        raise SystemExit(f"ftcli {label} failed (exit {code}):\n{tail}")
    summary = json.loads((run_dir / "summary.json").read_text())
    epochs = summary["epoch_seconds"]
    log = (run_dir / "bench.log").read_text()
    return {
        "label": label,
        "images_per_second": summary["steady_images_per_second"],
        "step_images_per_second": summary.get("median_step_images_per_second"),
        "epoch_seconds": statistics.mean(epochs[1:] or epochs),
        "first_step_seconds": summary["first_step_done"] - launched,
        "wall_seconds": wall,
        "peak_rss_mib": rss,
        "val_acc": summary["best_val_acc"],
        "trainable_params": summary["trainable_params"],
        "feature_cache": "on" if "feature cache: on" in log else "off",
        "epoch_seconds_each": epochs,
    }


LP_FT_PROBE_EPOCHS = 3


def run_lp_ft_probe(args: argparse.Namespace, digits: Suite, work: Path, cache: Path) -> dict[str, Any]:
    """``lp_ft`` with its probe phase on the feature cache vs the same run all live: the probe epochs'
    seconds (the first, warm-up, left out) and the accuracy, which must not move."""
    suite = replace(digits, epochs=LP_FT_PROBE_EPOCHS + 1)  # the probe, then one live epoch
    probe = [f"strategy.probe_epochs={LP_FT_PROBE_EPOCHS}"]
    rows = {}
    for label, extra in (("lp_ft-live", [*probe, "data.cache_features=false"]), ("lp_ft-cached", probe)):
        rows[label] = run_ftcli(args, suite, "lp_ft", extra, work, cache, label)
        print(f"  ftcli {label}: epochs {', '.join(f'{e:.2f}' for e in rows[label]['epoch_seconds_each'])} s")

    def probe_seconds(row: dict[str, Any]) -> float:
        return statistics.mean(row["epoch_seconds_each"][1:LP_FT_PROBE_EPOCHS])

    live, cached = rows["lp_ft-live"], rows["lp_ft-cached"]
    return {
        "lp_ft_probe_epoch_speedup": probe_seconds(live) / probe_seconds(cached),
        "lp_ft_probe_epoch_seconds": {"live": probe_seconds(live), "cached": probe_seconds(cached)},
        "lp_ft_val_acc": {"live": live["val_acc"], "cached": cached["val_acc"]},
        "lp_ft_cache_used": cached["feature_cache"] == "on",
    }


ADVISE = [
    "model=efficientnet_lite0",
    "data=mnist",
    "data.image_size=64",
    "data.per_class=100",
    "trainer=cpu",
    "print_config=false",
]


def run_advise(args: argparse.Namespace, work: Path, cache: Path, label: str) -> dict[str, Any]:
    """``ftcli advise`` on 1,000 MNIST digits at 64 px with the ImageNet Lite0 (the issue's yardstick):
    wall time of the command, and the advisor's own time from its advice.json."""
    run_dir = work / label
    command = [*ftcli_command(), "advise", *ADVISE, f"hydra.run.dir={run_dir}"]
    run_dir.mkdir(parents=True)
    code, _, wall, rss = run_child(command, child_env(args, cache), run_dir / "bench.log")
    if code != 0:
        raise SystemExit(
            f"ftcli {label} failed (exit {code}):\n{(run_dir / 'bench.log').read_text()[-3000:]}"
        )
    record = json.loads((run_dir / "advice.json").read_text())
    return {
        "label": f"ftcli {label.replace('-', ' ')}",
        "wall_seconds": wall,
        "advice_seconds": record["seconds"],
        "images": record["measurements"]["images_probed"],
        "features_loaded": record["measurements"]["features_loaded"],
        "peak_rss_mib": rss,
    }


def run_raw(args: argparse.Namespace, suite: Suite, work: Path, cache: Path, label: str) -> dict[str, Any]:
    """The raw loop in a subprocess (this script, ``--raw-worker``) on the suite's config."""
    run_dir = work / label
    run_dir.mkdir(parents=True)
    forwarded = [
        f"--epochs={suite.epochs}",
        f"--threads={args.threads}",
        f"--trainer={trainer_preset(args)}",
        *(f"--raw-override={override}" for override in suite.overrides),
    ]
    command = [sys.executable, str(Path(__file__).resolve()), "--raw-worker", *forwarded]
    code, _, wall, rss = run_child(command, child_env(args, cache), run_dir / "bench.log")
    text = (run_dir / "bench.log").read_text()
    if code != 0:
        raise SystemExit(f"raw loop failed (exit {code}):\n{text[-3000:]}")
    result = json.loads(text.strip().splitlines()[-1])
    return {"label": "raw PyTorch loop", **result, "wall_seconds": wall, "peak_rss_mib": rss}


def raw_worker(args: argparse.Namespace) -> None:
    """The ceiling: forward, backward, optimizer step on preprocessed in-memory batches; prints JSON.

    Built from ``--raw-override`` (the ftcli runs' overrides) with ``strategy=full``: every training
    image is decoded and preprocessed once, through ftcli's own dataset, into one tensor."""
    import torch
    from hydra import compose, initialize_config_dir

    from ftcli.command_line.config_groups import config_dir
    from ftcli.device import resolve_precision
    from ftcli.pipeline.plan import prepare

    torch.set_num_threads(args.threads)
    overrides = [*(args.raw_override or common_overrides(args)), "strategy=full", f"trainer={args.trainer}"]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    torch.manual_seed(int(cfg.seed))
    prepared = prepare(cfg)
    preprocess_started = time.perf_counter()
    dataset = prepared.datamodule.dataset("train")
    pairs = [dataset[i] for i in range(len(dataset))]  # each image decoded and transformed once
    images = torch.stack([image for image, _ in pairs])
    labels = torch.tensor([int(label) for _, label in pairs])
    del pairs
    preprocess_seconds = time.perf_counter() - preprocess_started
    gpu = args.trainer == "gpu" or (args.trainer != "cpu" and torch.cuda.is_available())
    device = torch.device("cuda" if gpu else "cpu")
    net = prepared.net.to(device).train()
    precision = resolve_precision(cfg.trainer.precision, "gpu" if gpu else "cpu")
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(str(precision))
    if gpu:
        net = net.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    images, labels = images.to(device), labels.to(device)
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=float(cfg.optimizer.lr), weight_decay=float(cfg.optimizer.weight_decay)
    )
    scaler = torch.amp.GradScaler(enabled=dtype is torch.float16)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    batch = int(cfg.data.batch_size)
    epoch_seconds = []
    step_rates: list[list[float]] = []  # each step's images/s, batch end to batch end, as ftcli's Throughput
    for _ in range(args.epochs):
        order = torch.randperm(len(labels), generator=generator).to(device)
        if gpu:
            torch.cuda.synchronize()
        started = last = time.perf_counter()
        step_rates.append([])
        for start in range(0, len(labels), batch):
            idx = order[start : start + batch]
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = torch.nn.functional.cross_entropy(net(images[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            now = time.perf_counter()
            step_rates[-1].append(len(idx) / (now - last))
            last = now
        if gpu:
            torch.cuda.synchronize()
        epoch_seconds.append(time.perf_counter() - started)
    steady = epoch_seconds[1:] or epoch_seconds
    print(
        json.dumps(
            {
                "images_per_second": len(labels) * len(steady) / sum(steady),
                "step_images_per_second": statistics.median(
                    [r for rates in (step_rates[1:] or step_rates) for r in rates]
                ),
                "epoch_seconds": statistics.mean(steady),
                "precision": str(precision),
                "train_images": len(labels),
                "preprocess_seconds": preprocess_seconds,
            }
        )
    )


def help_seconds(runs: int = 5) -> float:
    """Median wall time of ``ftcli --help`` (the dispatcher imports no torch for it)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([*ftcli_command(), "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# ---------------------------------------------------------------------------- rounds

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


def contend(
    args: argparse.Namespace,
    suite: Suite,
    rounds: tuple[str, ...],
    once: list[tuple[str, list[str], str]],
    work: Path,
    cache: Path,
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """``--repeats`` rounds of the raw loop and each strategy of ``rounds``, interleaved so that a slow
    spell of the machine hits every contender, in :func:`round_order` (raw, full, full, raw, raw, full,
    ...); then each of ``once`` (strategy, extra overrides, name) one time. The rows (aggregated) and
    every run by name."""
    runs: dict[str, list[dict[str, Any]]] = {"raw": [], **{s: [] for s in rounds}}
    for r in range(1, args.repeats + 1):
        for name in round_order(list(runs), r):
            label = f"{suite.name}-{name}-{r}"
            if name == "raw":
                runs[name].append(run_raw(args, suite, work, cache, label))
            else:
                runs[name].append(run_ftcli(args, suite, name, LIVE, work, cache, label))
        done = ", ".join(f"{name} {runs[name][-1]['images_per_second']:.0f}" for name in runs)
        print(f"  {suite.name} round {r}/{args.repeats}: {done} img/s", flush=True)
    for strategy, extra, name in once:
        label = f"{suite.name}-{name.replace(' ', '-')}"
        runs[name] = [run_ftcli(args, suite, strategy, extra, work, cache, label)]
        print(f"  {suite.name} {name}: {runs[name][0]['images_per_second']:.0f} img/s", flush=True)
    labels = {name: "raw PyTorch loop" if name == "raw" else f"ftcli {name}" for name in runs}
    rows = [aggregate(found, suite.prefix + labels[name], suite.name) for name, found in runs.items()]
    return rows, runs


# ---------------------------------------------------------------------------- report


def machine(args: argparse.Namespace) -> dict[str, Any]:
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
    targets = {
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
        "advise_seconds": ("<", 60.0),
        "advise_again_seconds": ("<", 5.0),
    }
    for key, (op, target) in targets.items():
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.raw_worker:
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
            phase = time.perf_counter()
            folder = make_jpeg_folder(work / "jpeg-folder", args.jpeg_images, args.jpeg_size)
            phase_seconds["jpeg_folder"] = time.perf_counter() - phase
            print(
                f"  jpeg folder: {folder['train_images']} train + {folder['val_images']} val JPEGs, "
                f"{folder['side_px'][0]}-{folder['side_px'][1]} px ({phase_seconds['jpeg_folder']:.1f} s)",
                flush=True,
            )
            phase = time.perf_counter()
            suite = Suite(
                "jpeg",
                "jpeg · ",
                tuple(jpeg_overrides(args, Path(folder["root"]))),
                args.jpeg_epochs,
            )
            once = [*((s, LIVE, s) for s in JPEG_ONCE), *JPEG_AUGMENTED]
            jpeg_rows, jpeg_runs = contend(args, suite, JPEG_ROUNDS, once, work, cache)
            rows += jpeg_rows
            jpeg_by_name = {name: row for name, row in zip(jpeg_runs, jpeg_rows, strict=True)}
            phase_seconds["jpeg"] = time.perf_counter() - phase
            jpeg = {
                "model": args.jpeg_model,
                "weights": args.jpeg_weights or "the model config's default",
                "image_size": args.jpeg_image_size,
                "batch_size": args.jpeg_batch_size,
                "epochs": args.jpeg_epochs,
                "augment": "off, but in the two augmented rows (random_resized_crop, hflip)",
                "num_workers": "auto",
                **{k: v for k, v in folder.items() if k != "root"},
            }
            jpeg_ratios = {
                **ratio_keys("jpeg_full_vs_raw", ratios(jpeg_runs["full"], jpeg_runs["raw"])),
                "jpeg_last_layers_vs_full": (
                    jpeg_by_name["last_layers"]["images_per_second"]
                    / jpeg_by_name["full"]["images_per_second"]
                ),
                "jpeg_first_step_seconds": jpeg_by_name["full"]["first_step_seconds"],
                "jpeg_augment_on_device_vs_per_image": (
                    jpeg_by_name["full augmented on the device"]["images_per_second"]
                    / jpeg_by_name["full augmented per image"]["images_per_second"]
                ),
            }
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


if __name__ == "__main__":
    sys.exit(main())
