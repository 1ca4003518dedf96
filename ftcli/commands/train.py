"""``ftcli train``: compose with Hydra, fit, test, write checkpoints and a summary.

Run as a module (``python -m ftcli.commands.train``) by the dispatcher, so Lightning's DDP launcher
can re-run the same command line for the extra ranks. The path of one call, from the command line
to the checkpoint, is walked through in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ftcli.command_line.config_groups import config_dir
from ftcli.hydra_hooks.sweep_jobs import pin_sweep_job_command_line, requeued_checkpoint, run_guarded
from ftcli.ui import console


def train(cfg: DictConfig) -> float:
    """One training run in Hydra's output directory; returns the best validation accuracy."""
    # Heavy imports happen here, after Hydra configured logging, so Lightning logs through it once.
    import lightning as L
    from hydra.core.hydra_config import HydraConfig
    from rich.text import Text

    from ftcli.config.schema import check_config
    from ftcli.model.blocks import count_parameters
    from ftcli.pipeline.plan import prepare
    from ftcli.runs import plots, resume
    from ftcli.runs.summary import RunSummary
    from ftcli.training import performance
    from ftcli.training.callbacks.early_stopping import stop_summary
    from ftcli.training.distributed import distributed_scope
    from ftcli.training.lightning_module import FineTuneModule
    from ftcli.training.quiet_logging import quiet_lightning
    from ftcli.training.trainer import build_trainer, training_callbacks
    from ftcli.ui import tables

    quiet_lightning()
    started = time.perf_counter()
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    check_config(cfg)  # the typed schema, before the seed or the advisor use any value
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    cfg, advice = _resolve_auto(cfg, run_dir)
    if console.is_rank_zero():
        # .hydra/config.yaml keeps interpolations; this is the config exactly as the run used it
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    if cfg.get("print_config", True):
        console.show(tables.config_tree(cfg))

    prepared = prepare(cfg)
    prepared.advice = advice
    datamodule = prepared.datamodule
    console.show(tables.data_line(datamodule.describe()))
    console.show(tables.plan_table(prepared, float(cfg.optimizer.lr)))
    for note in tables.schedule_notes(prepared.schedule, cfg.trainer.get("max_epochs")):
        console.show(f"[yellow]note[/yellow]: {note}")
    # a sweep job requeued by SLURM (submitit) continues from its own last.ckpt
    resume_point = resume.resolve(
        requeued_checkpoint(run_dir) or cfg.get("resume"),
        cfg,
        run_dir,
        prepared.net.block_names,
        datamodule.num_classes,
    )
    if resume_point is not None:
        console.show(resume_point.describe())

    module = FineTuneModule(
        prepared.net,
        prepared.schedule,
        cfg.optimizer,
        cfg.scheduler,
        prepared.checkpoint_meta(cfg),
        loss=cfg.get("loss"),
        mixup=cfg.get("mixup"),
        ema=cfg.get("ema"),
    )
    datamodule = _with_feature_cache(prepared, cfg, module)
    _show_image_store(prepared.datamodule)
    # a stored training split is served without workers, so the network keeps every core
    workers = getattr(prepared.datamodule, "workers_in_use", prepared.datamodule.num_workers)
    performance.tune(module, cfg.trainer, workers)
    pin_sweep_job_command_line()
    with distributed_scope():
        trainer, checkpoint, throughput = build_trainer(
            cfg.trainer,
            run_dir,
            cfg.get("logger"),
            multi_phase=len(prepared.schedule.phases) > 1,
            extra_callbacks=training_callbacks(cfg),
        )
        if getattr(datamodule, "reloads_every_epoch", False):  # cached head-only phases, then images
            trainer.reload_dataloaders_every_n_epochs = 1
        fit_started = time.perf_counter()
        trainer.fit(
            module, datamodule=datamodule, ckpt_path=resume_point.path if resume_point is not None else None
        )
        fit_seconds = time.perf_counter() - fit_started

        # Read the checkpoint callback before testing: test(ckpt_path=best) restores the callback's state
        # as it was when best.ckpt was written, before last.ckpt existed (last_model_path would be "").
        best_path = checkpoint.best_model_path or None
        last_path = checkpoint.last_model_path or None
        best_val = float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None
        test_acc = None
        if datamodule.has_test:
            results = trainer.test(
                module, datamodule=datamodule, ckpt_path=best_path or last_path, verbose=False
            )
            test_acc = float(results[0]["test/acc"]) if results else None

    summary = RunSummary(
        run_dir=str(run_dir),
        model=str(cfg.model.name),
        strategy=str(cfg.strategy.name)
        if advice
        else hydra_cfg.runtime.choices.get("strategy") or str(cfg.strategy.name),
        recipe=hydra_cfg.runtime.choices.get("recipe") or str(cfg.recipe.name),
        data=str(cfg.data.name),
        weights=prepared.weights_label,
        best_val_acc=best_val,
        test_acc=test_acc,
        trainable_params=count_parameters(prepared.net, trainable_only=True),
        total_params=count_parameters(prepared.net),
        epochs=throughput.epochs,
        wall_seconds=time.perf_counter() - started,
        fit_seconds=fit_seconds,
        images_per_second=throughput.images_per_second,
        best_checkpoint=best_path,
        last_checkpoint=last_path,
        overrides=list(hydra_cfg.overrides.task),
        steady_images_per_second=throughput.steady_images_per_second,
        median_step_images_per_second=throughput.median_step_images_per_second,
        epoch_seconds=throughput.epoch_seconds,
        first_step_done=throughput.first_step_done,
        skipped_images=list(prepared.datamodule.bad_images),
        early_stopping=stop_summary(trainer),
        advice=advice["decision"] if advice else None,
    )
    if trainer.is_global_zero:
        summary.write()
        console.show(tables.run_table(summary))
        curves = plots.training_curves(run_dir / "metrics.csv", title=f"{summary.model} · {summary.strategy}")
        if curves is not None:
            console.show(Text(f"training curves: {curves}"))  # a path, not rich markup
    return best_val if best_val is not None else float("nan")


