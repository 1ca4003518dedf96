"""The base of every image source: transforms, the uint8 store, and augmentation on the device.

:class:`ImageDataModule` is the modality-neutral ``ClassificationDataModule`` (``ftcli.data.datamodule``)
plus what images need. A split whose transform is deterministic is preprocessed once into a uint8
store (``ftcli.data.images.store``); its training loaders hand out uint8 batches that
:meth:`ImageDataModule.on_after_batch_transfer` normalises on the device. With
``data.augment_on_device`` an augmented training split is stored too, and its random crop, flip and
jitter are applied there per batch (``ftcli.data.images.device_augment``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ftcli.data.checks import auto_flag, choice_option, int_option
from ftcli.data.datamodule import ClassificationDataModule, EpochShuffle
from ftcli.data.images import store as image_store
from ftcli.data.images.device_augment import AugmentBatch, DeviceAugment, unsupported
from ftcli.data.images.transforms import (
    TransformSpec,
    eval_transform,
    is_deterministic,
    train_transform,
    validate_augment,
)
from ftcli.data.splits import SPLITS
from ftcli.device import pin_memory
from ftcli.errors import ConfigError


class ImageDataModule(ClassificationDataModule):
    """Labelled images: the shared ``data.*`` image keys, the uint8 store, augmentation on the device;
    subclasses provide the splits."""

    sample_noun = "images"

    def __init__(self, cfg: Mapping[str, Any], spec: TransformSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        self.spec: TransformSpec = spec
        self.augment = validate_augment(cfg.get("augment"))
        self.on_bad_image = choice_option(cfg, "on_bad_image", ("error", "skip"), "error")
        self.cache_images = auto_flag(cfg, "cache_images")
        self.image_cache_bytes = int_option(cfg, "image_cache_mb", 1024, minimum=0) * 2**20
        self.augment_on_device = auto_flag(cfg, "augment_on_device")
        per_image = unsupported(self.augment)
        if self.augment_on_device is True and per_image:
            raise ConfigError(
                f"data.augment_on_device=true, but {per_image}: it has no batched form on the device.",
                "Use data.augment_on_device=auto (the device takes crop, flip and jitter when it can), "
                "or turn data.augment.rotate / data.augment.policy off.",
            )
        self.on_gpu = False  # set by whoever knows the trainer (ftcli.pipeline.plan_run): auto means a GPU
        self.store_reports: list[image_store.StoreReport] = []

    @property
    def bad_images(self) -> list[str]:
        """The unreadable image files left out (``data.on_bad_image=skip``): :attr:`bad_samples`."""
        return self.bad_samples

    @bad_images.setter
    def bad_images(self, value: list[str]) -> None:
        self.bad_samples = value

    def _prepare_datasets(self, datasets: dict[str, Dataset]) -> None:
        """The deterministic splits (and a training split augmented on the device) become uint8 stores."""
        self._store(datasets)

    def stores_split(self, split: str) -> bool:
        """Whether ``split`` is preprocessed once: ``data.cache_images`` on, and its transform fixed or
        (training) its augmentation done on the device."""
        if self.cache_images is False:
            return False
        return split != "train" or is_deterministic(self.augment) or self.device_augment() is not None

    def device_augment(self) -> DeviceAugment | None:
        """The training augmentation applied per batch on the device, or None (fixed, or per image)."""
        return self._augment_route()[0]

    def _augment_route(self) -> tuple[DeviceAugment | None, str]:
        """Where the training augmentation runs: (the device's augmentation, "") or (None, why not)."""
        if is_deterministic(self.augment):
            return None, "no augmentation"
        if self.augment_on_device is False:
            return None, "data.augment_on_device=false"
        per_image = unsupported(self.augment)
        if per_image:
            return None, per_image
        if self.augment_on_device == "auto" and not self.on_gpu:
            return None, "data.augment_on_device=auto and the training device is the CPU"
        return DeviceAugment.from_config(self.augment, self.spec.crop), ""

    def _store(self, datasets: dict[str, Dataset]) -> None:
        """Replace each deterministic split by its uint8 store; the memory budget is shared by the splits."""
        budget = self.image_cache_bytes
        directory = image_store.store_dir(self.cfg)
        for split in [s for s in SPLITS if s in datasets and self.stores_split(s)]:
            source = datasets[split]
            if not hasattr(source, "transform") or not hasattr(source, "targets"):
                continue
            threads = min(8, os.cpu_count() or 1)
            augment = self.device_augment() if split == "train" else None
            stored, report = image_store.build(split, source, self.spec, budget, directory, threads, augment)
            self.store_reports.append(report)
            if stored is not None:
                datasets[split] = stored
                if report.where == "memory":
                    budget -= report.nbytes

    @property
    def workers_in_use(self) -> int:
        """DataLoader workers the training loader really starts: none when its split is stored."""
        return 0 if isinstance(self.dataset("train"), image_store.StoredImages) else self.num_workers

    def store_line(self) -> str | None:
        """One line on what was preprocessed once (and why an augmented training split was not)."""
        parts = [r.text() for r in self.store_reports]
        if self.cache_images is not False and not self.stores_split("train"):
            parts.append(f"train: augmented per image ({self._augment_route()[1]})")
        return "images preprocessed once: " + " · ".join(parts) if parts else None

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """A stored split's uint8 batch, now on the training device: augmented (training split with
        ``data.augment_on_device``), to float and normalised there."""
        if isinstance(batch, AugmentBatch):
            augment = self.dataset("train").augment  # type: ignore[attr-defined]
            return image_store.normalise_floats(augment(batch.images, batch.sizes), self.spec), batch.labels
        if isinstance(batch, (tuple, list)) and len(batch) == 2 and batch[0].dtype == torch.uint8:
            return self.inputs(batch[0]), batch[1]
        return batch

    def inputs(self, batch_inputs: torch.Tensor) -> torch.Tensor:
        """Network inputs from a uint8 batch (on any device); float batches pass unchanged."""
        if batch_inputs.dtype == torch.uint8:
            return image_store.to_input(batch_inputs, self.spec)
        return batch_inputs

    def loader(self, split: str, shuffle: bool = False, finish_on_device: bool = False) -> DataLoader:
        """A DataLoader over one split; shuffled batches are drawn by (seed, epoch), see EpochShuffle.

        A stored split is served a batch at a time in this process (one gather, no workers); with
        ``finish_on_device`` its batches stay uint8 for :meth:`on_after_batch_transfer` to normalise on
        the device.
        """
        dataset = self.dataset(split)
        if isinstance(dataset, image_store.StoredImages):
            view = image_store.StoredBatches(dataset, normalise=not finish_on_device)
            return DataLoader(
                view,
                batch_size=self.batch_size,
                sampler=EpochShuffle(view, self.seed, self._epoch) if shuffle else None,
                collate_fn=image_store.batch_as_is,
                pin_memory=pin_memory(),
            )
        return super().loader(split, shuffle, finish_on_device)

    def _transforms(self) -> dict[str, Callable]:
        evaluate = eval_transform(self.spec)
        return {"train": train_transform(self.spec, self.augment), "val": evaluate, "test": evaluate}
