"""``ftcli report DIR [DIR ...] [sort=test_acc]``: every finished run under some folders, compared.

A folder is a run (it holds summary.json) or holds runs at any depth (a multirun sweep, a folder of
sweeps). One table: what differs between the runs (their overrides), model / strategy / recipe /
data, best validation and test accuracy, trainable parameters, epochs (and where a search's pruner
stopped a trial) and fit time, sorted by a metric; the same rows go to report.csv and the accuracies
to report.png.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ftcli.command_line.key_value_args import Key, natural_key, parse, usage, wants_help
from ftcli.errors import ConfigError, DataError, unknown_name
from ftcli.runs.summary import SUMMARY_FILE, RunSummary, load
from ftcli.ui import console

# sort= names -> RunSummary fields, and whether bigger is better (sorted first by default)
METRICS = {
    "test_acc": ("test_acc", True),
    "val_acc": ("best_val_acc", True),
    "trainable": ("trainable_params", False),
    "params": ("total_params", False),
    "epochs": ("epochs", False),
    "time": ("fit_seconds", False),
    "wall_time": ("wall_seconds", False),
    "images_per_s": ("images_per_second", True),
    "run": ("run_dir", False),
}
SUMMARY = "compare finished runs (a sweep's folder, or run folders): table, report.csv, report.png"
KEYS = (
    Key("sort", f"order rows by one of: {', '.join(METRICS)} (default: run order)"),
    Key("order", "desc or asc (default: best first for accuracies, smallest first otherwise)"),
    Key("out", "where report.csv and report.png go (default: the folder given, or outputs/report/<time>)"),
)
EXTRA = """examples:
  ftcli report multirun/2025-01-31/12-00-00-000000 sort=test_acc
  ftcli report outputs/a outputs/b"""
NAMED = ("model", "strategy", "recipe", "data")


@dataclass
class Row:
    """One run in the report."""

    name: str  # the run folder relative to the folder given (e.g. the job number)
    summary: RunSummary
    differs: list[str]


def main(args: list[str]) -> int:
    """Entry point of ``ftcli report``."""
    if wants_help(args):
        print(usage("report DIR [DIR ...]", SUMMARY, KEYS, EXTRA))
        return 0
    parsed = parse("report", args, KEYS, positional="run or sweep folder (DIR)")
    options = parsed.values
    roots = [Path(p).expanduser() for p in parsed.positional]
    rows = sort_rows(collect(roots), options["sort"], options["order"])
    out = Path(options["out"]).expanduser() if options["out"] else default_out(roots)
    title = f"ftcli report · {', '.join(map(str, roots))} · {len(rows)} runs"
    if options["sort"]:
        title += f" · by {options['sort']}"
    console.show(table(rows, title))
    out.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(rows, out / "report.csv")
    png_path = write_chart(rows, out / "report.png", title)
    console.console.print(f"written: {csv_path}, {png_path}", markup=False, highlight=False, soft_wrap=True)
    return 0


def default_out(roots: list[Path]) -> Path:
    """One folder given: write there; several: a fresh folder under outputs/report/."""
    if len(roots) == 1:
        return roots[0]
    return Path("outputs") / "report" / time.strftime("%Y-%m-%d_%H-%M-%S")


def collect(roots: list[Path]) -> list[Row]:
    """Every finished run under the folders; unfinished ones (no summary.json) are named, not fatal."""
    found: list[tuple[str, RunSummary]] = []
    unfinished: list[Path] = []
    for root in roots:
        if not root.is_dir():
            raise DataError(
                f"{root}: no such folder.", "Give run folders (outputs/<date>/<time>) or sweep folders."
            )
        runs = (
            [root]
            if (root / SUMMARY_FILE).is_file()
            else sorted((p.parent for p in root.rglob(SUMMARY_FILE)), key=natural_key)
        )
        # a run's own sub-runs (the race of strategy=auto, in <run>/race/) are its evidence, not rows
        runs = [run for run in runs if not set(run.parents) & set(runs)]
        for run in runs:
            summary = load(run)
            if summary is not None:
                name = run.relative_to(root).as_posix()
                if len(roots) > 1 or run == root:
                    name = root.name if run == root else f"{root.name}/{name}"
                found.append((name, summary))
        started = {p.parent for p in root.rglob(".hydra")} - set(runs)
        unfinished += sorted(started, key=natural_key)
    for run in unfinished:
        console.error_console.print(
            f"not finished (no {SUMMARY_FILE}), left out: {run}", markup=False, highlight=False
        )
    if not found:
        where = ", ".join(map(str, roots))
        raise DataError(
            f"No finished run under {where}: no {SUMMARY_FILE} found.",
            "ftcli train writes summary.json into a run's folder when the run finishes.",
        )
    forms = [{_canonical(o) for o in s.overrides} for _, s in found]
    shared = set.intersection(*forms) if len(found) > 1 else set()
    return [
        Row(name, s, [_with_pick(o, s) for o in s.overrides if _canonical(o) not in shared])
        for name, s in found
    ]


def _with_pick(override: str, summary: RunSummary) -> str:
    """``strategy=auto`` shown with what the advisor picked for that run (from its summary): the race's
    winner (``auto.mode=race``), else the rule's pick."""
    if override != "strategy=auto" or not summary.advice:
        return override
    if summary.race:
        picked = " ".join(o.removeprefix("strategy=") for o in summary.race.get("winner_overrides", []))
        entrants, cost = len(summary.race.get("entrants", [])), summary.race.get("cost_in_runs", 0.0)
        return f"strategy=auto ({picked}; won a race of {entrants}, {cost:.1f}x)"
    picked = " ".join(o.removeprefix("strategy=") for o in summary.advice.get("overrides", []))
    return f"strategy=auto ({picked})"


