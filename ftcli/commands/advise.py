"""``ftcli advise``: which strategy fits this data? Measured on the training split, not guessed.

Takes the same overrides as ``train`` (model, weights, data, seed...), trains nothing heavy: it
probes every block of the starting network (``ftcli.advice``), prints the regime, the
numbers that led there and the ``ftcli train`` command to run, and writes ``advice.json`` in its
output folder. ``ftcli train strategy=auto`` runs the same advisor and then trains with its pick.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from ftcli.command_line.config_groups import config_dir
from ftcli.hydra_hooks.sweep_jobs import run_guarded
from ftcli.ui import console, tables


def advise(cfg: DictConfig) -> float:
    """Measure, decide, print, write ``advice.json``; returns the best block's probe accuracy."""
    from hydra.core.hydra_config import HydraConfig

    from ftcli.advice import advisor

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    advice = advisor.advise(cfg)
    command = advisor.train_command(list(hydra_cfg.overrides.task), advice.decision)
    record = advice.to_dict(command)
    path = advisor.write_advice(run_dir / "advice.json", record)
    for item in tables.advice_tables(record):
        console.show(item)
    console.show(f"advice.json: {path}")
    return float(advice.decision.numbers.get("peak_accuracy", float("nan")))


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def main(cfg: DictConfig) -> float:
    return run_guarded(advise, cfg)


if __name__ == "__main__":
    main()
