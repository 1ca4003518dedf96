"""The tokenizer of a text model, loaded once per folder; ``transformers`` is imported here, on first use."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ftcli.errors import DataError


@functools.lru_cache(maxsize=8)
def load_tokenizer(folder: str) -> Any:
    """``AutoTokenizer.from_pretrained(folder)``, cached: every split, eval and predict share one.

    A missing folder, or one transformers cannot read a tokenizer from, is a DataError naming it.
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise DataError(
            f"The tokenizer folder {folder} does not exist.",
            "Give the model's folder, holding tokenizer.json or vocab.txt and tokenizer_config.json.",
        )
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise DataError(
            f"transformers cannot read a tokenizer from {folder}: {exc}",
            "Give the model's folder, holding tokenizer.json or vocab.txt and tokenizer_config.json.",
        ) from exc


def pad_id(tokenizer: Any) -> int:
    """The id that pads a batch: the tokenizer's pad token, else its end-of-text token (GPT-2 has no pad
    token), else 0. The attention mask hides it either way."""
    for value in (getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if isinstance(value, int):
            return value
    return 0
