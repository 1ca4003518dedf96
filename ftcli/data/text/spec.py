"""What a text source needs to know of the model's preprocessing: its tokenizer and the longest input.

Plain data (no torch, no transformers): it travels in checkpoints like the images' ``TransformSpec``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ftcli.data.checks import int_option

KIND = "tokens"


@dataclass(frozen=True)
class TextSpec:
    """``tokenizer``: a folder ``transformers.AutoTokenizer.from_pretrained`` loads; ``max_length``: the
    most tokens per text, its special tokens included (longer texts are truncated and counted)."""

    tokenizer: str
    max_length: int = 128
    # model.kwargs.trust_remote_code of this run; never stored in a checkpoint, never read from one
    trust_remote_code: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data (a checkpoint stores it), tagged with its kind."""
        return {"kind": KIND, "tokenizer": self.tokenizer, "max_length": self.max_length}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TextSpec:
        """The spec :meth:`to_dict` wrote (``kind`` ignored)."""
        return cls(tokenizer=str(d["tokenizer"]), max_length=int(d.get("max_length", 128)))


def text_spec(data_cfg: Mapping[str, Any], tokenizer: str, trust_remote_code: bool = False) -> TextSpec:
    """The spec of a text run: the model's tokenizer folder and ``data.max_length`` (checked: an
    integer >= 2, a ConfigError naming the key otherwise)."""
    return TextSpec(
        tokenizer=str(tokenizer),
        max_length=int_option(data_cfg, "max_length", 128, minimum=2),
        trust_remote_code=trust_remote_code,
    )
