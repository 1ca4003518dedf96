"""The four-regime study (``make study``): which strategy wins, by data size and source similarity.

Target task: MNIST digits 5-9 (``data=mnist``, 64 px), on EfficientNet-Lite0. The 2x2:

- **similar source**: ImageNet Lite0 fine-tuned by ftcli on MNIST digits 0-4 with every label
  (handwritten digits, like the target);
- **dissimilar source**: ImageNet Lite0 fine-tuned by ftcli, the same way, on Fashion-MNIST's ten
  clothing classes (photos of clothes, not strokes); when Debian's ``dataset-fashion-mnist`` is not
  installed, on ftcli's generated geometric shapes instead (said in the output);
- **little data**: 5 labelled images per class, seeds 0, 1, 2 (each seed draws other images and
  another validation/test split); **much data**: every training image (about 1,650), seed 0.

Two more cells start from the shipped ImageNet Lite0 itself (source ``imagenet``, no fine-tuning on a
source task). The text column (cells ``text_little``, ``text_much``) is the article's text example on a
network that fits the time: all-MiniLM-L6-v2 as shipped (a sentence encoder pretrained on general
English) fine-tuned for movie-review sentiment (``data=movie_reviews``), 16 labelled sentences per class
(seeds 0, 1, 2) or 1,000 per class (seed 0), every strategy at the transformer rate 1e-4 but the probe.

Every cell runs every strategy through the real CLI (one Hydra sweep per cell at AdamW 1e-3
(the text cells 1e-4), one for feature_extraction at lr 1e-2, the demo's probe rate, one of
``strategy=auto auto.mode=rule``, the advisor's rule, and one of ``strategy=auto auto.mode=race``, the
race of its shortlist on the validation split, with the same seeds), then the script
prints and writes (``study.md``, ``study.json``) mean test accuracy and spread (min-max over seeds)
per cell and strategy, which strategy the four-regime rule recommends there, and what auto picked
(rule and race), its accuracy, its gap to the best strategy of the cell and, for the race, its cost
in runs (wall time of advice + race + final run over the final run's). Not run by CI; about 3 hours
on 2 CPU cores for every cell (the race adds up to one run per auto run; the text cells alone took 72 min).

Usage: python -m bench.regime_study [--out outputs/study] [--seeds 0,1,2] [--much-epochs 3]
       [--cells imagenet_little,text_little,...] [--no-bnrecal]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

STRATEGIES = ("scratch", "feature_extraction", "last_layers", "first_layers", "full", "lp_ft", "gradual")
# every strategy at ftcli's default lr (AdamW 1e-3) but the linear probe, which gets the demo's 1e-2
# (chosen there on the validation split): few steps at 1e-3 leave a fresh head far from converged
PROBE = "feature_extraction"
PROBE_LR = "0.01"
# the strategies whose trainable blocks hold BatchNorm layers: where strategy.bn_recalibrate can act
# (the probe trains only the head; scratch is not a transfer strategy)
RECALIBRATED = ("last_layers", "first_layers", "full", "lp_ft", "gradual")
FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
# what the seed's four-regime rule says for each cell
SOURCES = ("similar", "dissimilar", "imagenet", "text")
RULE = {
    ("similar", "little"): "last_layers / feature_extraction",
    ("similar", "much"): "full",
    ("dissimilar", "little"): "first_layers",
    ("dissimilar", "much"): "scratch",
    ("imagenet", "little"): "(not a seed regime: ImageNet photos -> digits)",
    ("imagenet", "much"): "(not a seed regime: ImageNet photos -> digits)",
    ("text", "little"): "last_layers / feature_extraction (general English -> reviews taken as similar)",
    ("text", "much"): "full (general English -> reviews taken as similar)",
}
QUIET = ["print_config=false", "trainer.enable_progress_bar=false", "trainer=cpu"]
# optimizer.decay_norm_and_bias=true: the study was measured before the no-decay convention became
# the default; pinned so that it reproduces and later sweeps (BN recalibration) compare like with like
COMMON = [
    "optimizer.decay_norm_and_bias=true",
    "model=efficientnet_lite0",
    "data=mnist",
    "data.image_size=64",
    "data.val_fraction=0.02",
    "data.test_fraction=0.3",
]
IMAGE_TARGET = [*COMMON, "data.classes=[5,6,7,8,9]"]
# The text cells: MiniLM (22.7M parameters) rather than SmolLM2-135M, whose live steps (~3 s on 2 cores)
# would make its full-network strategies take hours; 5% validation (528 sentences), 20% test (2,114).
# lr 1e-4, a usual transformer fine-tuning rate (ftcli's 1e-3 sends full fine-tuning of MiniLM to chance).
TEXT_LR = "1e-4"
TEXT_TARGET = [
    "model=minilm_l6",
    "data=movie_reviews",
    "data.val_fraction=0.05",
    "data.test_fraction=0.2",
    f"optimizer.lr={TEXT_LR}",
]
TEXT_SOURCE = "all-MiniLM-L6-v2 as shipped, a sentence encoder pretrained on general English"


def ftcli(*args: str) -> None:
    print("$ ftcli " + " ".join(args), flush=True)
    result = subprocess.run([sys.executable, "-m", "ftcli.cli", *args], check=False)
    if result.returncode != 0:
        raise SystemExit(f"study step failed (exit {result.returncode})")


def train_source(out: Path, similarity: str) -> tuple[str, str]:
    """The source network: ImageNet Lite0 as shipped, or fine-tuned by ftcli on the source task
    (its best checkpoint); returns its ``model.weights`` value and a description."""
    if similarity == "imagenet":
        return "imagenet", "ImageNet Lite0 as shipped, no fine-tuning"
    if similarity == "text":
        return "package", TEXT_SOURCE
    similar = similarity == "similar"
    run = out / ("source_similar" if similar else "source_dissimilar")
    if similar:
        data, what = ["data=mnist", "data.classes=[0,1,2,3,4]"], "MNIST digits 0-4, every label"
    elif (FASHION_ROOT / "train-labels-idx1-ubyte.gz").is_file():
        data = ["data=torchvision", "data.name=FashionMNIST", f"data.root={FASHION_ROOT}"]
        data.append("data.per_class=300")
        what = "Fashion-MNIST, 10 clothing classes, 300 per class"
    else:
        data, what = ["data=shapes", "data.per_class=300"], "generated shapes (Fashion-MNIST not installed)"
    if not (run / "checkpoints" / "best.ckpt").is_file():
        ftcli(
            "train", "model=efficientnet_lite0", "strategy=full", *data, "data.image_size=64",
            "data.val_fraction=0.02", "data.batch_size=32", "trainer.max_epochs=3",
            f"hydra.run.dir={run}", *QUIET,
        )  # fmt: skip
    return str(run / "checkpoints" / "best.ckpt"), what


def cell_overrides(similarity: str, size: str, much_epochs: int) -> list[str]:
    """The target task of a cell, and its data size and schedule: every run of the cell shares these."""
    if similarity == "text":
        if size == "little":
            return [*TEXT_TARGET, "data.per_class=16", "data.batch_size=16", "trainer.max_epochs=10"]
        much = ["data.per_class=1000", "data.batch_size=32", f"trainer.max_epochs={much_epochs}"]
        return [*TEXT_TARGET, *much]
    if size == "little":
        return [*IMAGE_TARGET, "data.per_class=5", "data.batch_size=16", "trainer.max_epochs=20"]
    return [*IMAGE_TARGET, "data.batch_size=32", f"trainer.max_epochs={much_epochs}"]


def cell_sweeps(cell: Path, similarity: str, size: str, bnrecal: bool) -> list[tuple[Path, list[str]]]:
    """The sweeps of a cell, each a folder and what it varies: every strategy but the probe, the probe at
    its own lr, ``strategy=auto`` with the rule's pick, the race's winner and, in little-data image cells,
    the strategies that train BatchNorm layers with ``strategy.bn_recalibrate=true`` (a text network has
    no BatchNorm)."""
    others = ",".join(s for s in STRATEGIES if s != PROBE)
    sweeps = [
        (cell, [f"strategy={others}"]),
        (cell.with_name(cell.name + "_probe"), [f"strategy={PROBE}", f"optimizer.lr={PROBE_LR}"]),
        (cell.with_name(cell.name + "_auto"), ["strategy=auto", "auto.mode=rule"]),
        (cell.with_name(cell.name + "_race"), ["strategy=auto", "auto.mode=race"]),
    ]
    if size == "little" and bnrecal and similarity != "text":
        recalibrated = [f"strategy={','.join(RECALIBRATED)}", "strategy.bn_recalibrate=true"]
        sweeps.append((cell.with_name(cell.name + "_bnrecal"), recalibrated))
    return sweeps


def run_cell(
    out: Path,
    similarity: str,
    source: str,
    size: str,
    seeds: list[int],
    much_epochs: int,
    bnrecal: bool = True,
) -> list[Path]:
    """Run the sweeps of one cell from ``source`` (a sweep already run is skipped); returns their folders
    in :func:`cell_sweeps`' order."""
    sweeps = cell_sweeps(out / f"{similarity}_{size}", similarity, size, bnrecal)
    target = cell_overrides(similarity, size, much_epochs)
    for sweep, chosen in sweeps:
        if list(sweep.glob("*/summary.json")):
            continue
        ftcli(
            "train", "-m", *target, f"model.weights={source}", *chosen,
            f"seed={','.join(map(str, seeds))}", f"hydra.sweep.dir={sweep}", *QUIET,
        )  # fmt: skip
    return [sweep for sweep, _ in sweeps]


