"""``make bench``: ftcli's training speed against a raw PyTorch loop, per strategy, in one run.

Every measurement uses the same model, data (scikit-learn's digits), batch size, precision and thread
count. ftcli runs as a user runs it: the CLI in a subprocess per strategy; its summary.json gives
images/s without the warm-up epoch, per-epoch seconds and when the first training step ended; the
child's peak resident memory comes from ``os.wait4``. The raw loop (the ceiling) runs in a subprocess
of this script too, on the same network built by ftcli, with the training images preprocessed into one
tensor in memory. Also timed: ``ftcli advise`` on 1,000 MNIST digits at 64 px with the ImageNet Lite0,
cold and again with its block features cached. Results: a rich table and ``bench-results.json``.

    python bench/bench.py                          # 2-CPU defaults: resnet18, 64 px, batch 32
    python bench/bench.py --model resnet50 --image-size 224 --batch-size 64 --epochs 4   # a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results.json"
STRATEGIES = ("full", "last_layers", "first_layers", "feature_extraction")


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
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--raw-worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def common_overrides(args: argparse.Namespace) -> list[str]:
    """The config both ftcli and the raw loop are built from (same model, data, batch)."""
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
    args: argparse.Namespace, strategy: str, extra: list[str], work: Path, cache: Path, label: str
) -> dict[str, Any]:
    run_dir = work / label
    run_dir.mkdir(parents=True)
    command = [
        *ftcli_command(),
        "train",
        *common_overrides(args),
        f"strategy={strategy}",
        f"trainer={trainer_preset(args)}",
        f"trainer.max_epochs={args.epochs}",
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
        "epoch_seconds": statistics.mean(epochs[1:] or epochs),
        "first_step_seconds": summary["first_step_done"] - launched,
        "wall_seconds": wall,
        "peak_rss_mib": rss,
        "val_acc": summary["best_val_acc"],
        "trainable_params": summary["trainable_params"],
        "feature_cache": "on" if "feature cache: on" in log else "off",
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


def run_raw(args: argparse.Namespace, work: Path, cache: Path) -> dict[str, Any]:
    run_dir = work / "raw"
    run_dir.mkdir(parents=True)
    forwarded = [
        f"--model={args.model}",
        f"--image-size={args.image_size}",
        f"--batch-size={args.batch_size}",
        f"--epochs={args.epochs}",
        f"--threads={args.threads}",
        f"--trainer={trainer_preset(args)}",
        *([f"--per-class={args.per_class}"] if args.per_class else []),
    ]
    command = [sys.executable, str(Path(__file__).resolve()), "--raw-worker", *forwarded]
    code, _, wall, rss = run_child(command, child_env(args, cache), run_dir / "bench.log")
    text = (run_dir / "bench.log").read_text()
    if code != 0:
        raise SystemExit(f"raw loop failed (exit {code}):\n{text[-3000:]}")
    result = json.loads(text.strip().splitlines()[-1])
    return {"label": "raw PyTorch loop", **result, "wall_seconds": wall, "peak_rss_mib": rss}


def raw_worker(args: argparse.Namespace) -> None:
    """The ceiling: forward, backward, optimizer step on preprocessed in-memory batches; prints JSON."""
    import torch
    from hydra import compose, initialize_config_dir

    from ftcli.device import resolve_precision
    from ftcli.training.build import prepare
    from ftcli.ui.config_groups import config_dir

    torch.set_num_threads(args.threads)
    overrides = [*common_overrides(args), "strategy=full", f"trainer={args.trainer}"]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    torch.manual_seed(int(cfg.seed))
    prepared = prepare(cfg)
    dataset = prepared.datamodule.dataset("train")
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = torch.tensor([int(dataset[i][1]) for i in range(len(dataset))])
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
    batch = args.batch_size
    epoch_seconds = []
    for _ in range(args.epochs):
        order = torch.randperm(len(labels), generator=generator).to(device)
        if gpu:
            torch.cuda.synchronize()
        started = time.perf_counter()
        for start in range(0, len(labels), batch):
            idx = order[start : start + batch]
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = torch.nn.functional.cross_entropy(net(images[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        if gpu:
            torch.cuda.synchronize()
        epoch_seconds.append(time.perf_counter() - started)
    steady = epoch_seconds[1:] or epoch_seconds
    print(
        json.dumps(
            {
                "images_per_second": len(labels) * len(steady) / sum(steady),
                "epoch_seconds": statistics.mean(steady),
                "precision": str(precision),
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
    table = Table(title=title, title_justify="left")
    for column in ("run", "img/s", "epoch s", "first step s", "peak RSS MiB", "val acc"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for row in rows:
        acc = row.get("val_acc")
        table.add_row(
            row["label"],
            f"{row['images_per_second']:,.0f}",
            f"{row['epoch_seconds']:.2f}",
            f"{row['first_step_seconds']:.1f}" if "first_step_seconds" in row else "-",
            f"{row['peak_rss_mib']:,.0f}",
            f"{acc:.1%}" if acc is not None else "-",
        )
    console = Console(width=max(Console().width, 120))
    console.print(table)
    targets = {
        "full_vs_raw": (">=", 0.95),
        "last_layers_vs_full": (">=", 1.5),
        "cached_epoch_speedup": (">=", 20.0),
        "help_seconds": ("<", 1.0),
        "first_step_seconds": ("<", 10.0),
        "advise_seconds": ("<", 60.0),
        "advise_again_seconds": ("<", 5.0),
    }
    for key, (op, target) in targets.items():
        value = results[key]
        met = value >= target if op == ">=" else value < target
        console.print(f"{key:>22} = {value:8.3f}   target {op} {target:g}   {'met' if met else 'NOT met'}")
    console.print(f"{'frozen_peak_rss_lower':>22} = {results['frozen_peak_rss_lower']}")


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
        rows = [run_raw(args, work, cache)]
        print(f"  raw loop: {rows[-1]['images_per_second']:.0f} img/s", flush=True)
        by_label: dict[str, dict[str, Any]] = {}
        plans = [
            *((s, ["data.cache_features=false"], s) for s in STRATEGIES),
            ("feature_extraction", [], "feature_extraction cache build"),
            ("feature_extraction", [], "feature_extraction cached"),
        ]
        for strategy, extra, label in plans:
            row = run_ftcli(args, strategy, extra, work, cache, label.replace(" ", "-"))
            row["label"] = f"ftcli {label}"
            rows.append(row)
            by_label[label] = row
            print(f"  {row['label']}: {row['images_per_second']:.0f} img/s", flush=True)
        advise = [run_advise(args, work, cache, label) for label in ("advise", "advise-again")]
        for row in advise:
            print(f"  {row['label']}: {row['wall_seconds']:.1f} s ({row['advice_seconds']:.1f} s advising)")
        full = by_label["full"]
        cached = by_label["feature_extraction cached"]
        frozen = ("last_layers", "first_layers", "feature_extraction")
        results = {
            "full_vs_raw": full["images_per_second"] / rows[0]["images_per_second"],
            "last_layers_vs_full": by_label["last_layers"]["images_per_second"] / full["images_per_second"],
            "cached_epoch_speedup": full["epoch_seconds"] / cached["epoch_seconds"],
            "help_seconds": help_seconds(),
            "first_step_seconds": full["first_step_seconds"],
            "advise_seconds": advise[0]["wall_seconds"],
            "advise_again_seconds": advise[1]["advice_seconds"],
            "advise": advise,
            "frozen_peak_rss_lower": all(by_label[s]["peak_rss_mib"] < full["peak_rss_mib"] for s in frozen),
            "machine": machine(args),
            "config": {
                "model": args.model,
                "image_size": args.image_size,
                "batch_size": args.batch_size,
                "epochs": args.epochs,
                "per_class": args.per_class,
                "trainer": args.trainer,
                "timed_epochs": "all but the first",
            },
            "runs": rows,
            "bench_seconds": time.perf_counter() - started,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    show(rows, results)
    print(f"wrote {args.out} ({results['bench_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
