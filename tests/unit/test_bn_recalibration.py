"""BatchNorm recalibration (training/callbacks/bn_recalibration.py, ``strategy.bn_recalibrate``)."""

from __future__ import annotations

import lightning as L
import torch
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader, TensorDataset

from ftcli.finetune.freeze_plan import apply_plan
from ftcli.finetune.phases import make_schedule
from ftcli.training.callbacks.bn_recalibration import RecalibrateBatchNorm, recalibrate, trainable_batchnorms
from ftcli.training.lightning_module import FineTuneModule

LAST_TWO = {"name": "last_layers", "n": 2, "bn": "train"}  # frozen blocks' BN would update in train mode


def stats(net) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items() if "running_" in k or "num_batches" in k}


def changed_blocks(before, after) -> set[str]:
    return {k.split(".")[1] for k in before if not torch.equal(before[k], after[k])}


class Images(L.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        x = 2 * torch.randn(8, 3, 32, 32, generator=generator) + 1
        self.data = TensorDataset(x, torch.arange(8) % 3)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=4)  # the order recalibrate sees below

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=8)


def test_recalibration_changes_bn_statistics_only_in_trainable_blocks(tiny_net) -> None:
    net = tiny_net("resnet18")
    plan = make_schedule(LAST_TWO, net).first
    apply_plan(net, plan)
    net.eval()
    before = stats(net)
    batches = [(2 * torch.randn(4, 3, 32, 32) + 1, None) for _ in range(3)]
    assert recalibrate(net, trainable_batchnorms(net, plan), batches) == 12
    assert changed_blocks(before, stats(net)) == {"stage3", "stage4"}  # frozen blocks: bit-identical
    assert not net.training and all(
        m.momentum == 0.1 for m in net.modules() if isinstance(m, _BatchNorm)
    )  # modes and momentum restored


def fit(net, callbacks) -> FineTuneModule:
    schedule = make_schedule(LAST_TWO, net)
    module = FineTuneModule(
        net, schedule, {"name": "adamw", "lr": 1e-2}, {"name": "none"}, {"num_classes": 3}
    )
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )
    trainer.fit(module, datamodule=Images())
    return module


def test_before_validation_the_statistics_are_the_average_over_the_training_data(tiny_net) -> None:
    torch.manual_seed(0)
    module = fit(tiny_net("resnet18"), [RecalibrateBatchNorm()])
    net = module.model
    validated = stats(net)
    # recomputing them now (same weights: validation came after the last step) gives the same numbers
    net.eval()
    loader = DataLoader(Images().data, batch_size=4)
    recalibrate(net, trainable_batchnorms(net, module.plan), loader)
    again = stats(net)
    for key in validated:
        if "stage4" in key and "running_mean" in key:
            assert torch.allclose(validated[key], again[key], atol=1e-5)
    # without the callback the running statistics are the momentum average taken during training
    torch.manual_seed(0)
    plain = fit(tiny_net("resnet18"), []).model
    key = next(k for k in validated if "stage4" in k and "running_mean" in k)
    assert not torch.allclose(stats(plain)[key], again[key], atol=1e-3)
