"""One short CPU fit of a composed train config, as the tests that compare whole runs need it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from ftcli.pipeline import RunPlan, plan_run
from ftcli.training.lightning_module import FineTuneModule


def fit_config(
    cfg: DictConfig, folder: Path, epochs: int = 2, callbacks: Sequence[L.Callback] = ()
) -> tuple[FineTuneModule, RunPlan]:
    """Seed, prepare and fit ``cfg`` for ``epochs`` on the CPU: no logger, checkpoints or progress bar."""
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    run_plan = plan_run(cfg)
    module = run_plan.module()
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(folder),
        callbacks=list(callbacks),
    )  # fmt: skip
    trainer.fit(module, datamodule=run_plan.datamodule)
    return module, run_plan
