"""What ftcli shows about a run: the config tree, the block plan, data, run and sweep summaries.

Imports no torch: these take the objects they show (a run plan, a summary) as arguments.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree


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
        branch = tree.add(f"[bold cyan]{escape(key)}[/bold cyan]")
        for sub_key, sub_value in value.items():
            _add(branch, str(sub_key), sub_value)
    else:
        tree.add(f"{escape(key)}: [green]{escape(str(value))}[/green]")


def plan_table(run_plan: Any, base_lr: float) -> Table:
    """Per block: parameters and, in each phase, trainable or frozen at which rate; totals last."""
    from ftcli.model.adapters import adapter_parameters, describe
    from ftcli.model.blocks import count_parameters

    schedule, net = run_plan.schedule, run_plan.net
    single = len(schedule.phases) == 1
    title = escape(
        f"{net.family} · strategy {schedule.strategy} · recipe {run_plan.surgery.recipe} · "
        f"weights: {run_plan.weights_label}"
    )
    notes = [] if single else ["cells: learning rate of a trainable block · bn: only BatchNorm affine trains"]
    notes.append(frozen_mode_note(schedule))
    notes.extend(describe(net))
    caption = "\n".join(n for n in notes if n) or None
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("block", no_wrap=True)
    table.add_column("params", justify="right", no_wrap=True)
    for phase in schedule.phases:
        header = "state · lr" if single else f"{phase.index + 1}: {phase.label}\n{phase.describe()}"
        table.add_column(escape(header))
    table.add_column("bn")
    adapter = {name: adapter_parameters(net.blocks[name]) for name in net.block_names}
    params = {name: count_parameters(net.blocks[name]) - adapter[name] for name in net.block_names}
    for index, name in enumerate(net.block_names):
        cells = [
            _phase_cell(phase.blocks[index], base_lr, index < phase.no_grad_prefix, single)
            for phase in schedule.phases
        ]
        table.add_row(name, f"{params[name]:,}", *cells, schedule.first.blocks[index].bn)
    table.add_section()
    totals = [
        f"{sum(params[b.name] if b.trainable else adapter[b.name] if b.adapted else 0 for b in p.blocks):,}"
        for p in schedule.phases
    ]
    if single:
        totals = [f"{totals[0]} trainable"]
    table.add_row("total" if single else "trainable", f"{sum(params.values()):,}", *totals, "")
    return table


def _phase_cell(block: Any, base_lr: float, no_grad: bool, verbose: bool) -> str:
    """One block in one phase: ``trainable 1.00e-03``, ``frozen (bn affine 1.00e-03)``, ``frozen``."""
    if not verbose:  # one column per phase: keep cells short
        if block.trainable:
            return f"[green]{base_lr * block.lr_mult:.1e}[/green]"
        if block.adapted:
            return f"[magenta]adapt {base_lr * block.lr_mult:.1e}[/magenta]"
        if block.bn == "affine":
            return f"[cyan]bn {base_lr * block.lr_mult:.1e}[/cyan]"
        return "[blue]frozen[/blue]"
    lr = f"{base_lr * block.lr_mult:.2e}"
    if block.trainable:
        return f"[green]trainable[/green] {lr}"
    if block.adapted:
        return f"[blue]frozen[/blue] + [magenta]adapters[/magenta] {lr}"
    if block.bn == "affine":
        return f"[blue]frozen[/blue] [cyan](bn affine {lr})[/cyan]"
    return "[blue]frozen[/blue]" + (" · no_grad" if no_grad else "")


def frozen_mode_note(schedule: Any) -> str:
    """What a frozen block computes in training: a fixed function (bn=frozen), or not (bn=train|affine);
    and that blocks holding adapters run in training mode (their adapters' dropout applies)."""
    blocks = [b for phase in schedule.phases for b in phase.blocks]
    frozen = [b for b in blocks if not b.trainable and not b.adapted]
    adapted = (
        "blocks with adapters run in training mode (adapter dropout)"
        if any(b.adapted for b in blocks)
        else ""
    )
    if not frozen:
        return adapted
    if all(b.fixed for b in frozen):
        note = "frozen blocks run in eval mode (BatchNorm, dropout, stochastic depth): a fixed function"
    else:
        bn = next((b.bn for b in frozen if b.bn in ("train", "affine")), "train")
        what = "statistics update" if bn == "train" else "statistics fixed, affine trains"
        note = (
            f"strategy.bn={bn}: frozen blocks' BatchNorm {what}; their dropout and stochastic depth run "
            "as in training (strategy.bn=frozen makes them a fixed function)"
        )
    return "; ".join(n for n in (note, adapted) if n)


def schedule_notes(schedule: Any, max_epochs: int | None) -> list[str]:
    """Warnings about a schedule under this run's length: phases that would never start."""
    if not isinstance(max_epochs, int) or max_epochs < 1:
        return []  # unlimited, or a bad value that the trainer checks report
    return [
        f"phase {p.index + 1} ({p.label}) starts at epoch {p.start_epoch}, "
        f"but trainer.max_epochs={max_epochs}: it never runs"
        for p in schedule.unreached(max_epochs)
    ]


def data_line(describe: dict[str, Any]) -> Text:
    """One line about the data; plain Text, since class names (folder names, labels) are not markup."""
    classes = describe.get("classes", [])
    shown = ", ".join(map(str, classes[:10])) + (" ..." if len(classes) > 10 else "")
    return Text(
        f"data {describe.get('name')}: {len(classes)} classes [{shown}] · train {describe.get('train')} · "
        f"val {describe.get('val')} · test {describe.get('test') or '-'}"
    )


def options_line(options: Any, augment_policy: str | None = None) -> Text | None:
    """The training options switched on (``loss.*``, ``early_stopping``, ``mixup``, ``ema``, BatchNorm
    recalibration, ``data.augment.policy``), from the run's checked options (``RunOptions``).

    None when all are off, so a run that sets none of them shows what it always showed.
    """
    parts = []
    loss = options.training.loss
    if loss.label_smoothing:
        parts.append(f"label smoothing {loss.label_smoothing:g}")
    weights = loss.class_weights
    if weights is not None:
        shown = weights if isinstance(weights, str) else f"[{', '.join(f'{float(w):g}' for w in weights)}]"
        parts.append(f"class weights {shown}")
    stop = options.early_stopping
    if stop.enabled:
        parts.append(f"early stopping on {stop.monitor} (patience {stop.patience})")
    if augment_policy:
        parts.append(f"augment policy {augment_policy}")
    mix = options.training.mixup
    for alpha, name in ((mix.mixup_alpha, "mixup"), (mix.cutmix_alpha, "cutmix")):
        if alpha:
            parts.append(f"{name} alpha {alpha:g}")
    ema = options.training.ema
    if ema.enabled:
        parts.append(f"EMA decay {ema.decay:g}")
    if options.bn_recalibrate:
        parts.append("BatchNorm recalibration")
    return Text("training options: " + " · ".join(parts)) if parts else None


def run_table(summary: Any) -> Table:
    """The end-of-run summary."""
    table = Table(title=escape(f"ftcli run · {summary.run_dir}"), title_justify="left", show_header=False)
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
        ("fit / wall time", f"{summary.fit_seconds:.1f} s / {summary.wall_seconds:.1f} s"),
        ("train samples/s", f"{summary.images_per_second:.1f}"),
        ("best checkpoint", str(summary.best_checkpoint)),
    ]
    stop = getattr(summary, "early_stopping", None)
    if stop:
        when = f"after epoch {stop.get('epoch')}: " if stop.get("stopped") else ""
        rows.append(("early stopping", f"{when}{stop.get('reason', '')}"))
    skipped = getattr(summary, "skipped_images", None)
    if skipped:
        rows.append(
            ("skipped images", f"{len(skipped)} unreadable (data.on_bad_image=skip), first: {skipped[0]}")
        )
    leaks = getattr(summary, "leaks", None)
    if leaks and (leaks.get("leaked") or any(leaks.get("within", {}).values())):
        rows.append(("leaked samples", leak_cell(leaks)))
    for name, value in rows:
        table.add_row(name, Text(value))
    return table


