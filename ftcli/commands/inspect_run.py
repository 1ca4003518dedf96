"""``ftcli inspect``: a dry run. Builds exactly what ``train`` would and shows it, trains nothing.

``ftcli inspect ckpt=PATH`` instead shows where a checkpoint stands: what it was trained on, the
epoch and phase it reached, and its strategy's phases. (Named ``inspect_run``, not ``inspect``, so
it can never shadow the standard library's ``inspect`` module.)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig
from rich.markup import escape

from ftcli.command_line.config_groups import config_dir
from ftcli.errors import ConfigError
from ftcli.hydra_hooks.sweep_jobs import run_guarded

if TYPE_CHECKING:
    from ftcli.pipeline import RunPlan
from ftcli.ui import console, tables

NO_LEAK_CHECK = "this source gives neither file bytes, pixels nor texts before decoding"


def inspect(cfg: DictConfig) -> float:
    """Print the data, the block plan (trainable/frozen, lr, BN, autograd) and the new head;
    with ``strategy=auto``, the advisor's pick and why (``auto.mode=race``: the shortlist it would race,
    the rungs and the budget), then the plan of the picked strategy."""
    from rich.text import Text

    from ftcli.finetune.strategies import is_auto
    from ftcli.pipeline import plan_run
    from ftcli.pipeline.fitting import show_plan

    advice = None
    if is_auto(cfg):
        from ftcli.advice.advisor import resolve_auto
        from ftcli.advice.race import plan_for, races
        from ftcli.command_line.config_groups import load_option

        cfg, resolved = resolve_auto(cfg, load_option)
        console.show(Text(resolved.decision.line()))
        for reason in resolved.decision.reasons[:-1]:
            console.show(Text(f"  {reason}"))
        advice = resolved.to_dict()
        if races(cfg):  # the resolved config keeps the auto.* keys and the trainer's
            plan = plan_for(cfg, len(resolved.shortlist))
            console.show(tables.shortlist_table(advice["shortlist"]))
            console.show_line(plan.line())
            console.show(Text("the plan below is the rule's pick; train runs the race's winner"))
    run_plan = plan_run(cfg, advice)  # checks every key as train does: the dry run fails where train would
    show_plan(run_plan)
    leaks = run_plan.datamodule.check_leaks()  # data.on_leak=error stopped plan_run, as it stops train
    console.show_line(leaks.line() if leaks is not None else f"leak check: not done ({NO_LEAK_CHECK})")
    surgery = run_plan.surgery
    removed = ", ".join(surgery.removed) or "none"
    console.show(
        f"recipe {surgery.recipe}: removed blocks: {removed} · features {surgery.feature_dim} -> "
        f"{' -> '.join(surgery.head)}"
    )
    policy = ((cfg.get("data") or {}).get("augment") or {}).get("policy")
    options = tables.options_line(run_plan.options, policy)
    if options is not None:
        console.show(options)
    for line in training_option_lines(run_plan):
        console.show(Text(line))
    console.show(Text(input_line(run_plan.transform)))
    return 0.0


def input_line(spec: Any) -> str:
    """How inputs become tensors: the image transform, or the tokenizer and the longest text."""
    if hasattr(spec, "tokenizer"):
        return (
            f"input: text tokenized by {spec.tokenizer}, at most {spec.max_length} tokens per text "
            "(longer ones truncated and counted: data.max_length), padded per batch to its longest text"
        )
    return f"input: resize {spec.resize}, crop {spec.crop}, mean {tuple(spec.mean)}, std {tuple(spec.std)}"


def training_option_lines(run_plan: RunPlan) -> list[str]:
    """Which param groups get weight decay (always), and where MixUp/CutMix, EMA and BatchNorm
    recalibration act when they are on (from the run's checked options)."""
    from ftcli.finetune.freeze_plan import decay_summary, param_groups

    cfg, schedule, net = run_plan.cfg, run_plan.schedule, run_plan.net
    lines = []
    decay_all = bool(cfg.optimizer.get("decay_norm_and_bias", False))
    on, off = decay_summary(param_groups(net, schedule.first, 1.0, decay_norm_and_bias=decay_all))
    rate = cfg.optimizer.get("weight_decay", 0.0)
    if decay_all:
        lines.append(f"weight decay {rate}: on all {on:,} parameters (optimizer.decay_norm_and_bias=true)")
    else:
        lines.append(
            f"weight decay {rate}: on {on:,} parameters (conv/linear weights); none on {off:,} "
            "(norms, biases, position embeddings, class tokens; "
            "optimizer.decay_norm_and_bias=true decays all)"
        )
    if run_plan.options.gradient_checkpointing:
        first = schedule.first
        recomputed = [b.name for b in first.blocks[first.no_grad_prefix :] if b.name != "head"]
        lines.append(
            "gradient checkpointing: activations of "
            + (", ".join(recomputed) if recomputed else "no block")
            + " recomputed in the backward pass (non-reentrant; less memory, about a third more time)"
        )
    mix = run_plan.options.training.mixup
    if mix.enabled:
        where = [
            f"phase {p.index + 1} ({p.label or p.strategy}): {'on' if mix.applies(p) else 'off, head only'}"
            for p in schedule.phases
        ]
        note = (
            ""
            if mix.during_head_only_phases or not any(p.head_only for p in schedule.phases)
            else (" · off while only the head trains (mixup.during_head_only_phases=true mixes there too)")
        )
        lines.append(f"{mix.describe()}: {'; '.join(where)}{note}")
    ema = run_plan.options.training.ema
    if ema.enabled:
        lines.append(ema.describe())
    if run_plan.options.bn_recalibrate:
        lines.append(
            "BatchNorm recalibration: before each validation, the trainable blocks' BatchNorm statistics are "
            "recomputed over the training images (frozen blocks untouched)"
        )
    return lines


def inspect_checkpoint(path: Path) -> None:
    """Print a checkpoint's self-description and the phase it reached."""
    from rich.table import Table

    from ftcli.errors import WeightsError
    from ftcli.model.weights_file import read_file
    from ftcli.runs import checkpoint_schema

    if not path.is_file():
        raise WeightsError(
            f"ckpt={path}: no such file.", "Give a .ckpt file from a run's checkpoints/ folder."
        )
    loaded = read_file(path)
    meta = checkpoint_schema.read(loaded, path)
    names = list(meta.get(checkpoint_schema.CLASS_NAMES, []))
    phase = meta.get(checkpoint_schema.PHASE) or {}
    facts = Table(title=f"checkpoint {path}", title_justify="left", show_header=False)
    facts.add_column(style="bold")
    facts.add_column()
    model = meta.get(checkpoint_schema.MODEL, {})
    rows = {
        "model": f"{model.get('name')} ({model.get('family')}) · weights: {model.get('weights_used')}",
        "recipe": str(meta.get(checkpoint_schema.RECIPE, {}).get("name")),
        "strategy": str(meta.get(checkpoint_schema.STRATEGY, {}).get("name")),
        "classes": f"{len(names)}: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}",
        "data": str(meta.get(checkpoint_schema.DATA, {}).get("name")),
        "reached": f"epoch {loaded.get('epoch', '?')} · step {loaded.get('global_step', '?')}",
    }
    if phase:
        rows["phase"] = (
            f"{phase['index'] + 1}/{phase['count']} ({phase.get('label', '')}): training {_trains(phase)}"
        )
    adapters = meta.get(checkpoint_schema.ADAPTERS)
    if adapters:
        options = adapters.get("options", {})
        layers = sum(len(paths) for paths in adapters.get("targets", {}).values())
        rows["adapters"] = (
            f"{adapters.get('method')} r={options.get('r')} alpha={options.get('alpha')} on {layers} layers, "
            f"{adapters.get('adapter_parameters', 0):,} parameters; the base weights are not stored "
            f"(rebuilt from {model.get('weights_used')}, fingerprint {adapters['base_fingerprint'][:12]})"
        )
    rows["resumable"] = "yes (resume=PATH)" if "optimizer_states" in loaded else "no (weights only)"
    if meta.get(checkpoint_schema.CHAINED_FROM):
        rows["chained from"] = str(meta[checkpoint_schema.CHAINED_FROM])
    version, written = meta.get(checkpoint_schema.VERSION, "?"), meta.get(checkpoint_schema.FORMAT_KEY, 0)
    rows["written by"] = f"ftcli {version} · checkpoint format {written}"
    for key, value in rows.items():
        facts.add_row(key, escape(value))
    console.show(facts)
    schedule = meta.get(checkpoint_schema.SCHEDULE) or []
    if schedule:
        table = Table(title="phases", title_justify="left")
        for column in ("phase", "epochs", "label", "trains", ""):
            table.add_column(column)
        for index, item in enumerate(schedule):
            epochs = item.get("epochs")
            start = int(item.get("start_epoch", 0))
            span = f"{start}-end" if epochs is None else f"{start}-{start + int(epochs) - 1}"
            here = "[bold]<- here[/bold]" if phase and index == phase.get("index") else ""
            trains = _trains(item)
            table.add_row(str(index + 1), span, escape(str(item.get("label", ""))), escape(trains), here)
        console.show(table)


def _trains(phase: dict) -> str:
    """What a stored phase trains: its blocks, and the blocks whose adapters train."""
    trains = ", ".join(phase.get("trainable", []))
    adapted = phase.get("adapted") or []
    return f"{trains} + adapters in {len(adapted)} blocks" if adapted else trains


def checkpoint_main(args: list[str]) -> int:
    """Entry point of ``ftcli inspect ckpt=PATH`` (no Hydra: the checkpoint describes the run)."""
    if len(args) != 1:
        raise ConfigError("`ftcli inspect ckpt=PATH` takes the checkpoint path and nothing else.")
    inspect_checkpoint(Path(args[0].split("=", 1)[1]).expanduser())
    return 0


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def main(cfg: DictConfig) -> float:
    return run_guarded(inspect, cfg)


if __name__ == "__main__":
    main()
