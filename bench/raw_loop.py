"""The ceiling ftcli is measured against: a bare PyTorch training loop on the same network and images.

It runs in a child process (``python -m bench --raw-worker``) like every contender, and imports ftcli
only to build what ftcli would build (config, network, dataset), so the gap is ftcli's own cost.
"""

from __future__ import annotations

import argparse
import json
import time

from bench.contenders import common_overrides
from bench.timed_training import device_and_precision, timed_epochs


def raw_worker(args: argparse.Namespace) -> None:
    """The ceiling: forward, backward, optimizer step on preprocessed in-memory batches; prints JSON.

    Built from ``--raw-override`` (the ftcli runs' overrides) with ``strategy=full``: every training
    image is decoded and preprocessed once, through ftcli's own dataset, into one tensor."""
    import torch
    from hydra import compose, initialize_config_dir

    from ftcli.command_line.config_groups import config_dir
    from ftcli.data.sources import holds_texts
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
    device, precision, dtype = device_and_precision(args, cfg)
    net = run_plan.net.to(device).train()
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    images, labels = images.to(device), labels.to(device)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    batch = int(cfg.data.batch_size)

    def epoch_batches(_: int) -> list[torch.Tensor]:
        order = torch.randperm(len(labels), generator=generator).to(device)
        return [order[start : start + batch] for start in range(0, len(labels), batch)]

    def loss_of(idx: torch.Tensor) -> tuple[torch.Tensor, int]:
        return torch.nn.functional.cross_entropy(net(images[idx]), labels[idx]), len(idx)

    timed = timed_epochs(args.epochs, epoch_batches, loss_of, net.parameters(), cfg, device, dtype)
    print(
        json.dumps(
            {
                **timed,
                "precision": precision,
                "train_images": len(labels),
                "preprocess_seconds": preprocess_seconds,
            }
        )
    )
