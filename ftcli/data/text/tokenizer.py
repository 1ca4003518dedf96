"""The tokenizer of a text model, loaded once per folder; ``transformers`` is imported here, on first use."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ftcli.errors import ConfigError, DataError


@functools.lru_cache(maxsize=8)
def load_tokenizer(folder: str, trust_remote_code: bool = False) -> Any:
    """``AutoTokenizer.from_pretrained(folder)``, cached: every split, eval and predict share one.

    A missing folder, or one transformers cannot read a tokenizer from, is a DataError naming it.
    ``trust_remote_code`` is passed explicitly (true only when the run sets
    ``model.kwargs.trust_remote_code=true``; a checkpoint never does): a tokenizer that needs code shipped
    in its folder without it is a ConfigError saying so.
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise DataError(
            f"The tokenizer folder {folder} does not exist.",
            "Give the model's folder, holding tokenizer.json or vocab.txt and tokenizer_config.json.",
        )
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        if not trust_remote_code and "trust_remote_code" in str(exc):
            raise ConfigError(
                f"The tokenizer in {folder} needs trust_remote_code: it is built by Python code shipped in "
                "that folder, and ftcli runs such code only when asked.",
                "Read that code first; to run it in train and inspect, add "
                "+model.kwargs.trust_remote_code=true (eval, predict and export never run it).",
            ) from exc
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
