"""Strategies over time: across phase changes, what trains, at which rate, what BN does; exact resume."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader, TensorDataset

from ftcli.errors import ConfigError
from ftcli.finetune.freeze_plan import FreezePlan, Schedule
from ftcli.finetune.phases import make_schedule
from ftcli.model.blocks import HEAD, BlockNet
from ftcli.pipeline import plan_run
from ftcli.training.lightning_module import FineTuneModule
from ftcli.training.schedulers.cosine import warmup_cosine
from ftcli.training.trainer import build_trainer

pytestmark = pytest.mark.usefixtures("single_thread")

BACKBONE = ["stem", "stage1", "stage2", "stage3", "stage4"]
BASE_LR = 1e-2
STEPS_PER_EPOCH = 3


# --- schedules from configs -------------------------------------------------------------------------


def test_gradual_unfreezes_one_block_from_the_top_every_n_epochs(tiny_net) -> None:
    schedule = make_schedule({"name": "gradual", "every": 2}, tiny_net("resnet18"))
    assert [p.trainable_blocks for p in schedule.phases] == [
        [HEAD],
        ["stage4", HEAD],
        ["stage3", "stage4", HEAD],
        ["stage2", "stage3", "stage4", HEAD],
        ["stage1", "stage2", "stage3", "stage4", HEAD],
        [*BACKBONE, HEAD],
    ]
    assert [p.start_epoch for p in schedule.phases] == [0, 2, 4, 6, 8, 10]
    assert schedule.phases[-1].epochs is None  # the last phase runs to the end
    assert [schedule.phase_index(e) for e in (0, 1, 2, 9, 10, 99)] == [0, 0, 1, 4, 5, 5]


def test_lp_ft_probes_then_fine_tunes_everything_at_a_lower_rate(tiny_net) -> None:
    schedule = make_schedule({"name": "lp_ft", "probe_epochs": 3, "ft_lr_mult": 0.1}, tiny_net("resnet18"))
    probe, finetune = schedule.phases
    assert probe.trainable_blocks == [HEAD] and probe.epochs == 3
    assert finetune.trainable_blocks == [*BACKBONE, HEAD] and finetune.start_epoch == 3
    assert {b.name: b.lr_mult for b in finetune.blocks} == {name: 0.1 for name in [*BACKBONE, HEAD]}


def test_lr_decay_gives_block_i_from_the_head_lr_times_decay_to_the_i(tiny_net) -> None:
    schedule = make_schedule({"name": "full", "lr_decay": 0.5, "backbone_lr_mult": 1.0}, tiny_net("resnet18"))
    mults = {b.name: b.lr_mult for b in schedule.first.blocks}
    assert mults == {
        HEAD: 1.0,
        "stage4": 0.5,
        "stage3": 0.25,
        "stage2": 0.125,
        "stage1": 0.0625,
        "stem": 0.03125,
    }


def test_custom_phases_from_yaml(tiny_net) -> None:
    cfg = OmegaConf.create(
        """
        name: mine
        bn: frozen
        phases:
          - {epochs: 2, train: head, label: probe}
          - {epochs: 1, train: "last:2", bn: affine, lr_mult: {stage4: 0.5}}
          - {epochs: 2, train: [stage2, stage3, stage4], lr_mult: 0.1}
          - {train: all}
        """
    )
    schedule = make_schedule(cfg, tiny_net("resnet18"))
    assert [p.trainable_blocks for p in schedule.phases] == [
        [HEAD],
        ["stage3", "stage4", HEAD],
        ["stage2", "stage3", "stage4", HEAD],
        [*BACKBONE, HEAD],
    ]
    assert [p.start_epoch for p in schedule.phases] == [0, 2, 3, 5]
    second = {b.name: b for b in schedule.phases[1].blocks}
    assert second["stage4"].lr_mult == 0.5 and second["stage3"].lr_mult == 1.0
    assert (
        second["stem"].bn == "affine" and second["stem"].lr_mult == 1.0
    )  # BN affine trains in frozen blocks
    assert schedule.phases[0].label == "probe"


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        ([{"train": "last:9"}], "does not select blocks"),
        ([{"train": ["stage9"]}], "Unknown block 'stage9'"),
        ([{"epochs": 0, "train": "head"}, {"train": "all"}], "whole number of epochs"),
        ([{"train": "all", "speed": 2}], "unknown keys: speed"),
        ([{"train": "head"}, {"train": "all"}], "strategy.phases[0].epochs is required"),
        ([{"train": "all", "bn": "sometimes"}], "strategy.phases[0].bn='sometimes' is not valid"),
        ("head", "must be a list of phases"),
    ],
)
def test_bad_phases_raise_config_errors(tiny_net, phases: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_schedule({"name": "mine", "phases": phases}, tiny_net("resnet18"))
    assert message in str(err.value)


def test_unknown_strategy_mentions_custom_phases(tiny_net) -> None:
    with pytest.raises(ConfigError) as err:
        make_schedule({"name": "freeze_some"}, tiny_net("resnet18"))
    assert "gradual" in str(err.value) and "lp_ft" in str(err.value) and "phases" in str(err.value)


# --- a real Lightning fit across phase changes --------------------------------------------------------


@dataclass
class Step:
    epoch: int
    step: int
    phase: int
    lrs: dict[str, float]
    changed: set[str]


class StepRecorder(L.Callback):
    """Per training step: the phase, every group's learning rate, and which tensors the step changed."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._before = {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}
        self._lrs = {g["name"]: g["lr"] for g in trainer.optimizers[0].param_groups}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        after = pl_module.model.state_dict()
        changed = {k for k, v in after.items() if not torch.equal(self._before[k], v)}
        step = Step(trainer.current_epoch, trainer.global_step - 1, pl_module.phase_index, self._lrs, changed)
        self.steps.append(step)


