"""The modality-neutral base every data source builds on: classes, splits, seeded loaders, a description.

Every module knows its class names right after construction (scanning folders or reading a CSV,
never decoding a sample), so the caller can size the classifier head before any data is loaded.
Splits are stratified per class and driven only by the ``seed`` argument, so two runs with the
same seed see the same train/val/test samples.

What a sample is belongs to a modality: :class:`ClassificationDataModule` never looks inside one.
Images (``ftcli.data.images.datamodule.ImageDataModule``) add their transforms, the uint8 store and
the augmentation on the device through the hooks documented here (:meth:`~ClassificationDataModule.
_prepare_datasets`, :meth:`~ClassificationDataModule.loader`, :meth:`~ClassificationDataModule.inputs`,
:meth:`~ClassificationDataModule.on_after_batch_transfer`); the defaults pass everything through.
This module imports no torchvision and nothing of a modality.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sized
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.fabric.utilities.seed import seed_everything
from torch.utils.data import DataLoader, Dataset, RandomSampler

from ftcli import notices
from ftcli.data import leakage
from ftcli.data.checks import choice_option, int_option, num_workers_option
from ftcli.data.splits import SPLITS
from ftcli.device import pin_memory
from ftcli.errors import DataError


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
        generator = self.epoch_generator()
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()

    def epoch_generator(self) -> torch.Generator:
        """Seed every RNG for the epoch now starting and return the generator its order is drawn from
        (a subclass draws its own order from it, so that order too depends on (seed, epoch) alone)."""
        epoch_seed = self.seed + 1000 * self.epoch()
        seed_everything(epoch_seed, workers=True, verbose=False)
        return torch.Generator().manual_seed(epoch_seed)


class ClassificationDataModule(L.LightningDataModule):
    """Labelled samples in train/val(/test) splits for a classifier: the keys every source shares
    (``data.batch_size``, ``data.num_workers``), seeded loaders and the description; subclasses
    provide the splits (:meth:`_make_datasets`, :meth:`_planned_sizes`).

    A source is built as ``cls(cfg, spec, seed)`` (``ftcli.data.sources.build_datamodule``): ``spec`` is
    its modality's preprocessing as plain data (``TransformSpec`` for images), kept as :attr:`spec`
    and never read here.
    """

    name: ClassVar[str] = ""
    # the samples live in memory (no decoding per item): data.num_workers=auto then means no workers
    in_memory: ClassVar[bool] = False
    # what a sample is called in the description (``bad_<noun>``) and in messages
    sample_noun: ClassVar[str] = "samples"

    def __init__(self, cfg: Mapping[str, Any], spec: Any, seed: int) -> None:
        super().__init__()
        self.cfg = dict(cfg)
        self.spec = spec
        self.seed = int(seed)
        self.batch_size = int_option(cfg, "batch_size", 32, minimum=1)
        self.num_workers = num_workers_option(cfg.get("num_workers", "auto"), self.in_memory)
        self.class_names: list[str] = []
        self.has_test = False
        # samples left out as unreadable (a source's ``on_bad_*`` key says whether that is allowed)
        self.bad_samples: list[str] = []
        # copies of a sample in another split: what to do (data.on_leak), what check_leaks found
        self.on_leak = choice_option(cfg, "on_leak", leakage.ON_LEAK, "warn")
        self.leaks: leakage.LeakReport | None = None
        self._datasets: dict[str, Dataset] = {}

    @property
    def num_classes(self) -> int:
        """How many classes the classifier head must predict."""
        return len(self.class_names)

    @property
    def root(self) -> Path | None:
        """Where the data lives on disk (None for in-memory datasets)."""
        return None

    def _make_datasets(self) -> dict[str, Dataset]:
        """Every split's dataset, by split name (``train``, ``val``, and ``test`` when :attr:`has_test`)."""
        raise NotImplementedError

    def _planned_sizes(self) -> dict[str, int]:
        """Samples per split before :meth:`setup` (from the listing, nothing decoded)."""
        raise NotImplementedError

    def _contents(self) -> tuple[str, dict[str, leakage.SplitContent]] | None:
        """Every split's samples as content digests and what was hashed (``file bytes``, ``pixels``, ...),
        from the source's listing, before any dataset is made; None when the source cannot say."""
        return None

    def _drop_leaked(self, leaked: Mapping[str, list[int]]) -> None:
        """Remove these samples (indices into each split's listing, val and test only) before the
        datasets are made (``data.on_leak=drop``)."""
        raise NotImplementedError

    def check_leaks(self) -> leakage.LeakReport | None:
        """Find copies across and within the splits once (``ftcli.data.leakage``), then act on
        ``data.on_leak``: a DataError (``error``), the copies left out of val/test (``drop``), a warning
        through the logger (``warn``, and ``drop`` says what it dropped). None when not checkable."""
        if self.leaks is not None or self._datasets:
            return self.leaks
        started = time.perf_counter()
        found = self._contents()
        if found is None:
            return None
        basis, contents = found
        report = leakage.find(contents, basis, self.sample_noun, time.perf_counter() - started)
        if report.leaked_count and self.on_leak == "error":
            raise report.error()
        if report.leaked_count and self.on_leak == "drop":
            for split, indices in report.leaked.items():
                if len(indices) == len(contents[split].digests):
                    raise DataError(
                        f"Every {split} {self.sample_noun[:-1]} is a copy of one in an earlier split "
                        f"({basis}): data.on_leak=drop would leave {split} empty.",
                        f"Give {split} {self.sample_noun} of its own.",
                    )
            self._drop_leaked(report.leaked)
            report.dropped = {split: len(indices) for split, indices in report.leaked.items()}
        self.leaks = report
        if report.leaked_count or report.repeated_count:
            notices.warn(report.line())
        return report

    def setup(self, stage: str | None = None) -> None:
        """Check for leaked samples, build the datasets once and let the modality prepare them (later
        calls are no-ops)."""
        if not self._datasets:
            self.check_leaks()
            datasets = self._make_datasets()
            self._prepare_datasets(datasets)
            self._datasets = datasets

    def _prepare_datasets(self, datasets: dict[str, Dataset]) -> None:
        """Hook, run once on the splits just made: a modality may replace a split in ``datasets`` (images:
        the deterministic ones by their uint8 store). The base keeps them as they are."""

    @property
    def workers_in_use(self) -> int:
        """DataLoader workers the training loader really starts (a modality may serve without them)."""
        return self.num_workers

    def inputs(self, batch_inputs: Any) -> Any:
        """The network's input from the inputs of one of this module's batches, on any device.

        Where a modality leaves work for the training device (images: a stored split's uint8 batch is
        normalised there), this does it; the base leaves none, so the inputs pass unchanged.
        """
        return batch_inputs

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """A batch, now on the training device, as the network takes it: ``(inputs(x), y)`` for an
        ``(inputs, labels)`` pair (see :meth:`inputs`), anything else unchanged."""
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            return self.inputs(batch[0]), batch[1]
        return batch

    def dataset(self, split: str) -> Dataset:
        """The dataset of one split, built at the first use (see :meth:`setup`)."""
        if split == "test" and not self.has_test:
            raise DataError(
                f"data.name={self.name} has no test split.",
                "Add a test/ folder (imagefolder), test rows (csv) or set data.test_fraction>0.",
            )
        self.setup()
        return self._datasets[split]

    def loader(self, split: str, shuffle: bool = False, finish_on_device: bool = False) -> DataLoader:
        """A DataLoader over one split; shuffled batches are drawn by (seed, epoch), see EpochShuffle.

        ``finish_on_device``: the batches may leave work to :meth:`on_after_batch_transfer` on the
        training device (the trainer's loaders); without it every batch is the network's input as it
        is (what eval and the feature cache read). The base's batches are always finished.
        """
        dataset = self.dataset(split)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=self._shuffle_sampler(dataset) if shuffle else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=pin_memory(),
            drop_last=False,
            # a modality whose samples need their own batching (texts: padding) gives its dataset a
            # ``collate``; None is PyTorch's default collation
            collate_fn=getattr(dataset, "collate", None),
        )

    def _shuffle_sampler(self, dataset: Dataset) -> EpochShuffle:
        """The training order: a shuffle by (seed, epoch); a modality may group it (texts: by length)."""
        return EpochShuffle(dataset, self.seed, self._epoch)  # type: ignore[arg-type]

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (finished on the device, see :meth:`on_after_batch_transfer`)."""
        return self.loader("train", shuffle=True, finish_on_device=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in a fixed order."""
        return self.loader("val", finish_on_device=True)

    def test_dataloader(self) -> DataLoader:
        """Test batches in a fixed order (DataError when there is no test split)."""
        return self.loader("test", finish_on_device=True)

    def split_sizes(self) -> dict[str, int]:
        """Samples per split (after dropping bad samples once :meth:`setup` ran)."""
        if self._datasets:
            sizes = {split: len(ds) for split, ds in self._datasets.items()}  # type: ignore[arg-type]
        else:
            sizes = self._planned_sizes()
        return {split: sizes.get(split, 0) for split in SPLITS}

    def describe(self) -> dict[str, Any]:
        """A summary for printing: name, root, samples per split, classes, skipped samples
        (``bad_images`` for images: ``bad_`` + :attr:`sample_noun`)."""
        return {
            "name": self.name,
            "root": str(self.root) if self.root is not None else None,
            **self.split_sizes(),
            "num_classes": self.num_classes,
            "classes": list(self.class_names),
            f"bad_{self.sample_noun}": len(self.bad_samples),
        }
