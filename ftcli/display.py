"""What ftcli shows in the terminal: config tree, block plan, run and sweep summaries, errors.

Printing happens on rank 0 only, so a multi-process run shows one of each.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

console = Console()
error_console = Console(stderr=True)


def is_rank_zero() -> bool:
    """True in the main process (Lightning's DDP launcher sets these for the extra ranks)."""
    return all(os.environ.get(var, "0") == "0" for var in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def show(renderable: Any) -> None:
    if is_rank_zero():
        console.print(renderable)


def config_tree(cfg: Any) -> Tree:
    """The composed config as a tree, one branch per group."""
    from omegaconf import OmegaConf

    tree = Tree("[bold]config[/bold]")
    plain = OmegaConf.to_container(cfg, resolve=True)
    for key, value in plain.items():
        _add(tree, key, value)
    return tree


def _add(tree: Tree, key: str, value: Any) -> None:
    if isinstance(value, dict):
        branch = tree.add(f"[bold cyan]{key}[/bold cyan]")
        for sub_key, sub_value in value.items():
            _add(branch, str(sub_key), sub_value)
    else:
        tree.add(f"{key}: [green]{value}[/green]")


def plan_table(prepared: Any, base_lr: float) -> Table:
    """Per block: parameters, trainable or frozen, learning rate, BatchNorm mode; totals last."""
    from ftcli.blocks import count_parameters

    plan, net = prepared.plan, prepared.net
    title = (
        f"{prepared.net.family} · strategy {plan.strategy} · recipe {prepared.surgery.recipe} · "
        f"weights: {prepared.weights_label}"
    )
    table = Table(title=title, title_justify="left")
    for column in ("block", "params", "state", "lr", "bn", "autograd"):
        table.add_column(column, justify="right" if column in ("params", "lr") else "left")
    total = trainable = 0
    for index, block in enumerate(plan.blocks):
        params = count_parameters(net.blocks[block.name])
        total += params
        trainable += params if block.trainable else 0
        state = "[green]trainable[/green]" if block.trainable else "[blue]frozen[/blue]"
        lr = f"{base_lr * block.lr_mult:.2e}" if block.trainable else "0"
        grad = "no_grad" if index < plan.no_grad_prefix else "yes"
        table.add_row(block.name, f"{params:,}", state, lr, block.bn, grad)
    table.add_section()
    table.add_row("total", f"{total:,}", f"{trainable:,} trainable", "", "", "")
    return table


def data_line(describe: dict[str, Any]) -> str:
    classes = describe.get("classes", [])
    shown = ", ".join(map(str, classes[:10])) + (" ..." if len(classes) > 10 else "")
    return (
        f"data {describe.get('name')}: {len(classes)} classes [{shown}] · train {describe.get('train')} · "
        f"val {describe.get('val')} · test {describe.get('test') or '-'}"
    )


def run_table(summary: Any) -> Table:
    """The end-of-run summary."""
    table = Table(title=f"ftcli run · {summary.run_dir}", title_justify="left", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value")
    rows = [
        ("model / strategy / recipe", f"{summary.model} / {summary.strategy} / {summary.recipe}"),
        ("data", summary.data),
        ("weights", summary.weights),
        ("best val accuracy", _pct(summary.best_val_acc)),
        ("test accuracy", _pct(summary.test_acc)),
        ("trainable / total params", f"{summary.trainable_params:,} / {summary.total_params:,}"),
        ("epochs", str(summary.epochs)),
        ("wall time", f"{summary.wall_seconds:.1f} s"),
        ("train images/s", f"{summary.images_per_second:.1f}"),
        ("best checkpoint", str(summary.best_checkpoint)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def sweep_table(summaries: Iterable[Any], title: str) -> Table:
    """One row per job of a sweep: what differs, and how it did."""
    table = Table(title=title, title_justify="left")
    for column in ("job", "overrides", "strategy", "trainable params", "val acc", "test acc", "time"):
        table.add_column(column, justify="right" if column not in ("overrides", "strategy") else "left")
    for summary in summaries:
        table.add_row(
            os.path.basename(summary.run_dir),
            " ".join(summary.overrides),
            summary.strategy,
            f"{summary.trainable_params:,}",
            _pct(summary.best_val_acc),
            _pct(summary.test_acc),
            f"{summary.wall_seconds:.1f} s",
        )
    return table


def error(err: BaseException) -> None:
    """A user error: a short red message and its hint, no traceback."""
    message = getattr(err, "message", str(err))
    hint = getattr(err, "hint", None)
    if "Original Traceback" in message:  # re-raised from a DataLoader worker: drop the worker's traceback
        lines = message.splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("ftcli.errors.")]
        if starts:
            message = "\n".join(lines[starts[-1] :]).split(": ", 1)[1]
    error_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    if hint:
        error_console.print(hint, highlight=False, soft_wrap=True)
    sys.stderr.flush()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