def fit_recorded(net: BlockNet, schedule: Schedule, epochs: int, scheduler: dict[str, Any]) -> list[Step]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4 * STEPS_PER_EPOCH, 3, 32, 32, generator=generator)
    y = torch.randint(0, 3, (len(x),), generator=generator)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    module = FineTuneModule(net, schedule, {"name": "adamw", "lr": BASE_LR}, scheduler, {"num_classes": 3})
    recorder = StepRecorder()
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
        num_sanity_val_steps=0,
    )
    trainer.fit(module, train_dataloaders=loader)
    return recorder.steps


def expected_changes(net: BlockNet, plan: FreezePlan) -> set[str]:
    """State-dict names a step must change: trainable parameters, and BN statistics in train mode."""
    names = set()
    for block in plan.blocks:
        for module_name, module in net.blocks[block.name].named_modules():
            prefix = f"blocks.{block.name}.{module_name}".rstrip(".")
            is_bn = isinstance(module, _BatchNorm)
            for param_name, _ in module.named_parameters(recurse=False):
                if block.trainable or (is_bn and block.bn == "affine"):
                    names.add(f"{prefix}.{param_name}")
            if (
                is_bn and block.bn == "train"
            ):  # BN in train mode: trainable blocks, or frozen ones under bn=train
                names.update(f"{prefix}.{buffer}" for buffer in ("running_mean", "running_var"))
                names.add(f"{prefix}.num_batches_tracked")
    return names


SCHEDULE_CASES = {
    "gradual_frozen": ({"name": "gradual", "every": 1, "bn": "frozen"}, 6),
    "gradual_affine_decay": ({"name": "gradual", "every": 2, "bn": "affine", "lr_decay": 0.5}, 5),
    "gradual_bn_train": ({"name": "gradual", "every": 1, "bn": "train"}, 3),
    "lp_ft": ({"name": "lp_ft", "probe_epochs": 2, "ft_lr_mult": 0.1, "probe_lr_mult": 2.0}, 4),
    "custom": (
        {
            "name": "mine",
            "phases": [
                {"epochs": 1, "train": "head"},
                {"epochs": 1, "train": "last:1", "bn": "affine", "lr_mult": {"stage4": 0.3}},
                {"train": "from:stage2", "lr_mult": 0.2},
            ],
        },
        3,
    ),
}