def leak_cell(leaks: dict[str, Any]) -> str:
    """The leak check of a run summary: copies across splits, repeats within, what was dropped."""
    text = f"{leaks.get('leaked', 0)} val/test copies of an earlier split ({leaks.get('checked_by')})"
    within = {split: n for split, n in leaks.get("within", {}).items() if n}
    if within:
        text += "; repeated within " + ", ".join(f"{split}: {n}" for split, n in within.items())
    dropped = leaks.get("dropped") or {}
    if dropped:
        text += "; dropped " + ", ".join(f"{n} from {split}" for split, n in dropped.items())
    return text


def sweep_table(summaries: Iterable[Any], title: str) -> Table:
    """One row per job of a sweep: what differs, and how it did."""
    summaries = list(summaries)
    # Overrides shared by every job (the fixed part of the command line) would repeat on each row.
    shared = set.intersection(*(set(s.overrides) for s in summaries)) if len(summaries) > 1 else set()
    table = Table(title=escape(title), title_justify="left", expand=True)
    table.add_column("job", justify="right")
    table.add_column("what differs", overflow="fold", ratio=1)
    for column in ("trainable", "val acc", "test acc", "fit time"):
        table.add_column(column, justify="right", no_wrap=True)
    for summary in summaries:
        differs = [o for o in summary.overrides if o not in shared] or [f"strategy={summary.strategy}"]
        table.add_row(
            os.path.basename(summary.run_dir),
            Text("\n".join(differs)),
            f"{summary.trainable_params:,}",
            _pct(summary.best_val_acc),
            _pct(summary.test_acc),
            f"{summary.fit_seconds:.1f} s",
        )
    return table