def _canonical(override: str) -> str:
    """An override as compared between runs: a sweep job records booleans as True/False, a run as typed."""
    key, sep, value = override.partition("=")
    return f"{key}={value.lower()}" if sep and value.lower() in ("true", "false") else override


def sort_rows(rows: list[Row], sort: str | None, order: str | None) -> list[Row]:
    """Rows by a metric; runs without it (e.g. no test split) last."""
    if order not in (None, "asc", "desc"):
        raise ConfigError(f"order={order} must be asc or desc.")
    if sort is None:
        return rows
    if sort not in METRICS:
        raise unknown_name("sort metric", sort, list(METRICS), key="sort")
    field, bigger_first = METRICS[sort]
    descending = bigger_first if order is None else order == "desc"

    def value(row: Row) -> Any:
        v = getattr(row.summary, field)
        return natural_key(Path(v)) if field == "run_dir" else v

    present = [r for r in rows if _present(getattr(r.summary, field))]
    missing = [r for r in rows if not _present(getattr(r.summary, field))]
    return sorted(present, key=value, reverse=descending) + missing


def table(rows: list[Row], title: str) -> Any:
    """The rich table: one row per run."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    others = {
        id(row): [o for o in row.differs if o.split("=", 1)[0].lstrip("+~") not in NAMED] for row in rows
    }
    with_others = any(others.values())  # overrides beyond model/strategy/recipe/data (e.g. optimizer.lr=...)
    # model/strategy/recipe/data: a column when the runs differ in it, else once in the caption
    varying = [name for name in NAMED if len({str(getattr(r.summary, name)) for r in rows}) > 1]
    same = " · ".join(f"{name} {getattr(rows[0].summary, name)}" for name in NAMED if name not in varying)
    table = Table(
        title=escape(title),
        title_justify="left",
        caption=escape(f"every run: {same}") if same else None,
        caption_justify="left",
        expand=with_others,
    )
    table.add_column("run", no_wrap=True)
    for column in varying:
        table.add_column(column, no_wrap=True)
    if with_others:
        table.add_column("other overrides", overflow="fold", ratio=1, min_width=16)
    for column in ("val acc", "test acc", "trainable", "epochs", "fit time"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        s = row.summary
        cells = [Text(row.name), *(Text(str(getattr(s, name))) for name in varying)]
        if with_others:
            cells.append(Text("\n".join(others[id(row)]) or "-"))
        cells += [
            _pct(s.best_val_acc),
            _pct(s.test_acc),
            f"{s.trainable_params:,}",
            Text(epochs_cell(s)),
            f"{s.fit_seconds:.1f} s",
        ]
        table.add_row(*cells)
    return table


CSV_FIELDS = (
    "run",
    "differs",
    *NAMED,
    "weights",
    "best_val_acc",
    "test_acc",
    "trainable_params",
    "total_params",
    "epochs",
    "pruned_at_epoch",
    "fit_seconds",
    "wall_seconds",
    "images_per_second",
    "best_checkpoint",
    "run_dir",
    "overrides",
)


def write_csv(rows: list[Row], out: Path) -> Path:
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            data = asdict(row.summary)
            data.update(
                run=row.name,
                differs=" ".join(row.differs),
                overrides=" ".join(row.summary.overrides),
                pruned_at_epoch=row.summary.pruned["epoch"] if row.summary.pruned else "",
            )
            writer.writerow(data)
    return out


def write_chart(rows: list[Row], out: Path, title: str) -> Path:
    from ftcli.runs import plots

    labels = [f"{row.name}: {' '.join(row.differs) or row.summary.strategy}" for row in rows]
    labels = [label if len(label) <= 60 else label[:57] + "..." for label in labels]
    series = {
        "best val acc": [row.summary.best_val_acc for row in rows],
        "test acc": [row.summary.test_acc for row in rows],
    }
    if all(v is None for v in series["test acc"]):
        del series["test acc"]
    return plots.accuracy_bars(labels, series, out, title)


def epochs_cell(summary: RunSummary) -> str:
    """The epochs a run trained; for a search trial its pruner stopped, where (0-based, as Optuna counts)."""
    if summary.pruned:
        return f"{summary.epochs} (pruned at epoch {summary.pruned['epoch']})"
    return str(summary.epochs)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
