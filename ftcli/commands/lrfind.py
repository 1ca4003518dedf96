"""``ftcli lrfind``: a learning-rate range test, then the ``ftcli train`` command with its suggestion.

Takes the same overrides as ``train`` plus ``lrfind.*`` (``min_lr``, ``max_lr``, ``steps``, ``phase``).
Builds exactly what ``train`` would (``ftcli.pipeline.plan_run``), runs the range test of one phase
(``training.lr_range``: only that phase's trainable blocks move, each at lr x its multiplier) on one
device, rank 0 only, and writes ``lr_find.png`` (the curve) and ``lr_find.json`` in its output
folder. The network's weights are restored afterwards; nothing is trained or saved.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ftcli.command_line.config_groups import config_dir
from ftcli.hydra_hooks.sweep_jobs import run_guarded
from ftcli.ui import console


def lrfind(cfg: DictConfig) -> float:
    """Run the range test, print the suggestion and the train command; returns the suggested lr."""
    import lightning as L
    from hydra.core.hydra_config import HydraConfig
    from rich.text import Text

    from ftcli.errors import ConfigError
    from ftcli.finetune.strategies import is_auto
    from ftcli.pipeline import plan_run
    from ftcli.runs import plots
    from ftcli.training.lr_range import RangeTestModule, find_lr
    from ftcli.training.quiet_logging import quiet_lightning

    quiet_lightning()
    if is_auto(cfg):
        raise ConfigError(
            "lrfind needs a strategy, not strategy=auto.",
            "Run `ftcli advise` first, then lrfind with the strategy it picks.",
        )
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    run_plan = plan_run(cfg)
    options = run_plan.options.lrfind
    if options is None:  # configs/lrfind.yaml defines the block; a --config-name without it lands here
        raise ConfigError(
            "lrfind needs its lrfind.* settings.", "Run it as `ftcli lrfind` (configs/lrfind.yaml)."
        )
    module = run_plan.module(RangeTestModule)
    phase = run_plan.schedule.phases[options.phase - 1]
    console.show(
        Text(
            f"lrfind: phase {options.phase}/{len(run_plan.schedule.phases)} "
            f"({phase.label or phase.strategy}), "
            f"training {', '.join(phase.trainable_blocks)}; lr {options.min_lr:g} -> {options.max_lr:g} "
            f"over {options.steps} steps"
        )
    )
    result = find_lr(module, run_plan.datamodule, cfg.trainer, run_dir, options)
    if not console.is_rank_zero():
        return float("nan")
    png = plots.lr_range_curve(
        result.lrs,
        result.losses,
        result.suggestion,
        run_dir / "lr_find.png",
        title=f"{cfg.model.name} · {cfg.strategy.name} · phase {options.phase}",
    )
    (run_dir / "lr_find.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if result.suggestion is None:
        console.show(
            Text(f"no suggestion: the curve is too short ({len(result.losses)} points); raise lrfind.steps")
        )
        console.show(Text(f"curve: {png}"))
        return float("nan")
    console.show(Text(f"suggested lr: {result.suggestion:.3g} (steepest fall of the training loss)"))
    console.show(Text(f"curve: {png}"))
    console.show(Text("train with it:"))
    command = train_command(list(hydra_cfg.overrides.task), result.suggestion)
    console.show_line("  " + command)  # one line, to copy
    return float(result.suggestion)


def train_command(overrides: list[str], lr: float) -> str:
    """``ftcli train`` with the same overrides, ``lrfind.*`` dropped and ``optimizer.lr`` set."""
    kept = [
        o
        for o in overrides
        if not o.lstrip("+~").startswith(("lrfind.", "lrfind=", "optimizer.lr="))
        and not o.startswith("hydra.")
    ]
    return " ".join(["ftcli", "train", *map(shlex.quote, kept), f"optimizer.lr={lr:.3g}"])


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="lrfind")
def main(cfg: DictConfig) -> float:
    return run_guarded(lrfind, cfg)


if __name__ == "__main__":
    main()
