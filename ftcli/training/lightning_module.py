"""The LightningModule: loss, metrics, per-block optimizer groups, scheduler, checkpoint metadata."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from torchmetrics.classification import MulticlassAccuracy

from ftcli.config.loss import AUTO
from ftcli.config.run_options import TrainingOptions
from ftcli.finetune.adapter_record import AdapterRecord
from ftcli.finetune.freeze_plan import FreezePlan, Schedule, apply_plan, param_groups
from ftcli.model.adapters import check_base
from ftcli.model.blocks import BlockNet
from ftcli.runs import checkpoint_schema
from ftcli.training import performance
from ftcli.training.loss import class_counts, eval_loss, imbalance_line, resolve_weights, train_loss
from ftcli.training.mixing import batch_mixer
from ftcli.training.optimizers import OPTIMIZERS
from ftcli.training.schedulers import SCHEDULERS

MODEL_PREFIX = "model."  # the network's tensors in the module's state_dict (``self.model``)


class FineTuneModule(L.LightningModule):
    """Trains a BlockNet through a strategy's phases; checkpoints carry the run's self-description.

    The phase follows the epoch (``on_train_epoch_start``), so a resumed run lands in the phase its
    checkpoint was in without any state of its own. Each param group's learning rate is
    ``lr x multiplier(block, phase) x schedule(step)``, computed by one LambdaLR holding a factor per
    group: the multipliers change at a phase boundary, the warmup/cosine curve runs on across it.
    """

    def __init__(
        self,
        net: BlockNet,
        schedule: Schedule,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any],
        meta: Mapping[str, Any],
        options: TrainingOptions | None = None,
    ) -> None:
        super().__init__()
        self.model = net
        self.schedule = schedule
        self.phase_index = 0
        self.optimizer_cfg = dict(optimizer)
        self.scheduler_cfg = dict(scheduler)
        num_classes = int(meta[checkpoint_schema.NUM_CLASSES])
        options = options or TrainingOptions()  # checked once, by the pipeline (ftcli.config.run_options)
        # loss.* (training/loss.py): smoothing and class weights shape the training loss only
        self.loss_options = options.loss
        # mixup.* (training/mixing.py): mixed training batches with soft targets, in the phases it applies to
        self.mix_options = options.mixup
        self.mixer = batch_mixer(self.mix_options, num_classes) if self.mix_options.enabled else None
        # Recorded beside the loss (the strategy, with strategy.bn_recalibrate, is in meta already).
        self.meta = checkpoint_schema.with_training(
            meta,
            loss=self.loss_options.to_dict(),
            mixup=self.mix_options.to_dict(),
            ema=options.ema.to_dict(),
            decay_norm_and_bias=bool(self.optimizer_cfg.get("decay_norm_and_bias", False)),
        )
        # Not persistent: `auto` weights are recomputed from the data at setup, and checkpoints written
        # with and without class weights keep the same tensors (resume and eval load either).
        fixed = None if self.loss_options.class_weights == AUTO else resolve_weights(self.loss_options, None)
        self.register_buffer("class_weight", fixed, persistent=False)
        self.criterion = (
            eval_loss  # validation and test loss: plain cross-entropy (training/loss.py says why)
        )
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self._loss_sum: torch.Tensor | float = 0.0  # set per epoch (on_train_epoch_start)
        self._loss_images = 0
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        _check_names(self.optimizer_cfg, self.scheduler_cfg)
        apply_plan(self.model, self.plan)
        # An adapter run (strategy=lora) stores only what can change; its base is fingerprinted at the
        # first save (hashing every frozen weight once) and checked on resume.
        self.adapter_record = AdapterRecord.of(net, schedule)
        # Set by feed_features() when batches hold cached features of the frozen blocks, not images:
        # maps them to logits. forward() always takes images.
        self.input_tail: Callable[[torch.Tensor], torch.Tensor] | None = None

    def feed_features(self, tail: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Train on cached frozen-block features (features/datamodules.py): ``tail`` maps them to logits."""
        self.input_tail = tail

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_tail is not None and self._on_features():
            return self.input_tail(x)
        return self.model(x)

    def _on_features(self) -> bool:
        """Whether batches are cached features now: always with a cached single-phase plan; with
        cached leading phases, the datamodule knows (features/datamodules.py, ``PhasedDataModule``)."""
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        features_now = getattr(datamodule, "features_now", None)
        return features_now() if features_now is not None else True

    @property
    def plan(self) -> FreezePlan:
        """The phase in force."""
        return self.schedule.phases[self.phase_index]

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self._weigh_classes()
        if stage == "fit" and len(self.schedule.phases) > 1 and self.trainer.world_size > 1:
            # DDP registers gradient hooks only on parameters that require grad when it wraps the model:
            # mark everything a later phase trains, and let on_train_start put the phase back.
            for name in self.model.block_names:
                if any(phase.lr_mult(name) > 0 for phase in self.schedule.phases):
                    self.model.blocks[name].requires_grad_(True)

    def _weigh_classes(self) -> None:
        """Count the training split's classes: one line when it is imbalanced, and the ``auto`` weights."""
        counts = self._train_counts()
        if counts is not None:
            names = self.meta.get(checkpoint_schema.CLASS_NAMES) or [str(i) for i in range(len(counts))]
            weighted = self.loss_options.class_weights is not None
            line = imbalance_line(counts, names, weighted)
            if line is not None:
                self.print(line)
        if self.loss_options.class_weights == AUTO:
            self.class_weight = resolve_weights(self.loss_options, counts).to(self.device)

    def _train_counts(self) -> list[int] | None:
        """Images per class in the training split, or None when the data does not list its labels."""
        datamodule = self.trainer.datamodule
        # cached features (features/datamodules.py) keep their image datamodule as ``source``
        source = getattr(datamodule, "source", datamodule)
        dataset = source.dataset("train") if hasattr(source, "dataset") else None
        targets = getattr(dataset, "targets", None)
        return (
            None if targets is None else class_counts(targets, int(self.meta[checkpoint_schema.NUM_CLASSES]))
        )

    def on_train_start(self) -> None:
        self.enter_phase(self.schedule.phase_index(self.current_epoch))

    def on_train_epoch_start(self) -> None:
        self._loss_sum = 0.0  # this epoch's training loss x images (a tensor on the device after a step)
        self._loss_images = 0
        index = self.schedule.phase_index(self.current_epoch)
        if index != self.phase_index:
            phase = self.schedule.phases[index]
            trainable = ", ".join(phase.trainable_blocks)
            self.print(
                f"phase {index + 1}/{len(self.schedule.phases)} ({phase.label}) from epoch "
                f"{self.current_epoch}: training {trainable}"
            )
        self.enter_phase(index)

    def enter_phase(self, index: int) -> None:
        """Apply phase ``index``: requires_grad, no-grad prefix, BN modes, and the groups' rates now."""
        changed = index != self.phase_index
        self.phase_index = index
        apply_plan(self.model, self.plan)
        if changed:
            performance.recompile(self)  # a compiled graph keeps the old requires_grad (docs/ARCHITECTURE.md)
        if self._trainer is None or not self.trainer.lr_scheduler_configs:
            return
        scheduler = self.trainer.lr_scheduler_configs[0].scheduler
        for group, base, rate in zip(
            scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
        ):
            group["lr"] = base * rate(scheduler.last_epoch)
            group["lr_mult"] = self.plan.lr_mult(group["name"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        targets = y
        if self.mixer is not None and self.mix_options.applies(self.plan):
            x, targets = self.mixer(x, y)  # soft targets, one row per image summing to 1
            y = targets.argmax(dim=1)  # train/acc against each mixed image's larger share
        logits = self._logits(x)
        loss = train_loss(logits, targets, self.loss_options, self.class_weight)
        # Summed here and logged once, at the epoch's last step: each self.log call costs Lightning about
        # a millisecond, most of a step when only the head trains on cached features.
        self.train_acc.update(logits, y)
        self._loss_sum += loss.detach() * len(y)
        self._loss_images += len(y)
        if self._last_step_of_epoch(batch_idx):
            self._log_training_metrics()
        return loss

    def _last_step_of_epoch(self, batch_idx: int) -> bool:
        """Whether this step ends the epoch (the loader is exhausted, or limit_train_batches reached)."""
        trainer = self._trainer
        if trainer is None:  # a step called by hand, outside a fit: nothing to log to
            return False
        return trainer.fit_loop.epoch_loop.batch_progress.is_last_batch or (
            batch_idx + 1 >= trainer.num_training_batches
        )

    def _log_training_metrics(self) -> None:
        """The epoch's training loss (mean over its images) and accuracy: what logging every step with
        on_epoch=True gave, in time for the validation, the progress bar and the checkpoints."""
        images = self._loss_images
        loss = self._loss_sum / images
        self.log(
            "train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=images, sync_dist=True
        )
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=images)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val", self.val_acc)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test", self.test_acc)

    def _eval_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], stage: str, metric: MulticlassAccuracy
    ) -> None:
        x, y = batch
        logits = self._logits(x)
        metric(logits, y)
        loss = self.criterion(logits, y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
        self.log(f"{stage}/acc", metric, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))

    def configure_optimizers(self) -> Any:
        """Param groups per block (decay / no decay), created once (docs/ARCHITECTURE.md); the scheduler
        steps every batch."""
        lr = float(self.optimizer_cfg["lr"])
        decay_all = bool(self.optimizer_cfg.get("decay_norm_and_bias", False))
        groups = param_groups(self.model, self.plan, lr, decay_norm_and_bias=decay_all)
        optimizer = OPTIMIZERS.get(self.optimizer_cfg["name"])(groups, lr, self.optimizer_cfg)
        curve = SCHEDULERS.get(self.scheduler_cfg["name"])(self.scheduler_cfg, self._run_length)
        for group in optimizer.param_groups:
            group["initial_lr"] = lr  # the multipliers live in the lambdas, so every group starts from lr
        rates = [self._group_rate(group["name"], curve) for group in optimizer.param_groups]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rates)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _run_length(self) -> tuple[int, int]:
        """(total optimizer steps, epochs) of this fit, for curves that need them (asks the Trainer)."""
        return max(1, int(self.trainer.estimated_stepping_batches)), max(1, int(self.trainer.max_epochs or 1))

    def _group_rate(self, name: str, curve: Callable[[int], float]) -> Callable[[int], float]:
        """The factor on lr for one block's group: its multiplier in the phase in force x the curve."""

        def rate(step: int) -> float:
            return self.plan.lr_mult(name) * curve(step)

        return rate

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        phase = {
            "index": self.phase_index,
            "count": len(self.schedule.phases),
            "label": self.plan.label,
            "trainable": self.plan.trainable_blocks,
            "adapted": self.plan.adapted_blocks,
            "epoch": self.current_epoch,
            "global_step": self.global_step,
        }
        meta = self.meta
        if self.adapter_record is not None:
            checkpoint["state_dict"] = self.adapter_record.keep(checkpoint["state_dict"], MODEL_PREFIX)
            meta = {**meta, checkpoint_schema.ADAPTERS: self.adapter_record.to_dict()}
        checkpoint_schema.attach(checkpoint, meta, schedule_summary(self.schedule), phase)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming an adapter run: its checkpoint holds the adapters and the head; the frozen base comes
        from the network built for this run, which must be the base the adapters were trained on."""
        stored = (checkpoint.get(checkpoint_schema.KEY) or {}).get(checkpoint_schema.ADAPTERS)
        if not stored or self.adapter_record is None:
            return
        check_base(
            stored["base_fingerprint"], self.adapter_record.fingerprint, "the checkpoint", "this config"
        )
        checkpoint["state_dict"] = {**self.state_dict(), **checkpoint["state_dict"]}


def schedule_summary(schedule: Schedule) -> list[dict[str, Any]]:
    """The phases as plain data (checkpoints load with weights_only, so no dataclasses)."""
    return [
        {
            "label": phase.label,
            "start_epoch": phase.start_epoch,
            "epochs": phase.epochs,
            "trainable": phase.trainable_blocks,
            "adapted": phase.adapted_blocks,
            "lr_mult": {b.name: b.lr_mult for b in phase.blocks},
        }
        for phase in schedule.phases
    ]


def _check_names(optimizer: Mapping[str, Any], scheduler: Mapping[str, Any]) -> None:
    """The names, by their registries (an unknown one lists the valid ones); their values were checked
    by the schema (``ftcli.config.schema``)."""
    OPTIMIZERS.get(optimizer.get("name"))
    SCHEDULERS.get(scheduler.get("name"))
