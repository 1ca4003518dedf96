"""The article's text example, measured: SmolLM2 fine-tuned for movie-review sentiment with few labels.

Usage: python -m bench.text_study [--labels 10 50 100] [--seeds 1 2 3] [--out outputs/text_study]

For each label budget (labelled training sentences per class) and seed, it runs ``ftcli train`` (the
real CLI) on ``data=movie_reviews`` with a 1% validation and 4% test split (106 and 423 sentences,
the same for every budget of a seed) and compares:
- ``feature_extraction`` on the pretrained SmolLM2-135M (a linear probe on its last token),
- the same probe on a random-init SmolLM2 (``model.weights=null``): what pretraining adds,
- ``scratch``: the whole random-init network trained (one seed per budget: it trains 135M weights live).
The probes train 60 epochs at lr 0.01 (a linear probe on frozen features converges slowly at the
default 0.001), the best validation epoch is tested. It prints and writes ``text_study.md``:
mean, standard deviation and every seed's test accuracy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

COMMON = [
    "model=smollm2_135m", "data=movie_reviews", "data.val_fraction=0.01", "data.test_fraction=0.04",
    "trainer=cpu", "trainer.enable_progress_bar=false", "print_config=false",
]  # fmt: skip
PROBE = ["strategy=feature_extraction", "trainer.max_epochs=60", "optimizer.lr=0.01"]
CONTENDERS = {
    "pretrained · feature_extraction": PROBE,
    "random init · feature_extraction": [*PROBE, "model.weights=null"],
    "scratch": ["strategy=scratch", "trainer.max_epochs=5"],
}  # fmt: skip
ONE_SEED = {"scratch"}


def run(out: Path, name: str, labels: int, seed: int, args: list[str]) -> float:
    """One ``ftcli train``; its test accuracy (from summary.json), in percent."""
    run_dir = out / f"{name.replace(' · ', '-').replace(' ', '_')}-{labels}-{seed}"
    summary = run_dir / "summary.json"
    if not summary.is_file():
        command = [sys.executable, "-m", "ftcli.cli", "train", *COMMON, *args,
                   f"data.per_class={labels}", f"seed={seed}", f"hydra.run.dir={run_dir}"]  # fmt: skip
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return 100.0 * float(json.loads(summary.read_text())["test_acc"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=Path("outputs/text_study"))
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    lines = ["| contender | labels/class | test accuracy % (mean ± sd) | per seed |", "|---|---:|---:|---|"]
    for labels in options.labels:
        for name, args in CONTENDERS.items():
            seeds = options.seeds[:1] if name in ONE_SEED else options.seeds
            accs = [run(options.out, name, labels, seed, args) for seed in seeds]
            spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
            shown = ", ".join(f"{seed}: {acc:.1f}" for seed, acc in zip(seeds, accs, strict=True))
            lines.append(f"| {name} | {labels} | {statistics.mean(accs):.1f} ± {spread:.1f} | {shown} |")
            print(lines[-1], flush=True)
    (options.out / "text_study.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
