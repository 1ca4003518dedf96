"""The base every data source builds on: common config keys, seeded loaders, and a description.

Every module knows its class names right after construction (scanning folders or reading a CSV,
never decoding images), so the caller can size the classifier head before any data is loaded.
Splits are stratified per class and driven only by the ``seed`` argument, so two runs with the
same seed see the same train/val/test images. A split whose transform is deterministic is
preprocessed once into a uint8 store (``ftcli.data.images.store``); its training loaders hand out
uint8 batches that :meth:`ImageDataModule.on_after_batch_transfer` normalises on the device. With
``data.augment_on_device`` an augmented training split is stored too, and its random crop, flip and
jitter are applied there per batch (``ftcli.data.images.device_augment``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sized
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.fabric.utilities.seed import seed_everything
from torch.utils.data import DataLoader, Dataset, RandomSampler

from ftcli.data.checks import auto_flag, choice_option, int_option, num_workers_option
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
from ftcli.errors import ConfigError, DataError


class EpochShuffle(RandomSampler):
    """Shuffles by (seed, epoch) and, when an epoch's iteration starts, seeds every RNG for that epoch.

    Lightning builds the first iterator of a fit (and of a resumed fit) before any epoch hook runs,
    so the epoch is read from the trainer here, where the iteration begins. Shuffling, augmentation
    (in this process) and dropout then depend on the epoch alone: a run resumed from a checkpoint
    draws what the uninterrupted run drew. A subclass of RandomSampler, so DDP still swaps in a
    DistributedSampler.
    """

    def __init__(self, data_source: Sized, seed: int, epoch: Callable[[], int]) -> None:
        super().__init__(data_source)
        self.seed = seed
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        epoch_seed = self.seed + 1000 * self.epoch()
        seed_everything(epoch_seed, workers=True, verbose=False)
        generator = torch.Generator().manual_seed(epoch_seed)
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


class ImageDataModule(L.LightningDataModule):
    """Common config keys, loaders and description; subclasses provide the splits."""

    name: ClassVar[str] = ""
    in_memory: ClassVar[bool] = False

    def __init__(self, cfg: Mapping[str, Any], spec: TransformSpec, seed: int) -> None:
        super().__init__()
        self.cfg = dict(cfg)
        self.spec = spec
        self.seed = int(seed)
        self.batch_size = int_option(cfg, "batch_size", 32, minimum=1)
        self.num_workers = num_workers_option(cfg.get("num_workers", "auto"), self.in_memory)
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
        self.on_gpu = False  # set by whoever knows the trainer (training.build.prepare): auto means a GPU
        self.class_names: list[str] = []
        self.has_test = False
        self.bad_images: list[str] = []
        self.store_reports: list[image_store.StoreReport] = []
        self._datasets: dict[str, Dataset] = {}

    @property
    def num_classes(self) -> int:
        """How many classes the classifier head must predict."""
        return len(self.class_names)

    @property
    def root(self) -> Path | None:
        """Where the images live on disk (None for in-memory datasets)."""
        return None

    def _make_datasets(self) -> dict[str, Dataset]:
        raise NotImplementedError

    def _planned_sizes(self) -> dict[str, int]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets once, storing the deterministic splits (later calls are no-ops)."""
        if not self._datasets:
            datasets = self._make_datasets()
            self._store(datasets)
            self._datasets = datasets

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

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """Network inputs from a uint8 batch (on any device); float batches pass unchanged."""
        return image_store.to_input(images, self.spec) if images.dtype == torch.uint8 else images

    def dataset(self, split: str) -> Dataset:
        """The dataset of one split (``train`` uses the augmenting transform)."""
        if split == "test" and not self.has_test:
            raise DataError(
                f"data.name={self.name} has no test split.",
                "Add a test/ folder (imagefolder), test rows (csv) or set data.test_fraction>0.",
            )
        self.setup()
        return self._datasets[split]

    def loader(self, split: str, shuffle: bool = False, uint8: bool = False) -> DataLoader:
        """A DataLoader over one split; shuffled batches are drawn by (seed, epoch), see EpochShuffle.

        A stored split is served a batch at a time in this process (one gather, no workers); with
        ``uint8`` its batches stay uint8 for :meth:`on_after_batch_transfer` to normalise on the device.
        """
        dataset = self.dataset(split)
        if isinstance(dataset, image_store.StoredImages):
            view = image_store.StoredBatches(dataset, normalise=not uint8)
            return DataLoader(
                view,
                batch_size=self.batch_size,
                sampler=EpochShuffle(view, self.seed, self._epoch) if shuffle else None,
                collate_fn=image_store.batch_as_is,
                pin_memory=pin_memory(),
            )
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochShuffle(dataset, self.seed, self._epoch) if shuffle else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=pin_memory(),
            drop_last=False,
        )

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def train_dataloader(self) -> DataLoader:
        """Shuffled, augmented training batches (uint8 when stored: normalised on the device)."""
        return self.loader("train", shuffle=True, uint8=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in a fixed order."""
        return self.loader("val", uint8=True)

    def test_dataloader(self) -> DataLoader:
        """Test batches in a fixed order (DataError when there is no test split)."""
        return self.loader("test", uint8=True)

    def split_sizes(self) -> dict[str, int]:
        """Images per split (after dropping bad images once :meth:`setup` ran)."""
        if self._datasets:
            sizes = {split: len(ds) for split, ds in self._datasets.items()}  # type: ignore[arg-type]
        else:
            sizes = self._planned_sizes()
        return {split: sizes.get(split, 0) for split in SPLITS}

    def describe(self) -> dict[str, Any]:
        """A summary for printing: name, root, images per split, classes, skipped files."""
        return {
            "name": self.name,
            "root": str(self.root) if self.root is not None else None,
            **self.split_sizes(),
            "num_classes": self.num_classes,
            "classes": list(self.class_names),
            "bad_images": len(self.bad_images),
        }

    def _transforms(self) -> dict[str, Callable]:
        evaluate = eval_transform(self.spec)
        return {"train": train_transform(self.spec, self.augment), "val": evaluate, "test": evaluate}
