"""ModelInput: what a network takes as input, declared by its family's block mapper.

Every family's :class:`~ftcli.model.block_map.BlockMap` (and the :class:`~ftcli.model.blocks.BlockNet`
built from it) carries one, so whoever feeds the network (the data pipeline, shape probes, export)
asks the model instead of assuming images: which modality, how many channels, whether one side is
fixed (a ViT's position embedding) and by which builder keyword it is changed, how long a token
sequence may be. Plain data, no torch, frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Modality = Literal["image", "tokens"]
MODALITIES: tuple[Modality, ...] = ("image", "tokens")
# the side of the dummy image a shape probe feeds a network that takes any size
DEFAULT_INPUT_SIZE = 64


@dataclass(frozen=True)
class ModelInput:
    """What one network takes as input.

    ``modality``: ``"image"`` (an ``(N, channels, H, W)`` float batch) or ``"tokens"`` (token ids).
    ``channels``: image channels (3 for RGB); None for tokens.
    ``size``: the only side (height = width) the network accepts, or None when any side works.
    ``size_kwarg``: the model builder's keyword that sets ``size`` (``image_size`` for torchvision,
    ``img_size`` for timm), for the hint when the data's size differs; None when there is none.
    ``max_tokens``: the longest token sequence (position embeddings); None for images or no limit.
    ``natural_size``: the side it was made for when any side works (a timm ViT with dynamic sizes: its
    pretraining side); None when there is none to speak of.
    """

    modality: Modality = "image"
    channels: int | None = 3
    size: int | None = None
    size_kwarg: str | None = None
    max_tokens: int | None = None
    natural_size: int | None = None

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        for name in ("channels", "size", "max_tokens", "natural_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")
        if self.modality == "image" and self.channels is None:
            raise ValueError("an image input needs its channels")
        if self.modality == "tokens" and (self.channels, self.size, self.natural_size) != (None, None, None):
            raise ValueError("a token input has no channels or image size")

    @property
    def fixed_size(self) -> bool:
        """Whether the network accepts only ``size x size`` images."""
        return self.size is not None

    @property
    def probe_size(self) -> int:
        """The side of a dummy image the network surely accepts: ``size``, else ``natural_size``, else
        :data:`DEFAULT_INPUT_SIZE` (what shape probes such as the head's feature width use)."""
        if self.size is not None:
            return self.size
        return self.natural_size if self.natural_size is not None else DEFAULT_INPUT_SIZE

    def accepts_size(self, side: int) -> bool:
        """Whether ``side x side`` images fit (any side when ``size`` is None)."""
        return self.size is None or side == self.size

    @classmethod
    def image(
        cls,
        size: int | None = None,
        *,
        channels: int = 3,
        size_kwarg: str | None = None,
        natural_size: int | None = None,
    ) -> ModelInput:
        """An image input: any side (``size=None``) or only ``size x size``."""
        return cls("image", channels, size, size_kwarg, None, natural_size)

    @classmethod
    def tokens(cls, max_tokens: int | None = None) -> ModelInput:
        """A token-id input of at most ``max_tokens`` tokens (None: no limit)."""
        return cls("tokens", None, None, None, max_tokens, None)
