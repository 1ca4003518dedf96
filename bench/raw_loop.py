"""The ceiling ftcli is measured against: a bare PyTorch training loop on the same network and images.

It runs in a child process (``python -m bench --raw-worker``) like every contender, and imports ftcli
only to build what ftcli would build (config, network, dataset), so the gap is ftcli's own cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from bench.contenders import common_overrides


def raw_worker(args: argparse.Namespace) -> None:
    """The ceiling: forward, backward, optimizer step on preprocessed in-memory batches; prints JSON.

    Built from ``--raw-override`` (the ftcli runs' overrides) with ``strategy=full``: every training
    image is decoded and preprocessed once, through ftcli's own dataset, into one tensor."""
    import torch
    from hydra import compose, initialize_config_dir

    from ftcli.command_line.config_groups import config_dir
    from ftcli.data.sources import holds_texts
    from ftcli.device import resolve_precision
    from ftcli.pipeline import plan_run

    torch.set_num_threads(args.threads)
    overrides = [*(args.raw_override or common_overrides(args)), "strategy=full", f"trainer={args.trainer}"]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    if holds_texts(cfg.data):  # the text rows: transformers' own model over ftcli's batches
        from bench.raw_text_loop import raw_text_loop

        print(json.dumps(raw_text_loop(args, cfg)))
        return
    torch.manual_seed(int(cfg.seed))
    run_plan = plan_run(cfg)
    preprocess_started = time.perf_counter()
    dataset = run_plan.datamodule.dataset("train")
    pairs = [dataset[i] for i in range(len(dataset))]  # each image decoded and transformed once
    images = torch.stack([image for image, _ in pairs])
    labels = torch.tensor([int(label) for _, label in pairs])
    del pairs
    preprocess_seconds = time.perf_counter() - preprocess_started
    gpu = args.trainer == "gpu" or (args.trainer != "cpu" and torch.cuda.is_available())
    device = torch.device("cuda" if gpu else "cpu")
    net = run_plan.net.to(device).train()
    precision = resolve_precision(cfg.trainer.precision, "gpu" if gpu else "cpu")
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(str(precision))
    if gpu:
        net = net.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    images, labels = images.to(device), labels.to(device)
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=float(cfg.optimizer.lr), weight_decay=float(cfg.optimizer.weight_decay)
    )
    scaler = torch.amp.GradScaler(enabled=dtype is torch.float16)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    batch = int(cfg.data.batch_size)
    epoch_seconds = []
    step_rates: list[list[float]] = []  # each step's images/s, batch end to batch end, as ftcli's Throughput
    for _ in range(args.epochs):
        order = torch.randperm(len(labels), generator=generator).to(device)
        if gpu:
            torch.cuda.synchronize()
        started = last = time.perf_counter()
        step_rates.append([])
        for start in range(0, len(labels), batch):
            idx = order[start : start + batch]
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = torch.nn.functional.cross_entropy(net(images[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            now = time.perf_counter()
            step_rates[-1].append(len(idx) / (now - last))
            last = now
        if gpu:
            torch.cuda.synchronize()
        epoch_seconds.append(time.perf_counter() - started)
    steady = epoch_seconds[1:] or epoch_seconds
    print(
        json.dumps(
            {
                "images_per_second": len(labels) * len(steady) / sum(steady),
                "step_images_per_second": statistics.median(
                    [r for rates in (step_rates[1:] or step_rates) for r in rates]
                ),
                "epoch_seconds": statistics.mean(steady),
                "precision": str(precision),
                "train_images": len(labels),
                "preprocess_seconds": preprocess_seconds,
            }
        )
    )
