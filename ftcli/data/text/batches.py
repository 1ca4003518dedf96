"""Texts as the network takes them: token ids, truncated and counted, then padded batches with a mask.

A batch is ``(x, y)``: ``x`` is a ``torch.long`` tensor ``(N, 2, L)``, ``x[:, 0]`` the token ids and
``x[:, 1]`` the attention mask (1 = token, 0 = padding), right-padded with the tokenizer's pad id to
``L``, the longest text of that batch (never to ``max_length``: short batches stay short); ``y`` the
class indices. :func:`collate` is the one place that builds it (training, eval, the feature cache and
predict all go through it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ftcli.data.text.tokenizer import pad_id
from ftcli.errors import ConfigError, DataError


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[list[list[int]], int]:
    """Every text's token ids with the tokenizer's own special tokens (BERT: [CLS] ... [SEP]), cut to
    ``max_length``; and how many texts were cut, so that truncation is reported, never silent.

    A text that comes out without a single token is a DataError (its batch would have nothing to pool).
    """
    special = int(tokenizer.num_special_tokens_to_add(pair=False))
    if max_length <= special:
        raise ConfigError(
            f"data.max_length={max_length} leaves no room for a token: the tokenizer adds {special} "
            "special token(s) to every text.",
            f"Use data.max_length={max(128, special + 1)} or more.",
        )
    texts = list(texts)
    # verbose=False: no warning for texts longer than the model's limit, they are cut just below
    ids: list[list[int]] = tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]
    long = [i for i, row in enumerate(ids) if len(row) > max_length]
    if long:
        cut = tokenizer(
            [texts[i] for i in long], add_special_tokens=True, truncation=True, max_length=max_length
        )["input_ids"]
        for i, row in zip(long, cut, strict=True):
            ids[i] = list(row)
    empty = [i for i, row in enumerate(ids) if not row]
    if empty:
        raise DataError(
            f"{len(empty)} text(s) have no tokens at all, first: text {empty[0] + 1} ({texts[empty[0]]!r}).",
            "Remove the empty texts or give them words.",
        )
    return [list(row) for row in ids], len(long)


def pad_batch(ids: Sequence[Sequence[int]], pad: int) -> torch.Tensor:
    """Token id lists as ``(N, 2, L)`` long: ids right-padded with ``pad`` to the longest, and the mask."""
    length = max((len(row) for row in ids), default=0)
    x = torch.zeros((len(ids), 2, length), dtype=torch.long)
    x[:, 0] = pad
    for i, row in enumerate(ids):
        x[i, 0, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        x[i, 1, : len(row)] = 1
    return x


def collate(samples: Sequence[tuple[Sequence[int], int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(token ids, label)`` samples as one batch ``(x, y)`` (see the module docstring)."""
    x = pad_batch([ids for ids, _ in samples], pad)
    return x, torch.as_tensor([int(label) for _, label in samples], dtype=torch.long)


def batch_of_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> torch.Tensor:
    """Unlabelled texts (predict) as the network's input ``x``: encoded like training texts, padded."""
    ids, _ = encode_texts(tokenizer, texts, max_length)
    return pad_batch(ids, pad_id(tokenizer))
