"""Serving cached features in place of images: the datamodule a head-only run or phase trains on.

:func:`maybe_cached` decides (``ftcli.features.cache.cache_eligible``), computes or loads
the features of every split, and returns a datamodule whose batches are features; the
LightningModule then runs only the part of the network that trains (``feed_features``). When later
phases train pretrained blocks, :class:`PhasedDataModule` serves features during the leading
head-only phases and images from the first phase that trains more (the trainer reloads its loaders
every epoch for it), and the module runs the whole network from then on. A text model whose first
blocks stay fixed in every phase (``last_layers``, ``first_layers``) trains on their cached hidden
states instead (``ftcli.features.token_states``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from ftcli.data.datamodule import EpochShuffle
from ftcli.data.images.store import batch_as_is
from ftcli.data.text.buckets import LengthBuckets
from ftcli.device import pin_memory
from ftcli.errors import ConfigError, write_error
from ftcli.features import token_states
from ftcli.features.cache import (
    ENV_DIR,
    MAX_BYTES,
    SPLITS,
    Cut,
    cache_dir,
    cache_eligible,
    cache_key,
    cache_mode,
    cached_phases,
    compute,
    cut_of,
    evaluated,
    load,
    load_tensors,
    save_tensors,
)
from ftcli.features.token_states import TokenStates
from ftcli.finetune.freeze_plan import Schedule
from ftcli.model.blocks import BlockNet


class FeatureDataset(Dataset):
    """Cached features and labels; whole batches are sliced at once (``__getitems__``)."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features = features
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features[index], self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.features[idx], self.labels[idx]


class FeatureDataModule(L.LightningDataModule):
    """Serves cached features with the source datamodule's batch size and seeded shuffling.

    The train loader shuffles as the source does (an EpochShuffle; for texts, the same length buckets),
    so batches come in the same order as on the live path, and a resumed run matches too.
    """

    def __init__(self, source: Any, splits: Mapping[str, FeatureDataset | TokenStates]) -> None:
        super().__init__()
        self.source = source
        self.splits = dict(splits)
        self.batch_size = source.batch_size
        self.seed = source.seed
        self.class_names = source.class_names
        self.has_test = source.has_test and "test" in self.splits

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def describe(self) -> dict[str, Any]:
        return self.source.describe()

    def loader(self, split: str, shuffle: bool = False) -> DataLoader:
        dataset = self.splits[split]
        sampler: EpochShuffle | None = None
        if shuffle and isinstance(dataset, TokenStates):
            sampler = LengthBuckets(dataset, self.seed, self._epoch, dataset.lengths, self.batch_size)
        elif shuffle:
            sampler = EpochShuffle(dataset, self.seed, self._epoch)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=batch_as_is,
            pin_memory=pin_memory(),
        )

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")


class PhasedDataModule(FeatureDataModule):
    """Features while a leading head-only phase runs, images from the first phase that trains more.

    Which one a loader serves follows the phase of the trainer's current epoch during ``fit`` (so a
    resumed run picks up in the right one); ``test`` and ``validate`` outside a fit get images. The
    loaders of each kind are built once and handed out again, so image workers persist within a phase.
    """

    reloads_every_epoch = True  # train sets trainer.reload_dataloaders_every_n_epochs=1 for it

    def __init__(
        self, source: Any, splits: Mapping[str, FeatureDataset], schedule: Schedule, cached: Sequence[int]
    ) -> None:
        super().__init__(source, splits)
        self.schedule = schedule
        self.cached = frozenset(cached)
        self.has_test = source.has_test
        self._loaders: dict[tuple[str, bool], DataLoader] = {}

    @property
    def cached_until(self) -> int:
        """The first epoch that runs on images."""
        return next(p.start_epoch for p in self.schedule.phases if p.index not in self.cached)

    def features_now(self) -> bool:
        """Whether batches are cached features at this point of the run."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn != "fit":
            return False
        return self.schedule.phase_index(trainer.current_epoch) in self.cached

    def _loader(self, split: str) -> DataLoader:
        features = split != "test" and self.features_now()
        key = (split, features)
        if key not in self._loaders:
            if features:
                self._loaders[key] = self.loader(split, shuffle=split == "train")
            else:
                self.source.trainer = self.trainer  # its shuffling reads the epoch from the trainer
                self._loaders[key] = getattr(self.source, f"{split}_dataloader")()
        return self._loaders[key]

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Image batches are normalised as the image datamodule does; feature batches pass unchanged."""
        hook = getattr(self.source, "on_after_batch_transfer", None)
        return hook(batch, dataloader_idx) if hook is not None else batch


