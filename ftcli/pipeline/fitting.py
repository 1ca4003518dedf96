"""Fit a planned run: resume point, Lightning module, feature cache, Trainer, fit, test, summary, curves.

:func:`run` is the second half of the pipeline (``ftcli train``, each job of a sweep, each DDP rank).
It prints progress through the console (rank 0 only) and leaves everything in ``run_dir``:
``config.yaml``, ``checkpoints/best.ckpt`` and ``last.ckpt``, ``metrics.csv``, ``summary.json`` and
``curves.png``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf
from rich.text import Text

from ftcli import notices
from ftcli.device import training_device
from ftcli.features.datamodules import maybe_cached
from ftcli.finetune.transformer_rate import high_rate_note
from ftcli.hydra_hooks.sweep_jobs import pin_sweep_job_command_line, requeued_checkpoint
from ftcli.model.blocks import count_parameters
from ftcli.pipeline.planning import RunPlan, plan_run
from ftcli.runs import plots, resume
from ftcli.runs.summary import RunSummary
from ftcli.training import performance
from ftcli.training.callbacks import trial_pruning
from ftcli.training.callbacks.early_stopping import stop_summary
from ftcli.training.distributed import distributed_scope
from ftcli.training.lightning_module import FineTuneModule
from ftcli.training.mixing import mixes_in_cached_phase
from ftcli.training.quiet_logging import quiet_lightning
from ftcli.training.termination import stops_on_sigterm
from ftcli.training.trainer import build_trainer, training_callbacks
from ftcli.ui import console, tables


@dataclass(frozen=True)
class RunResult:
    """What a fitted run reports: its summary (also in ``summary.json``) and the plan it trained."""

    summary: RunSummary
    plan: RunPlan

    @property
    def best_val_acc(self) -> float:
        """The best validation accuracy (NaN when no validation ran): what a sweeper optimises."""
        value = self.summary.best_val_acc
        return float("nan") if value is None else float(value)


def run(
    cfg: DictConfig,
    run_dir: Path,
    *,
    advice: dict[str, Any] | None = None,
    overrides: Sequence[str] = (),
    choices: Mapping[str, Any] | None = None,
    test: bool = True,
) -> RunResult:
    """One training run of a composed config (``strategy=auto`` resolved, its record in ``advice``) in
    ``run_dir``. ``overrides`` and ``choices`` (Hydra's, when there is one) name the run in its summary.
    ``test=False`` never touches the test split (a race candidate of ``strategy=auto``)."""
    quiet_lightning()
    notices.new_run()
    started = time.perf_counter()
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    if console.is_rank_zero():
        # .hydra/config.yaml keeps interpolations; this is the config exactly as the run used it
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    if cfg.get("print_config", True):
        console.show(tables.config_tree(cfg))
    run_plan = plan_run(cfg, advice)
    show_plan(run_plan)
    # a sweep job requeued by SLURM (submitit) continues from its own last.ckpt
    resume_point = resume.resolve(
        requeued_checkpoint(run_dir) or cfg.get("resume"),
        cfg,
        run_dir,
        run_plan.net.block_names,
        run_plan.datamodule.num_classes,
    )
    if resume_point is not None:
        console.show(resume_point.describe())
    module = run_plan.module()
    datamodule = _with_feature_cache(run_plan, module)
    _show_image_store(run_plan.datamodule)
    # a stored training split is served without workers, so the network keeps every core
    source = run_plan.datamodule
    performance.tune(module, cfg.trainer, source.workers_in_use, compile=run_plan.options.compile)
    pin_sweep_job_command_line()
    with distributed_scope():
        trainer, checkpoint, throughput = build_trainer(
            cfg.trainer,
            run_dir,
            cfg.get("logger"),
            multi_phase=len(run_plan.schedule.phases) > 1,
            # a search trial (ftcli's Optuna sweeper) also reports to its trial and may be pruned
            extra_callbacks=[*training_callbacks(run_plan.options), *trial_pruning.for_run(run_dir)],
        )
        if getattr(datamodule, "reloads_every_epoch", False):  # cached head-only phases, then images
            trainer.reload_dataloaders_every_n_epochs = 1
        fit_started = time.perf_counter()
        # SIGTERM (preemption): Lightning stops after the step; the error says how to continue
        with stops_on_sigterm(trainer, checkpoint, run_dir, overrides):
            trainer.fit(
                module,
                datamodule=datamodule,
                ckpt_path=resume_point.path if resume_point is not None else None,
            )
        fit_seconds = time.perf_counter() - fit_started

        # Read the checkpoint callback before testing: test(ckpt_path=best) restores the callback's state
        # as it was when best.ckpt was written, before last.ckpt existed (last_model_path would be "").
        best_path = checkpoint.best_model_path or None
        last_path = checkpoint.last_model_path or None
        best_val = float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None
        test_acc = None
        if test and datamodule.has_test:
            with stops_on_sigterm(trainer, checkpoint, run_dir, overrides):
                results = trainer.test(
                    module, datamodule=datamodule, ckpt_path=best_path or last_path, verbose=False
                )
            test_acc = float(results[0]["test/acc"]) if results else None

    choices = choices or {}
    summary = RunSummary(
        run_dir=str(run_dir),
        model=str(cfg.model.name),
        strategy=str(cfg.strategy.name) if advice else choices.get("strategy") or str(cfg.strategy.name),
        # strategy=auto may change the recipe too (the race's truncation): the run's own, not Hydra's choice
        recipe=str(cfg.recipe.name) if advice else choices.get("recipe") or str(cfg.recipe.name),
        data=str(cfg.data.name),
        weights=run_plan.weights_label,
        best_val_acc=best_val,
        test_acc=test_acc,
        trainable_params=count_parameters(run_plan.net, trainable_only=True),
        total_params=count_parameters(run_plan.net),
        epochs=throughput.epochs,
        wall_seconds=time.perf_counter() - started,
        fit_seconds=fit_seconds,
        images_per_second=throughput.images_per_second,
        best_checkpoint=best_path,
        last_checkpoint=last_path,
        overrides=list(overrides),
        steady_images_per_second=throughput.steady_images_per_second,
        median_step_images_per_second=throughput.median_step_images_per_second,
        epoch_seconds=throughput.epoch_seconds,
        first_step_done=throughput.first_step_done,
        skipped_images=list(run_plan.datamodule.bad_samples),
        leaks=run_plan.datamodule.leaks.to_dict() if run_plan.datamodule.leaks is not None else None,
        early_stopping=stop_summary(trainer),
        pruned=trial_pruning.pruned_summary(trainer),
        advice=advice["decision"] if advice else None,
        race=advice.get("race") if advice else None,
    )
    if trainer.is_global_zero:
        summary.write()
        console.show(tables.run_table(summary))
        curves = plots.training_curves(run_dir / "metrics.csv", title=f"{summary.model} · {summary.strategy}")
        if curves is not None:
            console.show(Text(f"training curves: {curves}"))  # a path, not rich markup
    return RunResult(summary, run_plan)


def show_plan(run_plan: RunPlan) -> None:
    """The data line, the block plan and the schedule's notes: what ``train`` and ``inspect`` print first."""
    cfg = run_plan.cfg
    console.show(tables.data_line(run_plan.datamodule.describe()))
    console.show(tables.plan_table(run_plan, float(cfg.optimizer.lr)))
    rate_note = high_rate_note(
        run_plan.net, run_plan.schedule, float(cfg.optimizer.lr), run_plan.starts_pretrained
    )
    for note in [*run_plan.net.notes, *([rate_note] if rate_note else [])]:
        console.show(f"[yellow]note[/yellow]: {note}")
    for note in tables.schedule_notes(run_plan.schedule, cfg.trainer.get("max_epochs")):
        console.show(f"[yellow]note[/yellow]: {note}")


def _with_feature_cache(run_plan: RunPlan, module: FineTuneModule) -> Any:
    """The datamodule to fit on: cached frozen-block features when eligible (one line says so), else images.

    The line is printed when caching is on, or when only the transform or BN policy keeps it off.
    """
    datamodule, report = maybe_cached(
        run_plan.datamodule,
        run_plan.net,
        run_plan.schedule,
        run_plan.datamodule.cfg,
        training_device(run_plan.cfg.trainer),
        module.feed_features,
        mixing=mixes_in_cached_phase(run_plan.options.training.mixup, run_plan.schedule),
    )
    if report is not None:
        console.show(Text(report.line()))
        for notice in report.notices():
            console.show(Text(notice))
    return datamodule


def _show_image_store(datamodule: Any) -> None:
    """Preprocess the deterministic splits now (not inside the first epoch) and say what was stored."""
    datamodule.setup()
    line = datamodule.store_line() if hasattr(datamodule, "store_line") else None
    if line:
        console.show(Text(line))
