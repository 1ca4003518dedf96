"""``ftcli inspect``: a dry run. Builds exactly what ``train`` would and shows it, trains nothing.

``ftcli inspect ckpt=PATH`` instead shows where a checkpoint stands: what it was trained on, the
epoch and phase it reached, and its strategy's phases.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig
from rich.markup import escape

from ftcli import display, jobs
from ftcli.paths import config_dir


def inspect(cfg: DictConfig) -> float:
    """Print the data, the block plan (trainable/frozen, lr, BN, autograd) and the new head."""
    from ftcli.build import prepare

    prepared = prepare(cfg)
    display.show(display.data_line(prepared.datamodule.describe()))
    display.show(display.plan_table(prepared, float(cfg.optimizer.lr)))
    for note in display.schedule_notes(prepared.schedule, cfg.trainer.get("max_epochs")):
        display.show(f"[yellow]note[/yellow]: {note}")
    surgery = prepared.surgery
    removed = ", ".join(surgery.removed) or "none"
    display.show(
        f"recipe {surgery.recipe}: removed blocks: {removed} · features {surgery.feature_dim} -> "
        f"{' -> '.join(surgery.head)}"
    )
    spec = prepared.transform
    display.show(
        f"input: resize {spec.resize}, crop {spec.crop}, mean {tuple(spec.mean)}, std {tuple(spec.std)}"
    )
    return 0.0


def inspect_checkpoint(path: Path) -> None:
    """Print a checkpoint's self-description and the phase it reached."""
    from rich.table import Table

    from ftcli import weights as weights_lib
    from ftcli.errors import WeightsError

    if not path.is_file():
        raise WeightsError(
            f"ckpt={path}: no such file.", "Give a .ckpt file from a run's checkpoints/ folder."
        )
    loaded = weights_lib.read_file(path)
    meta = weights_lib.checkpoint_meta(loaded)
    if not meta:
        raise WeightsError(f"ckpt={path} is not an ftcli checkpoint (it carries no ftcli metadata).")
    names = list(meta.get("class_names", []))
    phase = meta.get("phase") or {}
    facts = Table(title=f"checkpoint {path}", title_justify="left", show_header=False)
    facts.add_column(style="bold")
    facts.add_column()
    model = meta.get("model", {})
    rows = {
        "model": f"{model.get('name')} ({model.get('family')}) · weights: {model.get('weights_used')}",
        "recipe": str(meta.get("recipe", {}).get("name")),
        "strategy": str(meta.get("strategy", {}).get("name")),
        "classes": f"{len(names)}: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}",
        "data": str(meta.get("data", {}).get("name")),
        "reached": f"epoch {loaded.get('epoch', '?')} · step {loaded.get('global_step', '?')}",
    }
    if phase:
        rows["phase"] = (
            f"{phase['index'] + 1}/{phase['count']} ({phase.get('label', '')}): "
            f"training {', '.join(phase.get('trainable', []))}"
        )
    rows["resumable"] = "yes (resume=PATH)" if "optimizer_states" in loaded else "no (weights only)"
    for key, value in rows.items():
        facts.add_row(key, escape(value))
    display.show(facts)
    schedule = meta.get("schedule") or []
    if schedule:
        table = Table(title="phases", title_justify="left")
        for column in ("phase", "epochs", "label", "trains", ""):
            table.add_column(column)
        for index, item in enumerate(schedule):
            epochs = item.get("epochs")
            start = int(item.get("start_epoch", 0))
            span = f"{start}-end" if epochs is None else f"{start}-{start + int(epochs) - 1}"
            here = "[bold]<- here[/bold]" if phase and index == phase.get("index") else ""
            trains = ", ".join(item.get("trainable", []))
            table.add_row(str(index + 1), span, escape(str(item.get("label", ""))), escape(trains), here)
        display.show(table)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def main(cfg: DictConfig) -> float:
    return jobs.run_guarded(inspect, cfg)


if __name__ == "__main__":
    main()
