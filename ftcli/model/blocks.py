"""BlockNet: any supported classifier as one ordered list of blocks (stem, stages..., head).

Strategies speak in blocks, so the network itself runs block by block. That makes the two
runtime parts of a freeze plan cheap to honour here: the frozen prefix runs under
``torch.no_grad`` (no graph is built for it) and BatchNorm inside frozen blocks stays in eval mode
even when Lightning calls ``train()`` at the start of every epoch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

from ftcli.model.model_input import ModelInput

HEAD = "head"


class BlockNet(nn.Module):
    """A classifier as named blocks run in order; the last block is always ``head``."""

    def __init__(
        self,
        blocks: Iterable[tuple[str, nn.Module]],
        head: nn.Module,
        family: str,
        input: ModelInput | None = None,
        notes: list[str] | None = None,
    ) -> None:
        super().__init__()
        ordered = OrderedDict(blocks)
        if HEAD in ordered:
            raise ValueError("the block name 'head' is reserved for the head")
        ordered[HEAD] = head
        self.blocks = nn.ModuleDict(ordered)
        self.family = family
        # what the network takes (its family's BlockMap.input); RGB images of any side when not given
        self.input = input if input is not None else ModelInput.image()
        # what ``inspect`` says about the cut beyond the block table (BlockMap.notes)
        self.notes = list(notes or [])
        # Set by the freeze plan (ftcli.finetune.freeze_plan): how many leading blocks run without autograd,
        # which blocks keep their BatchNorm layers in eval mode, and which run entirely in eval mode
        # (frozen under bn=frozen: dropout and stochastic depth off too, a fixed function).
        self.no_grad_prefix = 0
        self.frozen_bn_blocks: frozenset[str] = frozenset()
        self.fixed_blocks: frozenset[str] = frozenset()
        # gradient_checkpointing=true: in training, the blocks after the no-grad prefix (the head aside)
        # keep no activations; the backward pass recomputes them (non-reentrant, which frozen inputs need)
        self.gradient_checkpointing = False

    @property
    def block_names(self) -> list[str]:
        """Every block name in forward order, ``head`` last."""
        return list(self.blocks.keys())

    @property
    def backbone_names(self) -> list[str]:
        """The pretrained blocks: every block but the head."""
        return [name for name in self.blocks if name != HEAD]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(x, 0)

    def forward_from(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Run blocks ``start..head`` on ``x``, the output of the first ``start`` blocks.

        ``start=0`` is the whole network; a run fed cached features (features/cache.py) starts later.
        """
        for index, (name, block) in enumerate(self.blocks.items()):
            if index < start:
                continue
            if index < self.no_grad_prefix:
                with torch.no_grad():
                    x = block(x)
            elif self.gradient_checkpointing and self.training and name != HEAD and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x

    def forward_until(self, x: torch.Tensor, stop: int) -> torch.Tensor:
        """Run only the first ``stop`` blocks (what a feature cache stores)."""
        for block in list(self.blocks.values())[:stop]:
            x = block(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The input to the head: every block but the last."""
        for name, block in self.blocks.items():
            if name == HEAD:
                break
            x = block(x)
        return x

    def train(self, mode: bool = True) -> BlockNet:
        super().train(mode)
        if mode:
            for name in self.fixed_blocks:
                self.blocks[name].eval()
            for name in self.frozen_bn_blocks:
                for module in self.blocks[name].modules():
                    if isinstance(module, _BatchNorm):
                        module.eval()
        return self

    def remove_last_blocks(self, n: int) -> list[str]:
        """Drop the last ``n`` backbone blocks (never the stem, never the head); return their names."""
        names = self.backbone_names
        if n < 0 or n >= len(names):
            raise ValueError(f"can remove 0..{len(names) - 1} blocks, not {n}")
        removed = names[len(names) - n :] if n else []
        for name in removed:
            del self.blocks[name]
        return removed

    def replace_head(self, head: nn.Module) -> None:
        """Put a new head in place of the old one (head surgery)."""
        self.blocks[HEAD] = head


def dummy_input(model_input: ModelInput) -> torch.Tensor:
    """One input the network surely accepts, for shape probes: a black image of ``probe_size``, or a
    four-token text (``(1, 2, 4)``: ids and mask, see ``ftcli.model.text_blocks``)."""
    if model_input.modality == "tokens":
        ids = torch.tensor([[1, 2, 3, 4]])
        return torch.stack([ids, torch.ones_like(ids)], dim=1)
    side = model_input.probe_size
    return torch.zeros(1, model_input.channels or 3, side, side)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters, optionally only those with requires_grad."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def has_batchnorm(module: nn.Module) -> bool:
    """Whether the module holds BatchNorm layers (the BN policy only matters for these)."""
    return any(isinstance(m, _BatchNorm) for m in module.modules())