def _resolve_auto(cfg: DictConfig, run_dir: Path) -> tuple[DictConfig, dict[str, Any] | None]:
    """``strategy=auto``: run the advisor, print its decision in one line, keep its evidence in
    ``advice.json``; the returned config names the chosen strategy. Other configs pass unchanged."""
    from rich.text import Text

    from ftcli.advice.advisor import resolve_auto, write_advice
    from ftcli.command_line.config_groups import load_option
    from ftcli.finetune.strategies import is_auto

    if not is_auto(cfg):
        return cfg, None
    resolved, advice = resolve_auto(cfg, load_option)
    console.show(Text(advice.decision.line()))
    record = advice.to_dict()
    if console.is_rank_zero():
        write_advice(run_dir / "advice.json", record)
    return resolved, record


def _with_feature_cache(prepared: Any, cfg: DictConfig, module: Any) -> Any:
    """The datamodule to fit on: cached frozen-block features when eligible (one line says so), else images.

    The line is printed when caching is on, or when only the transform or BN policy keeps it off.
    """
    from rich.text import Text

    from ftcli.device import training_device
    from ftcli.features.datamodules import maybe_cached
    from ftcli.training.mixing import mixes_in_cached_phase

    datamodule, report = maybe_cached(
        prepared.datamodule,
        prepared.net,
        prepared.schedule,
        prepared.datamodule.cfg,
        training_device(cfg.trainer),
        module.feed_features,
        mixing=mixes_in_cached_phase(module.mix_options, prepared.schedule),
    )
    if report is not None:
        console.show(Text(report.line()))
    return datamodule


def _show_image_store(datamodule: Any) -> None:
    """Preprocess the deterministic splits now (not inside the first epoch) and say what was stored."""
    from rich.text import Text

    datamodule.setup()
    line = datamodule.store_line() if hasattr(datamodule, "store_line") else None
    if line:
        console.show(Text(line))


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def main(cfg: DictConfig) -> float:
    return run_guarded(train, cfg)


if __name__ == "__main__":
    main()