@dataclass
class CacheReport:
    """What :func:`maybe_cached` did, for one console line."""

    used: bool
    reason: str = ""
    loaded: int = 0
    computed: int = 0
    seconds: float = 0.0
    directory: str = ""
    shape: tuple[int, ...] = ()
    phases: str = ""  # for a multi-phase strategy: which phases run on the cache
    # the cached blocks when they are a text model's fixed prefix (their hidden states per token)
    prefix: str = ""
    # cache files found but unreadable (damaged, or of another version): computed again, never used
    rebuilt: list[str] = field(default_factory=list)

    def notices(self) -> list[str]:
        """One line per cache file that was there but failed its check, and was computed again."""
        return [
            f"note: the feature cache file {path} could not be read (damaged, or written by another "
            "version); it was computed again"
            for path in self.rebuilt
        ]

    def line(self) -> str:
        if not self.used:
            return f"feature cache: off ({self.reason}); training runs the whole network every step"
        how = ", ".join(
            part
            for part in (
                f"{self.loaded} split(s) loaded" if self.loaded else "",
                f"{self.computed} computed" if self.computed else "",
            )
            if part
        )
        if self.prefix:
            return (
                f"feature cache: on · fixed blocks {self.prefix} run once ({how} in {self.seconds:.1f} s) · "
                f"hidden states {'x'.join(map(str, self.shape))} per token · {self.directory}"
            )
        return (
            f"feature cache: on{self.phases} · frozen blocks run once ({how} in {self.seconds:.1f} s) · "
            f"features {'x'.join(map(str, self.shape))} per sample · {self.directory}"
        )


def maybe_cached(
    datamodule: Any,
    net: BlockNet,
    schedule: Schedule,
    data_cfg: Mapping[str, Any],
    device: torch.device,
    use_tail: Callable[[Callable[[torch.Tensor], torch.Tensor]], None],
    mixing: bool = False,
) -> tuple[Any, CacheReport | None]:
    """The datamodule to train on: cached features when eligible, else ``datamodule`` unchanged.

    ``use_tail`` receives the function that maps a batch of features to logits (the module runs it
    instead of the whole network). The report is None when caching does not apply (nothing to say).
    """
    if not cache_mode(data_cfg):
        return datamodule, None
    ok, reason = cache_eligible(schedule, data_cfg.get("augment"), mixing=mixing)
    if not ok and not reason and net.input.modality == "tokens":
        return _prefix_cached(datamodule, net, schedule, data_cfg, device, use_tail)
    if not ok:
        return datamodule, (CacheReport(False, reason) if reason else None)
    started = time.perf_counter()
    cut = cut_of(net)
    directory = cache_dir(data_cfg)
    keys = _split_keys(datamodule, net, cut, device)
    if keys is None:
        return datamodule, CacheReport(False, "this dataset cannot be fingerprinted for the cache")
    report = CacheReport(True, directory=str(directory))
    served: dict[str, FeatureDataset] = {}
    for split in keys:
        path = directory / f"{net.family}-{split}-{keys[split][:32]}.pt"
        stored = load(path)
        if stored is None:
            if path.is_file():
                report.rebuilt.append(str(path))
            dataset = datamodule.dataset(split)
            if not _fits(net, cut, dataset, device):
                too_big = f"the features would need more than {MAX_BYTES >> 30} GiB of memory"
                return datamodule, CacheReport(False, too_big)
            batch = max(64, datamodule.batch_size)
            stored = compute(net, cut, dataset, batch, datamodule.num_workers, device)
            _write(path, {"features": stored[0], "labels": stored[1]})
            report.computed += 1
        else:
            report.loaded += 1
        served[split] = FeatureDataset(*stored)
    report.seconds = time.perf_counter() - started
    report.shape = tuple(served["train"].features.shape[1:])
    use_tail(lambda x: cut.tail(net, x))
    cached = cached_phases(schedule)
    if len(cached) == len(schedule.phases):
        return FeatureDataModule(datamodule, served), report
    phased = PhasedDataModule(datamodule, served, schedule, cached)
    names = ", ".join(str(i + 1) for i in cached)
    report.phases = f" for phase {names} (epochs 0-{phased.cached_until - 1}), then the live network"
    return phased, report