def collect(sweeps: list[Path]) -> dict[str, list[float]]:
    """Test accuracy of every run of the strategy sweeps, by strategy; the probe only from its own sweep."""
    by_strategy: dict[str, list[float]] = {}
    for index, sweep in enumerate(sweeps[:2]):
        for path in sorted(sweep.glob("*/summary.json")):
            summary = json.loads(path.read_text())
            if (summary["strategy"] == PROBE) == (index == 0):
                continue  # a probe run in the main sweep (older layout), or the other way round
            by_strategy.setdefault(summary["strategy"], []).append(float(summary["test_acc"]))
    return by_strategy


def collect_auto(sweep: Path) -> list[dict[str, object]]:
    """What ``strategy=auto`` picked in each run of its sweep (the race's winner when it raced), the test
    accuracy it reached and, for a race, its cost: epochs and wall time in multiples of the final run."""
    picks = []
    for path in sorted(sweep.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        record = json.loads((path.parent / "advice.json").read_text())
        decision, race = record["decision"], record.get("race")
        overrides = race["winner_overrides"] if race else decision.get("overrides", [])
        pick = {
            "pick": " ".join(o.removeprefix("strategy.") for o in overrides),
            "regime": f"{decision.get('similarity')} / {decision.get('size')}",
            "test_acc": float(summary["test_acc"]),
            "seed": _seed(path.parent),
            "numbers": decision.get("numbers", {}),
        }
        final = float(summary["wall_seconds"])
        advice, raced = float(record["seconds"]), float(race["seconds"]) if race else 0.0
        # what auto cost over its final run alone: the advice (probes), and the race when it raced
        pick["cost_wall"] = (advice + raced + final) / final
        pick["advice_wall"] = (advice + final) / final
        if race:
            pick["race"] = {
                "rule_pick": " ".join(decision.get("overrides", [])),
                "scores": {e["label"]: e["scores"] for e in race["entrants"]},
                "cost_epochs": race["cost_in_runs"],
            }
        picks.append(pick)
    return picks


def _seed(run: Path) -> int | None:
    """The seed a sweep job ran with (its config.yaml)."""
    config = run / "config.yaml"
    for line in config.read_text().splitlines() if config.is_file() else []:
        if line.startswith("seed:"):
            return int(line.split(":", 1)[1])
    return None


def auto_table(results: dict[str, dict[str, list[float]]], autos: dict[str, list[dict]]) -> str:
    """Per cell and auto mode: what auto picked (per seed), its mean test accuracy, the sweep's best, the
    gap and its cost in runs: training epochs, and wall time (advice, race, final run) over the final run's
    (mean, min-max over seeds; the rule's is the advice alone)."""
    lines = [
        "| cell | auto picked (per seed) | auto | best of the sweep | gap (points) | cost (epochs / wall) |",
        "|---|---|---:|---|---:|---:|",
    ]
    for cell, picks in autos.items():
        if not picks:
            continue
        accs = results[cell.split(" ")[0]]  # "imagenet_little (race)": that cell's sweep
        best = max(accs, key=lambda s: statistics.mean(accs[s]))
        best_mean = statistics.mean(accs[best])
        auto_mean = statistics.mean(float(p["test_acc"]) for p in picks)
        chosen = "; ".join(str(p["pick"]).replace("strategy=", "") for p in picks)
        raced = [p["race"] for p in picks if "race" in p]
        walls = [float(p["cost_wall"]) for p in picks if "cost_wall" in p]
        wall = f"{statistics.mean(walls):.1f}x ({min(walls):.1f}-{max(walls):.1f})" if walls else "-"
        cost = f"1.0x / {wall}"
        if raced:
            cost = f"{statistics.mean(r['cost_epochs'] for r in raced):.1f}x / {wall}"
        lines.append(
            f"| {cell} | {chosen} | {100 * auto_mean:.1f} | {best} {100 * best_mean:.1f} | "
            f"{100 * (best_mean - auto_mean):.1f} | {cost} |"
        )
    return "\n".join(lines)


def collect_recalibrated(sweep: Path) -> dict[str, list[float]]:
    """Test accuracy of every run of a ``strategy.bn_recalibrate=true`` sweep, by strategy."""
    by_strategy: dict[str, list[float]] = {}
    for path in sorted(sweep.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        by_strategy.setdefault(summary["strategy"], []).append(float(summary["test_acc"]))
    return by_strategy


def recalibration_table(
    results: dict[str, dict[str, list[float]]], recalibrated: dict[str, dict[str, list[float]]]
) -> str:
    """Per little-data cell and strategy: test accuracy without and with ``strategy.bn_recalibrate``."""
    lines = [
        "| cell | strategy | off: mean (min-max) | on: mean (min-max) | on - off (points) |",
        "|---|---|---:|---:|---:|",
    ]

    def spread(values: list[float]) -> str:
        return f"{100 * statistics.mean(values):.1f} ({100 * min(values):.1f}-{100 * max(values):.1f})"

    for cell, accs in recalibrated.items():
        for strategy in RECALIBRATED:
            off, on = results[cell].get(strategy), accs.get(strategy)
            if not off or not on:
                continue
            gain = 100 * (statistics.mean(on) - statistics.mean(off))
            lines.append(f"| {cell} | {strategy} | {spread(off)} | {spread(on)} | {gain:+.1f} |")
    return "\n".join(lines)


def table(results: dict[str, dict[str, list[float]]], sources: dict[str, str]) -> str:
    """A markdown table: one row per cell, one column per strategy, mean (min-max) test accuracy."""
    lines = [
        "| source / target data | " + " | ".join(STRATEGIES) + " | rule recommends |",
        "|---|" + "---:|" * len(STRATEGIES) + "---|",
    ]
    for cell, accs in results.items():
        similarity, size = cell.split("_")
        best = max(STRATEGIES, key=lambda s: statistics.mean(accs.get(s, [0.0])))
        cells = []
        for strategy in STRATEGIES:
            values = accs.get(strategy, [])
            if not values:
                cells.append("-")
                continue
            text = f"{100 * statistics.mean(values):.1f}"
            if len(values) > 1:
                text += f" ({100 * min(values):.1f}-{100 * max(values):.1f})"
            cells.append(f"**{text}**" if strategy == best else text)
        label = f"{similarity} ({sources[similarity]}) / {size}"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {RULE[(similarity, size)]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="outputs/study")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the little-data cells")
    parser.add_argument("--much-epochs", type=int, default=3)
    parser.add_argument("--cells", default=None, help="only these cells, e.g. imagenet_little")
    parser.add_argument("--no-bnrecal", action="store_true", help="skip the BN recalibration sweeps")
    args = parser.parse_args(argv)
    cells = None if args.cells is None else set(args.cells.split(","))
    valid = [f"{similarity}_{size}" for similarity in SOURCES for size in ("little", "much")]
    unknown = sorted((cells or set()) - set(valid))
    if unknown:
        parser.error(f"unknown cell(s) {', '.join(unknown)}; valid cells: {', '.join(valid)}")
    out = Path(args.out)
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()

    sources: dict[str, str] = {}
    results: dict[str, dict[str, list[float]]] = {}
    autos: dict[str, list[dict]] = {}
    recalibrated: dict[str, dict[str, list[float]]] = {}
    for similarity in SOURCES:
        sizes = [s for s in ("little", "much") if cells is None or f"{similarity}_{s}" in cells]
        if not sizes:
            continue
        weights, sources[similarity] = train_source(out, similarity)
        for size in sizes:
            cell_seeds = seeds if size == "little" else seeds[:1]
            sweeps = run_cell(
                out, similarity, weights, size, cell_seeds, args.much_epochs, bnrecal=not args.no_bnrecal
            )
            results[f"{similarity}_{size}"] = collect(sweeps)
            autos[f"{similarity}_{size} (rule)"] = collect_auto(sweeps[2])
            autos[f"{similarity}_{size} (race)"] = collect_auto(sweeps[3])
            if len(sweeps) > 4:
                recalibrated[f"{similarity}_{size}"] = collect_recalibrated(sweeps[4])

    text = "\n\n".join(
        [table(results, sources), auto_table(results, autos), recalibration_table(results, recalibrated)]
    )
    minutes = (time.perf_counter() - started) / 60
    print(text)
    print(f"\nstudy time {minutes:.0f} min; test accuracy in %, mean (min-max over seeds); best in bold")
    (out / "study.md").write_text(text + "\n")
    (out / "study.json").write_text(
        json.dumps(
            {
                "sources": sources,
                "results": results,
                "auto": autos,
                "bn_recalibrate": recalibrated,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
