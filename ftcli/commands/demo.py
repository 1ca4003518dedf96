"""``python -m ftcli.commands.demo`` (``make demo``): the seed's story on a real ImageNet network, offline.

1. Part 1: ImageNet EfficientNet-Lite0 (weights installed with ftcli) to handwritten MNIST digits
   with 5 labelled images per class, swept over the strategies scratch, last_layers, first_layers,
   full, lp_ft and gradual (``experiment=mnist_few_labels``), plus feature_extraction at its own lr.
2. Part 2, chaining (cars -> trucks): Lite0 fine-tuned on digits 0-4 with every label is the start of
   digits 5-9 with 5 labels per class, against the same run started from ImageNet directly.
3. Part 3, the article's text example: SmolLM2-135M (a GPT-style LM pretrained on general text) fine-tuned
   for movie-review sentiment with 16 labelled sentences per class: scratch, feature_extraction,
   last_layers and full (``experiment=movie_reviews_few_labels``).
4. One comparison table per part (``ftcli report``): strategy, accuracy, trainable parameters, time.

Every step is the real CLI run as a subprocess, so the demo shows exactly what a user would type.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from ftcli.runs import summary

# AdamW at ftcli's default lr 1e-3, except feature_extraction: a linear probe of 80 steps needs a higher
# rate; 1e-2 was chosen on the validation split from 3e-3 / 1e-2 / 3e-2 (docs/demo.md)
STRATEGIES = ("scratch", "last_layers", "first_layers", "full", "lp_ft", "gradual")
PROBE_LR = "0.01"
# part 3 trains these live at the experiment's lr 1e-4 (a usual transformer fine-tuning rate)
TEXT_STRATEGIES = ("scratch", "last_layers", "full")
QUIET = ("print_config=false", "trainer.enable_progress_bar=false")
console = Console()


def ftcli(*args: str) -> None:
    """Run one ftcli command, echoing it; stop the demo if it fails."""
    console.print(f"\n[bold]$ ftcli {' '.join(args)}[/bold]")
    result = subprocess.run([sys.executable, "-m", "ftcli.cli", *args], check=False)
    if result.returncode != 0:
        console.print(f"[red]demo step failed (exit {result.returncode})[/red]")
        raise SystemExit(result.returncode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="outputs/demo", help="parent folder; each demo run gets its own")
    parser.add_argument("--per-class", type=int, default=5, help="labelled images per class (parts 1 and 2)")
    parser.add_argument("--parts", default="1,2,3", help="which parts to run, e.g. 3 for the text part alone")
    args = parser.parse_args(argv)
    parts = {part.strip() for part in args.parts.split(",")}
    out = Path(args.out) / time.strftime("%Y-%m-%d_%H-%M-%S")
    started = time.perf_counter()

    if "1" in parts:
        images_part(out, args.per_class)
    if "2" in parts and chaining_part(out, args.per_class) != 0:
        return 1
    if "3" in parts:
        text_part(out)
    console.print(f"outputs: {out} · demo time {time.perf_counter() - started:.0f} s")
    return 0


def images_part(out: Path, per_class: int) -> None:
    """Part 1: ImageNet Lite0 to MNIST with few labels, every strategy."""
    console.rule(f"[bold]1/3 ImageNet EfficientNet-Lite0 -> MNIST, {per_class} labels per class")
    ftcli(
        "train",
        "-m",
        "experiment=mnist_few_labels",
        f"data.per_class={per_class}",
        f"strategy={','.join(STRATEGIES)}",
        f"hydra.sweep.dir={out / 'part1' / 'sweep'}",
        *QUIET,
    )
    ftcli(
        "train",
        "experiment=mnist_few_labels",
        f"data.per_class={per_class}",
        "strategy=feature_extraction",
        f"optimizer.lr={PROBE_LR}",
        f"hydra.run.dir={out / 'part1' / 'feature_extraction'}",
        *QUIET,
    )
    ftcli("report", str(out / "part1"))  # the table, report.csv and report.png (commands/report.py)


def chaining_part(out: Path, per_class: int) -> int:
    """Part 2: a model trained on digits 0-4 is the start of digits 5-9 (cars -> trucks)."""
    console.rule("[bold]2/3 chaining: digits 0-4 (every label) -> digits 5-9 (few labels)")
    ftcli("train", "experiment=mnist_source", f"hydra.run.dir={out / 'part2' / 'source'}", *QUIET)
    source = summary.load(out / "part2" / "source")
    if source is None or not source.best_checkpoint:
        console.print("[red]task A wrote no checkpoint[/red]")
        return 1
    ftcli(
        "train",
        "-m",
        "experiment=mnist_target",
        f"source_checkpoint=imagenet,{source.best_checkpoint}",
        f"data.per_class={per_class}",
        f"hydra.sweep.dir={out / 'part2' / 'target'}",
        *QUIET,
    )

    ftcli("report", str(out / "part2" / "target"))
    console.print(f"task A (digits 0-4, every label) test accuracy: {100 * (source.test_acc or 0):.1f}%")
    return 0


def text_part(out: Path) -> None:
    """Part 3: the article's text example, SmolLM2 fine-tuned for movie-review sentiment."""
    console.rule(
        "[bold]3/3 text: SmolLM2-135M (GPT-style, pretrained) -> movie-review sentiment, 16 labels per class"
    )
    ftcli(
        "train",
        "-m",
        "experiment=movie_reviews_few_labels",
        f"strategy={','.join(TEXT_STRATEGIES)}",
        f"hydra.sweep.dir={out / 'part3' / 'sweep'}",
        *QUIET,
    )
    ftcli(
        "train",
        "experiment=movie_reviews_few_labels",
        "strategy=feature_extraction",
        f"optimizer.lr={PROBE_LR}",
        "trainer.max_epochs=30",  # on cached features an epoch takes milliseconds
        f"hydra.run.dir={out / 'part3' / 'feature_extraction'}",
        *QUIET,
    )
    ftcli("report", str(out / "part3"))


if __name__ == "__main__":
    sys.exit(main())
