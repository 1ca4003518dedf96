"""A transformers text model cut into blocks: embeddings = stem, transformer layers = stages, new head.

Strategies speak in blocks, so a text model must run block by block like an image model. The input
is one ``(N, 2, L)`` long tensor (``x[:, 0]`` token ids, ``x[:, 1]`` the attention mask, right padded:
``ftcli.data.text.batches``), so every path that moves a batch (the feature cache, DDP, export) moves
one tensor. The stem embeds the tokens and builds what every layer needs (the attention mask as the
model's own code builds it, rotary position embeddings for a decoder); the stages pass a
:class:`TokenState` along; the head pools it to one vector per text (:class:`TokenPool`: the last
real token for a causal LM, the mean or ``[CLS]`` for an encoder) and classifies.

Two layouts are mapped: decoders laid out like Llama (``embed_tokens``, ``layers``, ``norm``,
``rotary_emb``: Llama, SmolLM2, Mistral, Qwen2) and encoders laid out like BERT (``embeddings``,
``encoder.layer``: BERT, MiniLM, RoBERTa). Consecutive layers are grouped into at most
:data:`MAX_STAGES` stages (``model.layers_per_block`` sets the group size); the final norm joins the
last stage. When a model is built, running the
blocks in order is checked against the model's own hidden states (:func:`check_blocks_reproduce`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import torch
from torch import nn

from ftcli.errors import ConfigError
from ftcli.model.block_map import BlockMap, near_equal_chunks, stage_blocks
from ftcli.model.model_input import ModelInput

MAX_STAGES = 12
POOLS = ("auto", "last", "mean", "cls")


class TokenState(NamedTuple):
    """What flows between text blocks: hidden states ``(N, L, D)``, the ``(N, L)`` mask, and the keyword
    arguments every transformer layer takes (attention mask in the model's form, positions)."""

    hidden: torch.Tensor
    mask: torch.Tensor
    layer_kwargs: dict[str, Any]


def split_input(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, 2, L)`` -> (token ids, attention mask)."""
    if x.dim() != 3 or x.shape[1] != 2:
        raise ValueError(f"a text batch is (N, 2, L) token ids and mask, got shape {tuple(x.shape)}")
    return x[:, 0], x[:, 1]


class DecoderStem(nn.Module):
    """Token embeddings plus the causal mask and rotary position embeddings, as the model builds them.

    Positions count real tokens only (``mask.cumsum - 1``), so left and right padding give the same
    numbers for the same text.
    """

    def __init__(self, embed_tokens: nn.Module, rotary_emb: nn.Module, config: Any) -> None:
        super().__init__()
        self.embed_tokens = embed_tokens
        self.rotary_emb = rotary_emb
        self.config = config

    def forward(self, x: torch.Tensor) -> TokenState:
        ids, mask = split_input(x)
        return self.state_of(self.embed_tokens(ids), mask)

    def state_of(self, hidden: torch.Tensor, mask: torch.Tensor) -> TokenState:
        """The state the layers take for ``hidden`` states and their mask: the causal mask and rotary
        embeddings depend on nothing else, so cached hidden states (features/token_states.py) resume here."""
        from transformers.masking_utils import create_causal_mask

        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        causal = create_causal_mask(
            config=self.config, inputs_embeds=hidden, attention_mask=mask, cache=None, position_ids=None
        )
        rotary = self.rotary_emb(hidden, position_ids=positions)
        return TokenState(
            hidden, mask, {"attention_mask": causal, "position_embeddings": rotary, "position_ids": positions}
        )


class EncoderStem(nn.Module):
    """Word, position and token-type embeddings plus the bidirectional mask, as the model builds them
    (positions count real tokens, so left and right padding agree)."""

    def __init__(self, embeddings: nn.Module, config: Any) -> None:
        super().__init__()
        self.embeddings = embeddings
        self.config = config

    def forward(self, x: torch.Tensor) -> TokenState:
        ids, mask = split_input(x)
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)  # real tokens only, as in DecoderStem
        return self.state_of(self.embeddings(input_ids=ids, position_ids=positions), mask)

    def state_of(self, hidden: torch.Tensor, mask: torch.Tensor) -> TokenState:
        """The state the layers take for ``hidden`` states and their mask (as DecoderStem's)."""
        from transformers.masking_utils import create_bidirectional_mask

        attention = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=mask)
        return TokenState(hidden, mask, {"attention_mask": attention})


class LayerStage(nn.Module):
    """Consecutive transformer layers (and the final norm when it is the last stage)."""

    def __init__(self, layers: list[nn.Module], first: int, norm: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.first = first  # index of the first layer in the model, for inspect
        self.norm = norm

    def forward(self, state: TokenState) -> TokenState:
        hidden = state.hidden
        for layer in self.layers:
            out = layer(hidden, **state.layer_kwargs)
            hidden = out[0] if isinstance(out, tuple) else out
        if self.norm is not None:
            hidden = self.norm(hidden)
        return state._replace(hidden=hidden)

    def extra_repr(self) -> str:
        last = self.first + len(self.layers) - 1
        span = f"layer {last}" if last == self.first else f"layers {self.first}-{last}"
        return span + (" + final norm" if self.norm is not None else "")


class TokenPool(nn.Module):
    """One vector per text from a :class:`TokenState`; parameter-free, so the feature cache can store
    its output."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        if mode not in ("last", "mean", "cls"):
            raise ValueError(f"pool must be last, mean or cls, got {mode!r}")
        self.mode = mode

    def forward(self, state: TokenState) -> torch.Tensor:
        hidden, mask = state.hidden, state.mask
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        if self.mode == "cls":
            return hidden[rows, mask.long().argmax(-1)]  # the first real token, wherever the padding is
        if self.mode == "mean":
            weights = mask.to(hidden.dtype).unsqueeze(-1)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        # the last real token: the last position whose mask is 1, wherever the padding is
        length = mask.shape[1]
        last = length - 1 - mask.long().flip(-1).argmax(-1)
        return hidden[rows, last]

    def extra_repr(self) -> str:
        return self.mode


def is_decoder(model: nn.Module) -> bool:
    """Whether ``model`` is laid out like Llama (else like BERT); a ConfigError for other layouts."""
    if all(hasattr(model, name) for name in ("embed_tokens", "layers", "norm", "rotary_emb")):
        return True
    if hasattr(model, "embeddings") and hasattr(getattr(model, "encoder", None), "layer"):
        return False
    model_type = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
    raise ConfigError(
        f"ftcli cannot cut a '{model_type}' transformers model into blocks.",
        "Supported layouts: decoders like Llama (llama, mistral, qwen2: SmolLM2) and encoders like BERT "
        "(bert, roberta: MiniLM).",
    )


def default_pool(model: nn.Module) -> str:
    """``recipe.pool=auto``: the last real token for a causal LM, the mean for an encoder."""
    return "last" if is_decoder(model) else "mean"


def group_size(layers: int, layers_per_block: int | str = "auto") -> int:
    """Layers per stage (``model.layers_per_block``): auto is one each up to :data:`MAX_STAGES` layers,
    else as few as keep it under; a number is the most per stage (``to_blocks`` then splits the layers
    into that many near-equal stages)."""
    if layers_per_block == "auto":
        return max(1, math.ceil(layers / MAX_STAGES))
    return max(1, min(int(layers_per_block), layers))


def to_blocks(model: nn.Module, pool: str = "auto", layers_per_block: int | str = "auto") -> BlockMap:
    """``model`` (a transformers base model) as stem, stages and a pooling head, reusing its modules."""
    decoder = is_decoder(model)
    config = model.config
    if decoder:
        stem: nn.Module = DecoderStem(model.embed_tokens, model.rotary_emb, config)
        layers, norm = list(model.layers), model.norm
    else:
        stem = EncoderStem(model.embeddings, config)
        layers, norm = list(model.encoder.layer), None
    size = group_size(len(layers), layers_per_block)
    chunks = near_equal_chunks(layers, math.ceil(len(layers) / size))
    stages, first = [], 0
    for index, chunk in enumerate(chunks):
        stages.append(LayerStage(chunk, first, norm if index == len(chunks) - 1 else None))
        first += len(chunk)
    token_pool = TokenPool(default_pool(model) if pool == "auto" else pool)
    max_tokens = getattr(config, "max_position_embeddings", None)
    block_map = BlockMap(
        family="hf",
        blocks=[("stem", stem), *stage_blocks(stages)],
        pool=token_pool,
        global_pool=token_pool,
        classifier=nn.Identity(),
        input=ModelInput.tokens(int(max_tokens) if isinstance(max_tokens, int) and max_tokens > 0 else None),
    )
    block_map.notes = structure_notes(block_map)
    return block_map


def structure_notes(block_map: BlockMap) -> list[str]:
    """What ``inspect`` says about the cut: layers per stage, the pooling, BatchNorm not applying."""
    stages = [module for _, module in block_map.blocks if isinstance(module, LayerStage)]
    total = sum(len(stage.layers) for stage in stages)
    sizes = sorted({len(stage.layers) for stage in stages})
    per = "/".join(str(size) for size in sizes)
    return [
        f"{total} transformer layers in {len(stages)} blocks ({per} per block, model.layers_per_block: "
        f"stage1 = {stages[0].extra_repr()}, stage{len(stages)} = {stages[-1].extra_repr()}); "
        "the embeddings are the stem",
        f"the head pools the {_pool_words(block_map.pool)} hidden state of each text (recipe.pool)",
        "strategy.bn does not apply: this network has no BatchNorm (it normalizes with LayerNorm/RMSNorm)",
    ]


def _pool_words(pool: nn.Module) -> str:
    mode = getattr(pool, "mode", "")
    return {"last": "last real token's", "mean": "mean of the tokens'", "cls": "first ([CLS]) token's"}.get(
        mode, mode
    )


@torch.no_grad()
def check_blocks_reproduce(model: nn.Module, block_map: BlockMap, atol: float = 1e-4) -> None:
    """Run the blocks in order on a short text and compare with the model's own last hidden state;
    a mismatch means the mapping is wrong for this model, and the run stops before training on it."""
    was_training = model.training
    model.eval()
    try:
        vocab = int(getattr(model.config, "vocab_size", 100))
        ids = torch.arange(5).remainder(max(vocab - 1, 1)).add(1).unsqueeze(0)
        mask = torch.ones_like(ids)
        state: Any = torch.stack([ids, mask], dim=1)
        for _, block in block_map.blocks:
            state = block(state)
        own = model(input_ids=ids, attention_mask=mask).last_hidden_state
    finally:
        model.train(was_training)
    if state.hidden.shape != own.shape or not torch.allclose(state.hidden, own, atol=atol, rtol=1e-3):
        gap = (state.hidden - own).abs().max().item() if state.hidden.shape == own.shape else float("nan")
        raise ConfigError(
            f"Running the blocks of this {model.config.model_type} model in order does not reproduce its "
            f"own hidden states (largest difference {gap:.2e}).",
            "This layout is not supported yet; please report the model name.",
        )


def check_pool(pool: object) -> str:
    """``recipe.pool``: one of :data:`POOLS`."""
    if pool not in POOLS:
        raise ConfigError(
            f"recipe.pool={pool} is not valid.",
            f"Valid values: {', '.join(POOLS)} (auto: the last token for a causal LM, "
            "the mean for an encoder).",
        )
    return str(pool)


_LAYER_KEY = re.compile(r"^blocks\.stage(\d+)\.layers\.(\d+)\.(.+)$")
_NORM_KEY = re.compile(r"^blocks\.stage(\d+)\.norm\.(.+)$")


def _layers_per_stage(keys: Iterable[str]) -> dict[int, int]:
    """{stage number: its layer count} read off BlockNet tensor names (``blocks.stage3.layers.1.x``)."""
    counts: dict[int, int] = {}
    for key in keys:
        if match := _LAYER_KEY.match(key):
            stage, layer = int(match[1]), int(match[2])
            counts[stage] = max(counts.get(stage, 0), layer + 1)
    return counts


def regrouped(state: dict[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A text checkpoint's tensors renamed to ``target``'s grouping of layers into stages.

    Chaining reads a checkpoint in BlockNet names; a run with another ``model.layers_per_block`` names
    the same layer differently (``stage2.layers.0`` or ``stage1.layers.1``). The n-th layer of the model
    is the same layer in both, and the final norm sits in the last stage of each. Returned unchanged when
    the groupings agree, or the layer counts differ (the load then reports the mismatch)."""
    source, wanted = _layers_per_stage(state), _layers_per_stage(target)
    if not source or not wanted or source == wanted or sum(source.values()) != sum(wanted.values()):
        return state
    first, total = {}, 0
    for stage in sorted(source):
        first[stage], total = total, total + source[stage]
    place = [(stage, layer) for stage in sorted(wanted) for layer in range(wanted[stage])]
    last = max(wanted)
    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if match := _LAYER_KEY.match(key):
            stage, layer = place[first[int(match[1])] + int(match[2])]
            key = f"blocks.stage{stage}.layers.{layer}.{match[3]}"
        elif match := _NORM_KEY.match(key):
            key = f"blocks.stage{last}.norm.{match[2]}"
        renamed[key] = tensor
    return renamed
