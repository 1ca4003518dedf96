"""LoRA against the other strategies, measured (``python -m bench.lora_study``; not run by CI).

Two tasks, each through the real CLI, one process per run (so each run's peak memory is its own):

- **text**: SmolLM2-135M on movie-review sentiment, ``experiment=movie_reviews_few_labels`` with
  ``data.per_class`` sentences per class (default 32) and 5% of the sentences (528) for test;
- **images**: the ImageNet EfficientNet-Lite0 on MNIST, ``experiment=mnist_few_labels`` (5 images per
  class, 1,500 test images, 20 epochs).

Contenders ``full``, ``lora``, ``last_layers`` and ``feature_extraction`` (``--contenders``; also
``lora-r8``: ``strategy.r=8``) with the seeds given. Learning rates are what a careful user picks without
looking at test numbers, documented in docs/strategies.md: the task's rate for ``full`` and
``last_layers`` (text 1e-4, images 1e-3), the demo's 1e-2 for the linear probe, and for LoRA the usual
higher adapter rate (text 1e-3, images 1e-3) with the defaults ``strategy.r=auto`` and ``alpha=auto``
(r=8, alpha=16 on SmolLM2; r=2, alpha=4 on Lite0, where r=8 would be 5.4% of the backbone). Per run:
test accuracy, trainable parameters and their share, ``best.ckpt`` size, peak
resident memory and the median training step throughput (``summary.json``); per strategy the mean and
the min-max over seeds. Writes ``lora_study.md`` and ``lora_study.json``.

Usage: python -m bench.lora_study [--out outputs/lora-study] [--seeds 0,1] [--tasks text,images]
       [--contenders full,lora,lora-r8,last_layers,feature_extraction]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from bench.processes import child_env, ftcli_command, run_child

TASKS = {
    "text": {
        "args": ["experiment=movie_reviews_few_labels", "data.test_fraction=0.05"],
        "lr": {"full": "1e-4", "last_layers": "1e-4", "feature_extraction": "1e-2", "lora": "1e-3"},
    },
    "images": {
        "args": ["experiment=mnist_few_labels"],
        "lr": {"full": "1e-3", "last_layers": "1e-3", "feature_extraction": "1e-2", "lora": "1e-3"},
    },
}
# contender -> (strategy, its extra overrides)
CONTENDERS = {
    "full": ("full", []),
    "lora": ("lora", []),
    "lora-r8": ("lora", ["strategy.r=8"]),
    "last_layers": ("last_layers", []),
    "feature_extraction": ("feature_extraction", []),
}
DEFAULT_CONTENDERS = "full,lora,last_layers,feature_extraction"


def run(task: str, contender: str, seed: int, out: Path, args: argparse.Namespace) -> dict:
    folder = out / task / f"{contender}-seed{seed}"
    strategy, extra = CONTENDERS[contender]
    summary = folder / "summary.json"
    if not summary.is_file():  # a rerun continues where an interrupted study stopped
        folder.parent.mkdir(parents=True, exist_ok=True)
        overrides = [*TASKS[task]["args"], f"strategy={strategy}", *extra, f"seed={seed}"]
        overrides += [f"optimizer.lr={TASKS[task]['lr'][strategy]}", f"hydra.run.dir={folder}"]
        if task == "text":
            overrides.append(f"data.per_class={args.text_per_class}")
        overrides += ["trainer.enable_progress_bar=false", "print_config=false"]
        log = folder.parent / f"{contender}-seed{seed}.log"
        env = child_env(argparse.Namespace(threads=args.threads), out / "feature-cache")
        code, _, wall, rss = run_child([*ftcli_command(), "train", *overrides], env, log)
        if code != 0:
            raise SystemExit(f"{task} {contender} seed {seed} failed (exit {code}); see {log}")
        (folder / "peak_rss.json").write_text(json.dumps({"peak_rss_mib": rss, "wall_s": wall}))
        (folder / "checkpoints" / "last.ckpt").unlink(missing_ok=True)  # up to 1.6 GB for text; best stays
    result = json.loads(summary.read_text())
    measured = json.loads((folder / "peak_rss.json").read_text())
    return {
        "task": task,
        "strategy": contender,
        "seed": seed,
        "test_acc": result["test_acc"],
        "trainable": result["trainable_params"],
        "total": result["total_params"],
        "checkpoint_mb": Path(result["best_checkpoint"]).stat().st_size / 1e6,
        "peak_rss_mib": measured["peak_rss_mib"],
        "samples_per_s": result.get("median_step_images_per_second"),
        "fit_s": result["fit_seconds"],
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| task | strategy | test accuracy, mean (min-max) | trainable (share) | best.ckpt | peak RSS | "
        "train samples/s | fit time |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for task in dict.fromkeys(r["task"] for r in rows):
        for contender in CONTENDERS:
            runs = [r for r in rows if r["task"] == task and r["strategy"] == contender]
            if not runs:
                continue
            accs = [100 * r["test_acc"] for r in runs]
            accuracy = f"{statistics.mean(accs):.1f}% ({min(accs):.1f}-{max(accs):.1f})"
            first = runs[0]
            speed = statistics.median(r["samples_per_s"] or 0.0 for r in runs)
            lines.append(
                f"| {task} | `{contender}` | {accuracy} | "
                f"{first['trainable']:,} ({100 * first['trainable'] / first['total']:.2f}%) | "
                f"{first['checkpoint_mb']:.1f} MB | {max(r['peak_rss_mib'] for r in runs):,.0f} MiB | "
                f"{speed:.1f} | {statistics.median(r['fit_s'] for r in runs):.0f} s |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/lora-study"))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--tasks", default="text,images")
    parser.add_argument("--text-per-class", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--contenders", default=DEFAULT_CONTENDERS, help=f"of {', '.join(CONTENDERS)}")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    contenders = args.contenders.split(",")
    unknown = sorted(set(contenders) - set(CONTENDERS))
    if unknown:
        parser.error(f"unknown contenders {', '.join(unknown)}; choose from {', '.join(CONTENDERS)}")
    rows = []
    for task in args.tasks.split(","):
        for seed in seeds:
            for contender in contenders:
                rows.append(run(task, contender, seed, args.out.resolve(), args))
                print(json.dumps(rows[-1]), flush=True)
    report = table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lora_study.json").write_text(json.dumps(rows, indent=2))
    (args.out / "lora_study.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
