"""A NaN or infinite loss stops training with the step named, exit 2, and the last good checkpoint kept."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ftcli.errors import DivergedError
from ftcli.training.callbacks.divergence import StopOnNonFinite
from ftcli.training.checkpoint_io import AtomicCheckpointIO

from helpers.cli_inprocess import run_cli_inprocess


class Tiny(L.LightningModule):
    """A linear classifier whose loss (or weights) turn non-finite at a chosen point."""

    def __init__(self, nan_loss_at_step: int | None = None, nan_weights_in_epoch: int | None = None) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2)
        self.nan_loss_at_step = nan_loss_at_step
        self.nan_weights_in_epoch = nan_weights_in_epoch

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self.layer(x), y)
        return loss * float("nan") if self.global_step == self.nan_loss_at_step else loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        if self.current_epoch == self.nan_weights_in_epoch:
            with torch.no_grad():
                self.layer.weight.fill_(float("inf"))
        x, y = batch
        self.log("val/acc", (self.layer(x).argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class CopyCheckpointsAtEpochStart(L.Callback):
    """Keeps a copy of checkpoints/ as it was when each epoch started."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.folder.is_dir():
            shutil.copytree(self.folder, self.folder.with_name("copy"), dirs_exist_ok=True)


def fit(module: Tiny, tmp_path: Path) -> L.Trainer:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))
    loader = DataLoader(data, batch_size=4)  # 2 steps per epoch
    folder = tmp_path / "checkpoints"
    trainer = L.Trainer(
        max_epochs=4,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[
            CopyCheckpointsAtEpochStart(folder),
            ModelCheckpoint(dirpath=folder, filename="latest"),  # no monitor: saves every epoch
            StopOnNonFinite(),
        ],
        plugins=[AtomicCheckpointIO()],
    )
    trainer.fit(module, loader, loader)
    return trainer


def test_nan_loss_stops_before_the_step_and_keeps_the_checkpoints(tmp_path: Path) -> None:
    module = Tiny(nan_loss_at_step=3)  # epoch 1, batch 1
    with pytest.raises(DivergedError) as err:
        fit(module, tmp_path)

    message = str(err.value)
    assert "loss became nan at global step 3, epoch 1, batch 1" in message
    for remedy in ("optimizer.lr", "trainer.precision=32-true", "trainer.gradient_clip_val"):
        assert remedy in message
    assert torch.isfinite(module.layer.weight).all(), "the NaN step must not update the weights"
    saved = {p.name: p.read_bytes() for p in (tmp_path / "checkpoints").iterdir()}
    kept = {p.name: p.read_bytes() for p in (tmp_path / "copy").iterdir()}
    assert saved == kept, "a checkpoint changed after the last good epoch"
    assert torch.load(tmp_path / "checkpoints" / "latest.ckpt", weights_only=True)["epoch"] == 0


def test_non_finite_weights_are_never_saved(tmp_path: Path) -> None:
    module = Tiny(nan_weights_in_epoch=1)  # validation of epoch 1 leaves inf weights, then the save
    with pytest.raises(DivergedError, match=r"weights hold NaN or inf values \(layer.weight"):
        fit(module, tmp_path)

    saved = {p.name: p.read_bytes() for p in (tmp_path / "checkpoints").iterdir()}
    assert saved == {p.name: p.read_bytes() for p in (tmp_path / "copy").iterdir()}
    checkpoint = torch.load(tmp_path / "checkpoints" / "latest.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 0
    state = checkpoint["state_dict"]
    assert all(torch.isfinite(t).all() for t in state.values())


@pytest.mark.slow
def test_a_diverging_run_exits_2_naming_the_step(tmp_path: Path) -> None:
    # AdamW at the schema's largest lr and weight decay (10, 10): decoupled decay multiplies every decayed
    # weight by (1 - 100) per step, so weights and loss leave float32's range within a few dozen steps.
    result = run_cli_inprocess(
        "train",
        "model=resnet18",
        "trainer=cpu",
        "trainer.max_epochs=20",
        "trainer.enable_progress_bar=false",
        "print_config=false",
        "data=digits",
        "data.per_class=5",
        "data.image_size=16",
        "data.batch_size=8",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "model.weights=null",
        "optimizer.lr=10",
        "optimizer.weight_decay=10",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )

    text = result.stdout + result.stderr
    assert result.returncode == 2, text[-3000:]
    assert "Traceback" not in text
    stopped = (
        r"Training stopped: the (training loss became (nan|inf)|weights hold NaN or inf values \([^)]*\)) "
        r"at global step (\d+), epoch (\d+)"
    )
    match = re.search(stopped, text)
    assert match, text[-3000:]
    assert "optimizer.lr, now 10" in text and "trainer.gradient_clip_val" in text
    assert not (tmp_path / "run" / "summary.json").exists()
    for path in (tmp_path / "run" / "checkpoints").glob("*.ckpt"):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        assert checkpoint["epoch"] < int(match.group(4)), f"{path.name} was saved at or after the failure"
        tensors = [t for t in checkpoint["state_dict"].values() if t.is_floating_point()]
        assert all(torch.isfinite(t).all() for t in tensors)
