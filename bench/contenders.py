"""The contenders: the raw PyTorch loop and ``ftcli train`` per strategy, each in a child process, run
in interleaved rounds so that a slow spell of a shared machine hits every contender alike."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.processes import bench_module_env, checked_log, child_env, ftcli_command, run_child, trainer_preset
from bench.stats import aggregate, ratio_keys, ratios, round_order

# the live path (no feature cache): the frozen blocks run every epoch
LIVE = ["data.cache_features=false"]
# digits: these strategies run in every round, interleaved with the raw loop (their ratios are targets) ...
DIGITS_ROUNDS = ("full", "last_layers")
# ... these once each, after the rounds (then the feature_extraction cache build and the cached run)
DIGITS_ONCE = ("first_layers", "feature_extraction")
LP_FT_PROBE_EPOCHS = 3


@dataclass(frozen=True)
class Suite:
    """One data set the contenders run on: the overrides that build model and data, and epochs."""

    name: str  # digits | jpeg: the run folders' prefix and each row's "suite"
    prefix: str  # before each row's label
    overrides: tuple[str, ...]
    epochs: int


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
    log = checked_log(code, f"ftcli {label}", run_dir / "bench.log")
    summary = json.loads((run_dir / "summary.json").read_text())
    epochs = summary["epoch_seconds"]
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


def run_raw(args: argparse.Namespace, suite: Suite, work: Path, cache: Path, label: str) -> dict[str, Any]:
    """The raw loop in a subprocess (``python -m bench --raw-worker``) on the suite's config."""
    run_dir = work / label
    run_dir.mkdir(parents=True)
    forwarded = [
        f"--epochs={suite.epochs}",
        f"--threads={args.threads}",
        f"--trainer={trainer_preset(args)}",
        *(f"--raw-override={override}" for override in suite.overrides),
    ]
    command = [sys.executable, "-m", "bench", "--raw-worker", *forwarded]
    env = bench_module_env(child_env(args, cache))
    code, _, wall, rss = run_child(command, env, run_dir / "bench.log")
    text = checked_log(code, "raw loop", run_dir / "bench.log")
    result = json.loads(text.strip().splitlines()[-1])
    return {"label": "raw PyTorch loop", **result, "wall_seconds": wall, "peak_rss_mib": rss}


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


def run_lora_suite(
    args: argparse.Namespace, work: Path, cache: Path, phase_seconds: dict[str, float]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``full`` and ``lora`` on the same pretrained network (``--lora-model`` with its default weights:
    adapters need pretrained ones) and digits config, interleaved for ``--repeats`` rounds: LoRA's step
    throughput and peak resident memory against full fine-tuning's."""
    started = time.perf_counter()
    overrides = [f"model={args.lora_model}", *common_overrides(args)[1:]]
    overrides.remove("model.weights=null")
    suite = Suite("lora", "LoRA suite: ", tuple(overrides), args.epochs)
    runs: dict[str, list[dict[str, Any]]] = {"full": [], "lora": []}
    for r in range(1, args.repeats + 1):
        for name in round_order(list(runs), r):
            runs[name].append(run_ftcli(args, suite, name, LIVE, work, cache, f"lora-suite-{name}-{r}"))
        done = ", ".join(f"{name} {runs[name][-1]['step_images_per_second']:.0f}" for name in runs)
        print(f"  lora round {r}/{args.repeats}: {done} img/s (median step)", flush=True)
    rows = [aggregate(found, f"{suite.prefix}ftcli {name}", suite.name) for name, found in runs.items()]
    step = ratios(runs["lora"], runs["full"], "step_images_per_second")
    rss = [lo["peak_rss_mib"] / fu["peak_rss_mib"] for lo, fu in zip(runs["lora"], runs["full"], strict=True)]
    phase_seconds["lora"] = time.perf_counter() - started
    return rows, {
        **ratio_keys("lora_vs_full_step", step),
        "lora_peak_rss_vs_full": statistics.median(rss),
        "lora_trainable_vs_full": runs["lora"][0]["trainable_params"] / runs["full"][0]["trainable_params"],
        "lora_model": args.lora_model,
    }
