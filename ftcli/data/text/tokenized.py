"""One split's texts as token ids, made once at setup: what the loaders, feature cache and advisor read."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ftcli.data.text.batches import collate


class TokenizedTexts(Dataset):
    """Token id lists and labels; items are ``(ids, label)`` and :meth:`collate` pads them into a batch.

    ``tokenizer`` (its folder) and ``max_length`` are kept for :meth:`fingerprint`; ``truncated`` is how
    many of these texts were cut to ``max_length``.
    """

    def __init__(
        self,
        ids: Sequence[Sequence[int]],
        labels: Sequence[int],
        pad: int,
        tokenizer: str,
        max_length: int,
        truncated: int = 0,
    ) -> None:
        self.ids = [list(row) for row in ids]
        self.labels = [int(label) for label in labels]
        self.pad = int(pad)
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.truncated = int(truncated)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[list[int], int]:
        return self.ids[index], self.labels[index]

    def collate(self, samples: Sequence[tuple[Sequence[int], int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """The DataLoader's ``collate_fn``: right-padded ids and mask ``(N, 2, L)``, labels ``(N,)``."""
        return collate(samples, self.pad)

    @property
    def lengths(self) -> list[int]:
        """Tokens per text (the bucketed sampler groups texts of similar length)."""
        return [len(row) for row in self.ids]

    @property
    def targets(self) -> list[int]:
        """Every text's label, in order."""
        return list(self.labels)

    def fingerprint(self) -> str:
        """Identity of the tokenizer folder, ``max_length``, the ids and labels: a feature-cache key part."""
        digest = hashlib.sha256(f"{self.tokenizer}\0{self.max_length}\0{len(self.ids)}\0".encode())
        digest.update(np.asarray(self.lengths, dtype=np.int64).tobytes())
        digest.update(np.fromiter((i for row in self.ids for i in row), dtype=np.int64).tobytes())
        digest.update(np.asarray(self.labels, dtype=np.int64).tobytes())
        return digest.hexdigest()
