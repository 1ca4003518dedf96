"""A text model's frozen prefix, cached: every text's hidden states after the last fixed block.

When the first blocks of a text model stay fixed in every phase (``last_layers``, ``first_layers``:
frozen, eval mode), they map each text to the same hidden states every epoch. Like the pooled
cache of head-only runs (``ftcli.features.cache``), this runs them once per split and trains the
rest of the network on what they produced, so ``last_layers strategy.n=1`` on SmolLM2 pays for 27 of
its 30 layers once instead of once per epoch.

What is stored: each text's real tokens only (no padding), one ``(tokens, hidden size)`` row block per
text, in float16 when every value fits it (the states are normalised sums of unit-scale terms; the
halved file and memory is the point), else float32, plus the lengths and labels. Batches are padded
again per batch and travel as one tensor, like a live text batch: ``(N, L, D + 1)``, the hidden
states with the attention mask as one more channel (:func:`pack`, :func:`unpack`). The tail rebuilds
what the layers take from the states and the mask alone (the stem's ``state_of``: the model's own
attention mask and, for a decoder, rotary embeddings), then runs the blocks that train.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from ftcli.features.cache import evaluated, shortest_first
from ftcli.finetune.freeze_plan import Schedule
from ftcli.model.blocks import HEAD, BlockNet
from ftcli.model.text_blocks import TokenState

# a prefix of only the stem (the embeddings) saves too little to be worth a file: at least one layer stage
MIN_PREFIX = 2
FLOAT16_MAX = torch.finfo(torch.float16).max


def fixed_prefix(schedule: Schedule) -> int:
    """How many leading blocks every phase keeps fixed (frozen and in eval mode, nothing updates)."""

    def count(blocks: Sequence) -> int:
        n = 0
        for block in blocks:
            if block.name == HEAD or not block.fixed or block.updates:
                break
            n += 1
        return n

    return min(count(phase.blocks) for phase in schedule.phases)


def pack(state: TokenState) -> torch.Tensor:
    """``(N, L, D)`` hidden states and their ``(N, L)`` mask as one ``(N, L, D + 1)`` tensor."""
    return torch.cat([state.hidden, state.mask.unsqueeze(-1).to(state.hidden.dtype)], dim=-1)


def unpack(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`pack`'s tensor -> (hidden states, mask as the token ids' integers)."""
    return x[..., :-1], x[..., -1].round().long()


def tail(net: BlockNet, stop: int, x: torch.Tensor) -> torch.Tensor:
    """Cached states of the first ``stop`` blocks -> logits: the blocks from ``stop`` on, head included."""
    hidden, mask = unpack(x)
    stem = net.blocks[net.block_names[0]]
    return net.forward_from(stem.state_of(hidden, mask), stop)


class TokenStates(Dataset):
    """Cached hidden states, one ``(length, D)`` slice of ``flat`` per text; ``__getitems__`` pads a batch."""

    def __init__(self, flat: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> None:
        self.flat = flat
        self.text_lengths = lengths.long()
        self.labels = labels
        self.starts = torch.cumsum(self.text_lengths, 0) - self.text_lengths

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> list[int]:
        """Tokens per text: the length-bucketed sampler groups them as it groups the texts."""
        return self.text_lengths.tolist()

    @property
    def width(self) -> int:
        """The hidden size ``D`` (a batch is ``D + 1`` wide: the mask rides along)."""
        return int(self.flat.shape[1])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start, length = int(self.starts[index]), int(self.text_lengths[index])
        return self.flat[start : start + length].float(), self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [self[int(i)][0] for i in indices]
        longest = max(len(row) for row in rows)
        batch = torch.zeros(len(rows), longest, self.width + 1)
        for i, row in enumerate(rows):
            batch[i, : len(row), :-1] = row
            batch[i, : len(row), -1] = 1.0
        return batch, self.labels[torch.as_tensor(list(indices), dtype=torch.long)]


@torch.no_grad()
def compute(
    net: BlockNet, stop: int, dataset: Dataset, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the first ``stop`` blocks (eval mode) over a split of texts, shortest first so batches pad
    little: (flat states, lengths, labels) on the CPU, in the split's order."""
    loader, order = shortest_first(dataset, batch_size)
    rows: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    with evaluated(net, device):
        for x, y in loader:
            state = net.forward_until(x.to(device), stop)
            real = state.mask.sum(-1).tolist()
            hidden = state.hidden.float().cpu()
            rows += [hidden[i, : int(n)] for i, n in enumerate(real)]  # right padded: real tokens first
            labels.append(torch.as_tensor(y))
    back = sorted(range(len(order)), key=order.__getitem__)  # back to the split's order
    rows = [rows[i] for i in back]
    targets = torch.cat(labels).long()[torch.tensor(back, dtype=torch.long)]
    flat = torch.cat(rows)
    if torch.isfinite(flat).all() and flat.abs().max() < FLOAT16_MAX:
        flat = flat.half()
    return flat, torch.tensor([len(r) for r in rows], dtype=torch.long), targets


def state_bytes(net: BlockNet, stop: int, dataset: Dataset) -> int:
    """What a split's states take in float32 (the most they can take): its tokens times the hidden size."""
    x = dataset.collate([dataset[0]])[0]  # type: ignore[attr-defined]
    with evaluated(net), torch.no_grad():
        width = int(net.forward_until(x, stop).hidden.shape[-1])
    return sum(dataset.lengths) * width * 4  # type: ignore[attr-defined]
