"""The base of every text source: raw texts and labels in, token ids out, tokenized once at setup.

A source (``ftcli.data.sources``) reads its texts and labels and splits them in ``__init__`` (so the
class names are known before anything is tokenized) and hands them to :meth:`TextDataModule._use_splits`.
:meth:`~TextDataModule._prepare_datasets` then tokenizes every split once with the model's tokenizer
(``TextSpec``) into :class:`~ftcli.data.text.tokenized.TokenizedTexts`; training batches are grouped by
length (:class:`~ftcli.data.text.buckets.LengthBuckets`), val and test stay in order.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ftcli.data import leakage
from ftcli.data.checks import per_class_option
from ftcli.data.datamodule import ClassificationDataModule, EpochShuffle
from ftcli.data.splits import SPLITS, first_per_class
from ftcli.data.text.batches import encode_texts
from ftcli.data.text.buckets import LengthBuckets
from ftcli.data.text.spec import TextSpec
from ftcli.data.text.tokenized import TokenizedTexts
from ftcli.data.text.tokenizer import load_tokenizer, pad_id
from ftcli.errors import ConfigError


class RawTexts(Dataset):
    """One split's texts and labels before tokenization; items are ``(text, label)``."""

    def __init__(self, texts: Sequence[str], labels: Sequence[int]) -> None:
        self.texts = list(texts)
        self.labels = [int(label) for label in labels]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[str, int]:
        return self.texts[index], self.labels[index]


class TextDataModule(ClassificationDataModule):
    """Labelled texts: ``data.max_length`` (through the ``TextSpec``) and ``data.per_class``; subclasses
    read the texts and call :meth:`_use_splits`."""

    sample_noun = "texts"
    in_memory = True  # token ids in lists: no decoding per item, so no workers

    def __init__(self, cfg: Mapping[str, Any], spec: TextSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        if not isinstance(spec, TextSpec):
            raise ConfigError(
                f"data.name={self.name} holds texts, but the model takes {type(spec).__name__} input "
                "(images), not tokens.",
                "Pick a text model (`ftcli ls` lists the models), or an image data source.",
            )
        self.spec: TextSpec = spec
        self.max_length = spec.max_length
        self.per_class = per_class_option(cfg.get("per_class"), "data.per_class", None, "text")
        self.splits: dict[str, RawTexts] = {}

    def _use_splits(self, splits: Mapping[str, tuple[Sequence[str], Sequence[int]]]) -> None:
        """Keep a source's ``(texts, labels)`` per split; ``data.per_class`` thins the training split only
        (seeded), so val and test, and the scores on them, do not depend on it."""
        self.splits = {split: RawTexts(*splits[split]) for split in SPLITS if split in splits}
        train = self.splits["train"]
        if self.per_class is not None:
            labels = np.asarray(train.labels, dtype=np.int64)
            keep = first_per_class(list(range(len(train))), labels, self.per_class, self.seed)
            self.splits["train"] = RawTexts([train.texts[i] for i in keep], [train.labels[i] for i in keep])
        self.has_test = len(self.splits.get("test", [])) > 0

    def _planned_sizes(self) -> dict[str, int]:
        return {split: len(raw) for split, raw in self.splits.items()}

    def _contents(self) -> tuple[str, dict[str, leakage.SplitContent]]:
        """Each text with its Unicode form, case and spacing normalised (``leakage.normalised``)."""
        return "normalised text", {
            split: leakage.SplitContent(
                leakage.text_digests(raw.texts),
                lambda i, raw=raw: repr(textwrap.shorten(raw.texts[i], 60, placeholder="…")),
            )
            for split, raw in self.splits.items()
        }

    def _drop_leaked(self, leaked: Mapping[str, list[int]]) -> None:
        for split, indices in leaked.items():
            raw = self.splits[split]
            self.splits[split] = RawTexts(leakage.kept(raw.texts, indices), leakage.kept(raw.labels, indices))

    def _make_datasets(self) -> dict[str, Dataset]:
        return dict(self.splits)

    def _prepare_datasets(self, datasets: dict[str, Dataset]) -> None:
        """Tokenize every split once (the model's tokenizer, ``max_length``), counting the texts cut."""
        tokenizer = load_tokenizer(self.spec.tokenizer, trust_remote_code=self.spec.trust_remote_code)
        pad = pad_id(tokenizer)
        for split, raw in list(datasets.items()):
            assert isinstance(raw, RawTexts)
            ids, truncated = encode_texts(tokenizer, raw.texts, self.max_length)
            datasets[split] = TokenizedTexts(
                ids, raw.labels, pad, self.spec.tokenizer, self.max_length, truncated
            )

    def _shuffle_sampler(self, dataset: Dataset) -> EpochShuffle:
        """Training batches of texts of similar length (less padding), drawn by (seed, epoch)."""
        assert isinstance(dataset, TokenizedTexts)
        return LengthBuckets(dataset, self.seed, self._epoch, dataset.lengths, self.batch_size)

    @property
    def truncated(self) -> int | None:
        """Texts cut to ``max_length`` over every split (None until :meth:`setup` tokenized them)."""
        if not self._datasets:
            return None
        return sum(getattr(ds, "truncated", 0) for ds in self._datasets.values())

    def describe(self) -> dict[str, Any]:
        """As for every module, plus ``max_length`` and ``truncated`` (texts cut to it; None before setup)."""
        return {**super().describe(), "max_length": self.max_length, "truncated": self.truncated}
