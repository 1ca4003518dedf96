"""``ftcli train``: compose with Hydra, resolve ``strategy=auto``, then run the pipeline.

Run as a module (``python -m ftcli.commands.train``) by the dispatcher, so Lightning's DDP launcher
can re-run the same command line for the extra ranks. The path of one call, from the command line
to the checkpoint, is walked through in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from ftcli.command_line.config_groups import config_dir
from ftcli.hydra_hooks.optuna_sweeper import register as register_sweeper
from ftcli.hydra_hooks.sweep_jobs import run_guarded
from ftcli.ui import console, tables


def train(cfg: DictConfig) -> float:
    """One training run in Hydra's output directory; returns the best validation accuracy."""
    # Heavy imports happen here, after Hydra configured logging, so Lightning logs through it once.
    from hydra.core.hydra_config import HydraConfig

    from ftcli.pipeline import run

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    cfg, advice = _resolve_auto(cfg, run_dir)
    result = run(
        cfg,
        run_dir,
        advice=advice,
        overrides=list(hydra_cfg.overrides.task),
        choices=dict(hydra_cfg.runtime.choices),
    )
    return result.best_val_acc


def _resolve_auto(cfg: DictConfig, run_dir: Path) -> tuple[DictConfig, dict[str, Any] | None]:
    """``strategy=auto``: run the advisor, print its decision in one line, keep its evidence in
    ``advice.json``; with ``auto.mode=race`` (the default) race its shortlist and print the race's
    table. The returned config names the chosen strategy. Other configs pass unchanged (and never
    import the advisor, or scikit-learn behind it)."""
    from ftcli.finetune.strategies import is_auto

    if not is_auto(cfg):
        return cfg, None
    import lightning as L
    from rich.text import Text

    from ftcli.advice.advisor import resolve_auto, with_choice, write_advice
    from ftcli.advice.race import plan_for, races, run_race
    from ftcli.command_line.config_groups import load_option
    from ftcli.config.schema import check_config

    racing = races(cfg)
    if racing:  # the auto.* keys, and a budget with no room for a race, fail before the advisor's probes
        check_config(cfg)
        plan_for(cfg)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    resolved, advice = resolve_auto(cfg, load_option)
    console.show(Text(advice.decision.line()))
    record = advice.to_dict()
    if racing:
        plan = plan_for(cfg, len(advice.shortlist))
        console.show(tables.shortlist_table(record["shortlist"]))
        console.show_line(plan.line())
        entrants = advice.shortlist[: plan.candidates]
        race = run_race(plan, entrants, lambda c: with_choice(cfg, c, load_option), run_dir)
        record["race"] = race.to_dict()
        console.show(tables.race_table(record["race"]))
        console.show(Text(f"auto: the race's winner -> {' '.join(race.champion.overrides)}, trained in full"))
        resolved = with_choice(cfg, race.champion, load_option)
    if console.is_rank_zero():
        write_advice(run_dir / "advice.json", record)
    return resolved, record


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def main(cfg: DictConfig) -> float:
    return run_guarded(train, cfg)


if __name__ == "__main__":
    register_sweeper()  # hydra/sweeper=optuna (hparams_search=NAME), also from an editable install
    main()
