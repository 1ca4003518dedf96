"""BatchNorm recalibration, "precise BN" (``strategy.bn_recalibrate``; pycls, detectron2).

BatchNorm's running statistics are an exponential average (momentum 0.1) of batch statistics taken
while the weights move. With few images (one or a few steps per epoch) they lag far behind the
weights, and the network validated in eval mode is not the network that was trained. Recalibration
recomputes them before every validation (so before every ``best.ckpt``/``last.ckpt`` written after
one, and so for the test of ``best.ckpt``): the running mean and variance of every BatchNorm layer in a
**trainable** block are reset and set to the plain average of their batch statistics over the training
data (up to ``MAX_IMAGES`` images, no gradients, the rest of the network in eval mode). BatchNorm in
frozen blocks is never touched, bit for bit, whatever ``strategy.bn`` says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from torch.nn.modules.batchnorm import _BatchNorm

from ftcli.finetune.freeze_plan import FreezePlan
from ftcli.model.blocks import BlockNet

# As pycls (NUM_SAMPLES_PRECISE): enough images for stable statistics, few enough to stay cheap.
MAX_IMAGES = 8192


def trainable_batchnorms(net: BlockNet, plan: FreezePlan) -> list[_BatchNorm]:
    """The BatchNorm layers (with running statistics) inside the blocks that train in ``plan``."""
    layers = []
    for block in plan.blocks:
        if block.trainable:
            for module in net.blocks[block.name].modules():
                if isinstance(module, _BatchNorm) and module.track_running_stats:
                    layers.append(module)
    return layers


@torch.no_grad()
def recalibrate(
    forward: Callable[[torch.Tensor], Any],
    layers: list[_BatchNorm],
    batches: Iterable[Any],
    max_images: int = MAX_IMAGES,
) -> int:
    """Recompute the running statistics of ``layers`` as the average over ``batches``; images used.

    ``forward`` runs a batch of inputs through the network, which the caller keeps in eval mode: only
    ``layers`` switch to train mode (cumulative average, momentum None) while it runs.
    """
    saved = [(layer, layer.momentum, layer.training) for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative moving average: every batch counts the same
        layer.train()
    seen = 0
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            forward(x)
            seen += len(x)
            if seen >= max_images:
                break
    finally:
        for layer, momentum, training in saved:
            layer.momentum = momentum
            layer.train(training)
    return seen


class RecalibrateBatchNorm(L.Callback):
    """``strategy.bn_recalibrate=true``: recalibrate the trainable blocks' BatchNorm before each validation.

    Runs after the EMA callback (when both are on), so it recalibrates the weights being validated.
    Under DDP every rank averages over its own batches, then the statistics are averaged over ranks.
    """

    def __init__(self, max_images: int = MAX_IMAGES) -> None:
        self.max_images = max_images
        self.images = 0  # used at the last recalibration

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        layers = trainable_batchnorms(pl_module.model, pl_module.plan)  # type: ignore[attr-defined]
        if not layers:
            return
        datamodule = trainer.datamodule
        loader = datamodule.train_dataloader() if datamodule is not None else trainer.train_dataloader
        device = pl_module.device

        def inputs() -> Iterator[torch.Tensor]:
            for batch in loader:
                batch = move_data_to_device(batch, device)
                if datamodule is not None:  # what the trainer does on the device (uint8 -> augmented input)
                    batch = datamodule.on_after_batch_transfer(batch, 0)
                yield batch[0] if isinstance(batch, (list, tuple)) else batch

        def forward(x: torch.Tensor) -> Any:
            with trainer.precision_plugin.forward_context():
                return pl_module._logits(x)  # type: ignore[attr-defined]

        self.images = recalibrate(forward, layers, inputs(), self.max_images)
        if trainer.world_size > 1:
            for layer in layers:
                for stat in (layer.running_mean, layer.running_var):
                    if stat is not None:
                        stat.copy_(trainer.strategy.reduce(stat, reduce_op="mean"))
