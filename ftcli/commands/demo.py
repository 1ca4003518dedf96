"""``python -m ftcli.commands.demo`` (``make demo``): the seed's story on real data, offline, in minutes.

1. Task A: train resnet18 from scratch on handwritten digits 0-4 (every label); keep its checkpoint.
2. Task B: digits 5-9 with only 5 labelled images per class, starting from task A's checkpoint,
   as a Hydra sweep over the strategies scratch, feature_extraction, last_layers, full, lp_ft, gradual.
3. One comparison table (``ftcli report``): strategy, trainable parameters, accuracy, time.

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

STRATEGIES = ("scratch", "feature_extraction", "last_layers", "full", "lp_ft", "gradual")
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
    parser.add_argument("--per-class", type=int, default=5, help="labelled images per class in task B")
    args = parser.parse_args(argv)
    out = Path(args.out) / time.strftime("%Y-%m-%d_%H-%M-%S")
    started = time.perf_counter()

    console.rule("[bold]1/3 task A: digits 0-4, every label, from scratch")
    ftcli("train", "experiment=digits_source", f"hydra.run.dir={out / 'source'}", "print_config=false")
    source = summary.load(out / "source")
    if source is None or not source.best_checkpoint:
        console.print("[red]task A wrote no checkpoint[/red]")
        return 1

    console.rule(f"[bold]2/3 task B: digits 5-9, {args.per_class} labels per class, from task A's checkpoint")
    ftcli(
        "train",
        "-m",
        "experiment=digits_target",
        f"source_checkpoint={source.best_checkpoint}",
        f"data.per_class={args.per_class}",
        f"strategy={','.join(STRATEGIES)}",
        f"hydra.sweep.dir={out / 'target'}",
        "print_config=false",
        "trainer.enable_progress_bar=false",
    )

    console.rule("[bold]3/3 comparison")
    ftcli("report", str(out / "target"))  # the table, report.csv and report.png (commands/report.py)
    console.print(
        f"task A (digits 0-4, all labels) test accuracy: {100 * (source.test_acc or 0):.1f}% · "
        f"outputs: {out} · demo time {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
