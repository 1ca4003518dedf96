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
import statistics
import time
from typing import Any

from omegaconf import DictConfig


def raw_text_loop(args: argparse.Namespace, cfg: DictConfig) -> dict[str, Any]:
    """Train ``cfg``'s text model (every weight, AdamW) for ``args.epochs``; texts/s and tokens/s."""
    import torch

    from ftcli.data.text.buckets import LengthBuckets
    from ftcli.device import resolve_precision
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
    no_cache = (
        {"use_cache": False} if decoder else {}
    )  # training keeps no key/value cache (as training scripts set)
    head = torch.nn.Linear(int(base.config.hidden_size), classes)
    gpu = args.trainer == "gpu" or (args.trainer != "cpu" and torch.cuda.is_available())
    device = torch.device("cuda" if gpu else "cpu")
    base, head = base.to(device).train(), head.to(device).train()
    precision = resolve_precision(cfg.trainer.precision, "gpu" if gpu else "cpu")
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(str(precision))
    optimizer = torch.optim.AdamW(
        [*base.parameters(), *head.parameters()],
        lr=float(cfg.optimizer.lr),
        weight_decay=float(cfg.optimizer.weight_decay),
    )
    scaler = torch.amp.GradScaler(enabled=dtype is torch.float16)
    batch_size = int(cfg.data.batch_size)
    epoch_seconds: list[float] = []
    step_rates: list[list[float]] = []
    tokens = sum(dataset.lengths)
    for epoch in range(args.epochs):
        sampler = LengthBuckets(dataset, seed, lambda e=epoch: e, dataset.lengths, batch_size)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, collate_fn=dataset.collate
        )
        batches = [(x[:, 0].to(device), x[:, 1].to(device), y.to(device)) for x, y in loader]
        if gpu:
            torch.cuda.synchronize()
        started = last = time.perf_counter()
        step_rates.append([])
        for ids, mask, labels in batches:
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                hidden = base(input_ids=ids, attention_mask=mask, **no_cache).last_hidden_state
                if decoder:  # right padded: the last real token
                    pooled = hidden[torch.arange(len(ids), device=device), mask.sum(-1) - 1]
                else:
                    weights = mask.unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * weights).sum(1) / weights.sum(1)
                loss = torch.nn.functional.cross_entropy(head(pooled), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            now = time.perf_counter()
            step_rates[-1].append(len(labels) / (now - last))
            last = now
        if gpu:
            torch.cuda.synchronize()
        epoch_seconds.append(time.perf_counter() - started)
    steady = epoch_seconds[1:] or epoch_seconds
    steps = [r for rates in (step_rates[1:] or step_rates) for r in rates]
    return {
        "images_per_second": len(dataset) * len(steady) / sum(steady),
        "tokens_per_second": tokens * len(steady) / sum(steady),
        "step_images_per_second": statistics.median(steps),
        "epoch_seconds": statistics.mean(steady),
        "precision": str(precision),
        "train_images": len(dataset),
        "train_tokens": tokens,
        "preprocess_seconds": 0.0,
    }
