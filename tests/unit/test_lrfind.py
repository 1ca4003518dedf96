"""``ftcli lrfind`` (training/lr_range.py): the range test moves only the phase's trainable blocks and
leaves the network's weights as they were."""

from __future__ import annotations

import importlib

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ftcli.config.lrfind import range_options
from ftcli.errors import ConfigError
from ftcli.finetune.phases import make_schedule
from ftcli.training.lr_range import RangeTestModule, find_lr


class Images(L.LightningDataModule):
    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(8, 3, 32, 32, generator=generator)
        return DataLoader(TensorDataset(x, torch.arange(8) % 3), batch_size=4)


class Recording(RangeTestModule):
    """Which blocks the test itself moved (read before Lightning restores the weights)."""

    def on_train_start(self) -> None:
        super().on_train_start()
        self.start = {k: v.clone() for k, v in self.model.named_parameters()}

    def on_train_end(self) -> None:
        moved = {k for k, v in self.model.named_parameters() if not torch.equal(self.start[k], v)}
        self.moved = {k.split(".")[1] for k in moved}


@pytest.mark.parametrize(
    ("strategy", "phase"),
    [({"name": "feature_extraction"}, 1), pytest.param({"name": "lp_ft"}, 2, marks=pytest.mark.slow)],
)
def test_the_range_test_moves_its_phase_and_leaves_the_weights_unchanged(tiny_net, tmp_path, strategy, phase):
    net = tiny_net("resnet18")
    schedule = make_schedule(strategy, net)
    module = Recording(net, schedule, {"name": "adamw", "lr": 1e-3}, {"name": "cosine"}, {"num_classes": 3})
    before = {k: v.clone() for k, v in net.state_dict().items()}
    options = range_options(
        {"steps": 12, "phase": phase, "min_lr": 1e-5, "max_lr": 1e-1}, len(schedule.phases)
    )
    result = find_lr(module, Images(), {"accelerator": "cpu"}, tmp_path, options)
    assert len(result.lrs) == len(result.losses) > 2 and result.lrs == sorted(result.lrs)
    assert module.moved == set(schedule.phases[phase - 1].trainable_blocks)  # only its trainable blocks
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights (and BN statistics) restored


def test_the_printed_train_command_swaps_in_the_suggested_lr() -> None:
    lrfind = importlib.import_module("ftcli.commands.lrfind")
    command = lrfind.train_command(
        ["model=resnet18", "optimizer.lr=0.1", "lrfind.steps=50", "data.root=a b"], 3.2e-4
    )
    assert command == "ftcli train model=resnet18 'data.root=a b' optimizer.lr=0.00032"


@pytest.mark.parametrize("cfg", [{"steps": 3}, {"min_lr": 1, "max_lr": 0.1}, {"phase": 3}, {"step": 10}])
def test_bad_values_are_config_errors(cfg) -> None:
    with pytest.raises(ConfigError, match="lrfind"):
        range_options(cfg, phases=2)