def search_table(rows: Iterable[dict[str, Any]], title: str) -> Table:
    """One row per trial of a search, best first: its state (pruned at epoch k, failed: why), its
    objective and the parameters it sampled (``hydra_hooks/search_results.py`` builds the rows)."""
    table = Table(title=escape(title), title_justify="left", expand=True)
    table.add_column("rank", justify="right", no_wrap=True)
    table.add_column("trial", justify="right", no_wrap=True)
    table.add_column("state", overflow="fold", ratio=1)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("sampled", overflow="fold", ratio=2)
    for rank, row in enumerate(rows, start=1):
        value = row["value"]
        table.add_row(
            str(rank),
            str(row["trial"]),
            Text(row["state"]),
            "-" if value is None else f"{value:.4f}",
            Text("\n".join(row["params"])),
        )
    return table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def advice_tables(record: dict[str, Any]) -> list[Any]:
    """What ``ftcli advise`` shows, from its ``advice.json`` record: the data, a probe table (one row
    per block), the regime with the numbers that led there, and the recommendation."""
    measured, decision = record["measurements"], record["decision"]
    probe = measured["probe"]
    counts = measured["per_class"]
    probed = measured["samples_probed"]
    subsample = f" · probes on a stratified subsample of {probed}" if probed < measured["samples"] else ""
    data = Text(
        f"data {measured['data']}: {len(counts)} classes · "
        f"{measured['samples']} training {measured['noun']} · "
        f"per class min {measured['min_per_class']} / median {measured['median_per_class']:g} · "
        f"{measured['input_size']}{subsample}"
    )
    table = Table(
        title=escape(f"linear probe per block · {measured['model']} · weights: {measured['weights']}"),
        title_justify="left",
        caption=escape(f"{probe['method']}; accuracy ± standard error over folds"),
        caption_justify="left",
    )
    for column in ("block", "pretrained", "random init", ""):
        table.add_column(column, justify="left" if column in ("block", "") else "right")
    peak = decision.get("numbers", {}).get("peak_block")
    for name in measured["blocks"]:
        ours, theirs = probe["pretrained"].get(name), probe["random_init"].get(name)
        mark = "[bold]<- best[/bold]" if name == peak else ""
        if name in measured.get("unprobed", {}):
            mark = escape(f"not probed: {measured['unprobed'][name]}")
        table.add_row(escape(name), _score(ours), _score(theirs), mark)
    if probe.get("raw_input"):
        table.add_section()
        name = escape(probe["raw_input_name"])
        table.add_row(name, _score(probe["raw_input"]), "", "no pretrained knowledge")
    verdict = Table(title="decision", title_justify="left", show_header=False)
    verdict.add_column(style="bold")
    verdict.add_column()
    verdict.add_row("regime", escape(f"{decision['similarity']} task, {decision['size']} data"))
    for reason in decision["reasons"]:
        verdict.add_row("", Text(reason))
    verdict.add_row("strategy", Text(" ".join(decision["overrides"])))
    for alternative in decision.get("alternatives", []):
        verdict.add_row("worth a run", Text(alternative))
    if record.get("command"):
        verdict.add_row("run it", Text(record["command"]))
    timing = f"advice in {record['seconds']:.1f} s"
    timing += " (block features from the cache)" if measured.get("features_loaded") else ""
    shown = [data, table, verdict]
    if record.get("shortlist"):
        shown.append(shortlist_table(record["shortlist"]))
    return [*shown, Text(timing)]


def shortlist_table(shortlist: list[dict[str, Any]]) -> Table:
    """The candidates ``strategy=auto`` races (``auto.mode=race``), the rule's pick first, each with why."""
    table = Table(
        title="shortlist (strategy=auto races these on the validation split)",
        title_justify="left",
    )
    for column in ("#", "candidate", "why"):
        table.add_column(column, justify="right" if column == "#" else "left")
    for number, candidate in enumerate(shortlist, 1):
        table.add_row(str(number), Text(" ".join(candidate["overrides"])), Text(candidate["why"]))
    return table


def race_table(race: dict[str, Any]) -> Table:
    """After a race: validation accuracy of each candidate (rows) at the end of each rung (columns)."""
    milestones = race["plan"]["milestones"]
    table = Table(
        title=f"race: best {race['metric']} so far, at the end of each rung",
        title_justify="left",
        caption=escape(
            f"{race['epochs']} epochs raced in {race['seconds']:.0f} s; with the winner's full run "
            f"about {race['cost_in_runs']:.1f}x one run"
        ),
        caption_justify="left",
    )
    table.add_column("candidate")
    for rung, epoch in enumerate(milestones, 1):
        table.add_column(f"rung {rung} (epoch {epoch})", justify="right")
    table.add_column("")
    for index, entrant in enumerate(race["entrants"]):
        scores = [_pct(score) for score in entrant["scores"]]
        scores += ["-"] * (len(milestones) - len(scores))
        if index == race["winner"]:
            result = "[bold]winner[/bold]"
        else:
            result = f"out after rung {entrant['out_after_rung']}"
        table.add_row(Text(entrant["label"]), *scores, result)
    return table


def _score(score: dict[str, float] | None) -> str:
    if not score:
        return "-"
    return f"{100 * score['accuracy']:.1f}% ± {100 * score['stderr']:.1f}"
