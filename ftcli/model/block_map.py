"""BlockMap: a classifier cut into its natural stages, the shape every backbone family maps onto.

Fine-tuning strategies ("freeze all but the last 2 blocks", "discriminative learning rates per block",
"drop the last stage") must mean the same thing for a ResNet, a ViT or a VGG. Leaf modules cannot
give that: a ResNet-50 has ~160 of them, a ViT-B ~150, grouped in unrelated ways. So every supported
family is mapped onto one shape, the model's *natural stages*::

    stem, stage1, ..., stageK, head        (head = pool + the original classifier)

A family's mapper (``ftcli.model.families``) builds it from the model's own submodules (no copies).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

DEFAULT_INPUT_SIZE = 64


@dataclass
class BlockMap:
    """A classifier cut into named blocks (see the module docstring)."""

    family: str
    blocks: list[tuple[str, nn.Module]]
    pool: nn.Module
    global_pool: nn.Module
    classifier: nn.Module
    input_size: int = DEFAULT_INPUT_SIZE
    # True when the network only accepts input_size x input_size images (ViT's position embedding)
    fixed_input: bool = False
    # the builder keyword that sets that input size (``image_size`` for torchvision, ``img_size`` for timm)
    size_kwarg: str = "image_size"

    @property
    def block_names(self) -> list[str]:
        """The backbone block names in forward order: ``stem``, ``stage1``, ..."""
        return [name for name, _ in self.blocks]
