"""The text ceiling: a bare transformers + PyTorch training loop over the batches ftcli trains on.

The model is transformers' own (``AutoModel``, the same folder and weights ftcli loads), called as
transformers users call it (``input_ids``, ``attention_mask``), with a linear head on the pooled
output (the last real token of a causal LM, the mean of an encoder, as ftcli's ``recipe.pool=auto``).
The batches are ftcli's: the same tokenized split and the same length buckets, drawn from the same
seed and epoch, collated before each epoch's clock starts. So the gap to ``ftcli train strategy=full``
is ftcli's own cost: blocks, Lightning, metrics, loaders.
"""

from __future__ import annotations

import argparse
from typing import Any

from omegaconf import DictConfig

from bench.timed_training import device_and_precision, timed_epochs


def raw_text_loop(args: argparse.Namespace, cfg: DictConfig) -> dict[str, Any]:
    """Train ``cfg``'s text model (every weight, AdamW) for ``args.epochs``; texts/s and tokens/s."""
    import torch

    from ftcli.data.text.buckets import LengthBuckets
    from ftcli.model import hf_models, text_blocks
    from ftcli.pipeline import plan_run

    seed = int(cfg.seed)
    torch.manual_seed(seed)
    run_plan = plan_run(cfg)  # ftcli's tokenized splits; its network is not used
    dataset = run_plan.datamodule.dataset("train")
    classes = run_plan.datamodule.num_classes
    del run_plan
    base = hf_models.build(hf_models.model_folder(str(cfg.model.name), cfg.model.weights), True, {})
    decoder = text_blocks.is_decoder(base)
    no_cache = {"use_cache": False} if decoder else {}  # training keeps no key/value cache
    head = torch.nn.Linear(int(base.config.hidden_size), classes)
    device, precision, dtype = device_and_precision(args, cfg)
    base, head = base.to(device).train(), head.to(device).train()
    batch_size = int(cfg.data.batch_size)

    def epoch_batches(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        sampler = LengthBuckets(dataset, seed, lambda: epoch, dataset.lengths, batch_size)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, collate_fn=dataset.collate
        )
        return [(x[:, 0].to(device), x[:, 1].to(device), y.to(device)) for x, y in loader]

    def loss_of(batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, int]:
        ids, mask, labels = batch
        hidden = base(input_ids=ids, attention_mask=mask, **no_cache).last_hidden_state
        if decoder:  # right padded: the last real token
            pooled = hidden[torch.arange(len(ids), device=device), mask.sum(-1) - 1]
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1)
        return torch.nn.functional.cross_entropy(head(pooled), labels), len(labels)

    parameters = [*base.parameters(), *head.parameters()]
    timed = timed_epochs(args.epochs, epoch_batches, loss_of, parameters, cfg, device, dtype)
    tokens = sum(dataset.lengths)
    return {
        **timed,
        "tokens_per_second": timed["images_per_second"] * tokens / len(dataset),
        "precision": precision,
        "train_images": len(dataset),
        "train_tokens": tokens,
        "preprocess_seconds": 0.0,
    }