def _fits(net: BlockNet, cut: Cut, dataset: Dataset, device: torch.device) -> bool:
    """Whether a split's features stay under MAX_BYTES (one sample's features, times the split's size)."""
    collate = getattr(dataset, "collate", None)  # a text split batches its token lists itself
    x = collate([dataset[0]])[0] if collate is not None else dataset[0][0].unsqueeze(0)
    with evaluated(net), torch.no_grad():
        one = cut.prefix(net, x)
    return one.numel() * 4 * len(dataset) <= MAX_BYTES  # type: ignore[arg-type]


def _split_keys(datamodule: Any, net: BlockNet, cut: Cut, device: torch.device) -> dict[str, str] | None:
    """Each split's cache key (test only when there is one); None when a split cannot be fingerprinted."""
    splits = [s for s in SPLITS if s != "test" or datamodule.has_test]
    keys = {split: cache_key(net, cut, datamodule.dataset(split), device) for split in splits}
    return None if any(key is None for key in keys.values()) else keys  # type: ignore[return-value]


def _write(path: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    """Store a cache file (atomically); a folder that cannot take it is the user's to change, said so."""
    elsewhere = f"set data.feature_cache_dir (or ${ENV_DIR}) to another folder, or data.cache_features=false"
    try:
        save_tensors(path, tensors)
    except OSError as e:
        raise write_error(path, e, elsewhere) or ConfigError(
            f"Cannot write the feature cache {path}: {e}", f"{elsewhere[0].upper()}{elsewhere[1:]}."
        ) from e


def _prefix_cached(
    datamodule: Any,
    net: BlockNet,
    schedule: Schedule,
    data_cfg: Mapping[str, Any],
    device: torch.device,
    use_tail: Callable[[Callable[[torch.Tensor], torch.Tensor]], None],
) -> tuple[Any, CacheReport | None]:
    """A text model's fixed prefix cached (``ftcli.features.token_states``), or ``datamodule`` unchanged."""
    stop = token_states.fixed_prefix(schedule)
    if stop < token_states.MIN_PREFIX:
        return datamodule, None
    started = time.perf_counter()
    cut = Cut(stop, pooled=False)
    directory = cache_dir(data_cfg)
    keys = _split_keys(datamodule, net, cut, device)
    if keys is None:
        return datamodule, CacheReport(False, "this dataset cannot be fingerprinted for the cache")
    names = net.block_names[:stop]
    report = CacheReport(True, directory=str(directory), prefix=f"{names[0]}-{names[-1]}")
    served: dict[str, TokenStates] = {}
    for split in keys:
        path = directory / f"{net.family}-{split}-states-{keys[split][:32]}.pt"
        stored = load_tensors(path)
        if stored is None or not {"states", "lengths", "labels"} <= set(stored):
            if path.is_file():
                report.rebuilt.append(str(path))
            dataset = datamodule.dataset(split)
            if token_states.state_bytes(net, stop, dataset) > MAX_BYTES:
                too_big = f"the hidden states would need more than {MAX_BYTES >> 30} GiB of memory"
                return datamodule, CacheReport(False, too_big)
            batch = max(64, datamodule.batch_size)
            flat, lengths, labels = token_states.compute(net, stop, dataset, batch, device)
            stored = {"states": flat, "lengths": lengths, "labels": labels}
            _write(path, stored)
            report.computed += 1
        else:
            report.loaded += 1
        served[split] = TokenStates(stored["states"], stored["lengths"], stored["labels"])
    report.seconds = time.perf_counter() - started
    report.shape = (served["train"].width,)
    use_tail(lambda x: token_states.tail(net, stop, x))
    return FeatureDataModule(datamodule, served), report
