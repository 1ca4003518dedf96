"""BlockMap: a classifier cut into its natural stages, the shape every backbone family maps onto.

Fine-tuning strategies ("freeze all but the last 2 blocks", "discriminative learning rates per block",
"drop the last stage") must mean the same thing for a ResNet, a ViT or a VGG. Leaf modules cannot
give that: a ResNet-50 has ~160 of them, a ViT-B ~150, grouped in unrelated ways. So every supported
family is mapped onto one shape, the model's *natural stages*::

    stem, stage1, ..., stageK, head        (head = pool + the original classifier)

A family's mapper (``ftcli.model.families``) builds it from the model's own submodules (no copies),
and declares what the model takes as input (:class:`~ftcli.model.model_input.ModelInput`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from torch import nn

from ftcli.model.model_input import ModelInput

T = TypeVar("T")


@dataclass
class BlockMap:
    """A classifier cut into named blocks (see the module docstring)."""

    family: str
    blocks: list[tuple[str, nn.Module]]
    pool: nn.Module
    global_pool: nn.Module
    classifier: nn.Module
    # what the network takes: modality, channels, a fixed side (ViT's position embedding) and its keyword
    input: ModelInput
    # what ``inspect`` says about the cut beyond the block table (a text model's layer grouping)
    notes: list[str] = field(default_factory=list)

    @property
    def block_names(self) -> list[str]:
        """The backbone block names in forward order: ``stem``, ``stage1``, ..."""
        return [name for name, _ in self.blocks]

    @property
    def input_size(self) -> int:
        """A side the network surely accepts: its fixed side, else a default (``input.probe_size``)."""
        return self.input.probe_size

    @property
    def fixed_input(self) -> bool:
        """True when the network only accepts ``input_size x input_size`` images (``input.fixed_size``)."""
        return self.input.fixed_size

    @property
    def size_kwarg(self) -> str | None:
        """The builder keyword that sets the fixed side (``image_size`` for torchvision, ``img_size`` for
        timm; ``input.size_kwarg``)."""
        return self.input.size_kwarg


def stage_blocks(groups: Sequence[nn.Module]) -> list[tuple[str, nn.Module]]:
    """Name consecutive stage modules ``stage1``, ``stage2``, ..."""
    return [(f"stage{i}", group) for i, group in enumerate(groups, start=1)]


def near_equal_chunks(items: Sequence[T], n: int) -> list[list[T]]:
    """Split ``items`` into ``n`` consecutive, near-equal chunks (the first ones get the extras).

    How a transformer's uniform layers become stages; empty chunks are dropped.
    """
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        stop = start + size + (1 if i < extra else 0)
        out.append(list(items[start:stop]))
        start = stop
    return [chunk for chunk in out if chunk]