@pytest.mark.parametrize("case", list(SCHEDULE_CASES))
# the constant rate (none) is the cosine case's simpler twin: make test runs it, make test-fast does not
@pytest.mark.parametrize("scheduler", ["cosine", pytest.param("none", marks=pytest.mark.slow)])
def test_each_step_trains_what_its_phase_says_at_the_formula_rate(
    tiny_net, case: str, scheduler: str
) -> None:
    cfg, epochs = SCHEDULE_CASES[case]
    net = tiny_net("resnet18")
    schedule = make_schedule(cfg, net)
    scheduler_cfg = {"name": scheduler, "warmup_epochs": 1, "min_lr_ratio": 0.1}
    steps = fit_recorded(net, schedule, epochs, scheduler_cfg)

    total = epochs * STEPS_PER_EPOCH
    curve = warmup_cosine(total, int(1 / epochs * total), 0.1) if scheduler == "cosine" else (lambda s: 1.0)
    assert len(steps) == total
    phases_seen = set()
    for step in steps:
        plan = schedule.at(step.epoch)
        phases_seen.add(plan.index)
        assert step.phase == plan.index
        for name, lr in step.lrs.items():
            expected = BASE_LR * plan.lr_mult(name) * curve(step.step)
            assert lr == pytest.approx(expected, rel=1e-9, abs=1e-15), (case, step.step, name)
        assert step.changed == expected_changes(net, plan), (case, step.epoch, plan.label)
    assert phases_seen == {p.index for p in schedule.phases if p.start_epoch < epochs}
    assert len(phases_seen) > 1


def test_frozen_and_affine_bn_statistics_stay_fixed_across_phases(tiny_net) -> None:
    for bn in ("frozen", "affine"):
        net = tiny_net("resnet18")
        schedule = make_schedule({"name": "gradual", "every": 1, "bn": bn}, net)
        stem_before = {k: v.clone() for k, v in net.blocks["stem"].state_dict().items() if "running" in k}
        fit_recorded(net, schedule, 3, {"name": "none"})  # the stem is frozen in all three phases
        for key, value in net.blocks["stem"].state_dict().items():
            if "running" in key:
                assert torch.equal(stem_before[key], value), (bn, key)


# --- resume: interrupted + resumed == uninterrupted ------------------------------------------------------


class StopAfterEpoch(L.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True


def run_fit(
    cfg, run_dir: Path, stop_after: int | None = None, ckpt_path: Path | None = None
) -> FineTuneModule:
    """What `ftcli train` does (train.py), with an optional interruption."""
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    run_plan = plan_run(cfg)
    module = run_plan.module()
    trainer, _, _ = build_trainer(cfg.trainer, run_dir, multi_phase=len(run_plan.schedule.phases) > 1)
    if stop_after is not None:
        trainer.callbacks.insert(0, StopAfterEpoch(stop_after))
    trainer.fit(module, datamodule=run_plan.datamodule, ckpt_path=ckpt_path)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["lp_ft"])  # gradual: the kill -9 and SIGTERM tests of test_phases_cli
def test_resume_after_a_phase_change_equals_the_uninterrupted_run(compose_train, tmp_path, strategy) -> None:
    cfg = compose_train(
        f"strategy={strategy}",
        "strategy.every=1" if strategy == "gradual" else "strategy.probe_epochs=1",
        "data.per_class=6",
        "data.image_size=16",
        "data.batch_size=16",
        "data.num_workers=0",
        "data.augment.hflip=true",
        "trainer.max_epochs=4",
        "trainer.enable_progress_bar=false",
        "scheduler.warmup_epochs=1",
    )
    whole = run_fit(cfg, tmp_path / "whole")
    run_fit(cfg, tmp_path / "first", stop_after=1)
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["epoch"] == 1 and saved["ftcli"]["phase"]["index"] == 1  # taken after the phase change
    resumed = run_fit(cfg, tmp_path / "resumed", ckpt_path=last)

    assert resumed.phase_index == whole.phase_index
    whole_state, resumed_state = whole.model.state_dict(), resumed.model.state_dict()
    for key, value in whole_state.items():
        assert torch.allclose(value.float(), resumed_state[key].float(), atol=1e-6), key
