"""Training batches of texts of similar length, in an order drawn from (seed, epoch) alone.

A batch is padded to its longest text, so batches of mixed lengths are mostly padding. The training
order is shuffled, cut into pools of ``batch_size * POOL_BATCHES`` texts, each pool sorted by length
and cut into batches, and the batches shuffled: batches hold texts of similar length while their
order, and which texts meet, still change every epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence, Sized

import torch

from ftcli.data.datamodule import EpochShuffle

POOL_BATCHES = 50


class LengthBuckets(EpochShuffle):
    """An :class:`EpochShuffle` whose order puts texts of similar length next to each other.

    It yields indices one at a time, and the DataLoader groups each ``batch_size`` of them into a batch,
    so DDP can still swap in a DistributedSampler, and a resumed run draws what the uninterrupted one
    drew. Only the last batch may be short, and it stays last so every other batch stays one bucket.
    """

    def __init__(
        self,
        data_source: Sized,
        seed: int,
        epoch: Callable[[], int],
        lengths: Sequence[int],
        batch_size: int,
    ) -> None:
        super().__init__(data_source, seed, epoch)
        self.lengths = list(lengths)
        self.batch_size = int(batch_size)

    def __iter__(self) -> Iterator[int]:
        generator = self.epoch_generator()
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        pool = self.batch_size * POOL_BATCHES
        batches: list[list[int]] = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=self.lengths.__getitem__)
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        short = [batches.pop()] if batches and len(batches[-1]) < self.batch_size else []
        for b in torch.randperm(len(batches), generator=generator).tolist():
            yield from batches[b]
        for batch in short:
            yield from batch
