"""Why transfer does not beat scratch in the demo: converged linear probes on frozen features.

Usage: python -m bench.probe_study PATH/TO/task_A/best.ckpt [--per-class 5]

For digits 5-9 it fits scikit-learn's logistic regression (run to convergence) on
- the raw pixels (the network's normalised input),
- the frozen features of task A's network after its last stage, and after cutting 1 or 2 stages,
with N labelled images per class and with every training image, and prints test accuracy. The
numbers in docs/demo.md come from this script.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from ftcli.command_line.config_groups import compose_option
from ftcli.data.images.transforms import TransformSpec
from ftcli.data.sources import build_datamodule
from ftcli.model.backbones import build_torchvision, to_blocknet
from ftcli.model.surgery import apply_recipe
from ftcli.model.weights import load_backbone
from ftcli.model.weights_file import read_file
from ftcli.runs.checkpoint_schema import model_state

CLASSES = [5, 6, 7, 8, 9]


def split_arrays(
    loaded: dict, cut: int | None, per_class: int | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(X, y) for train and test: raw pixels when cut is None, else frozen features after the cut."""
    spec = TransformSpec.from_dict(loaded["ftcli"]["transform"])
    cfg = compose_option("data", "digits")
    cfg.classes, cfg.per_class = CLASSES, per_class
    datamodule = build_datamodule(cfg, spec, 42)
    datamodule.setup("fit")
    datamodule.setup("test")
    embed = _embedder(loaded, cut)
    out = {}
    for split, loader in (("train", datamodule.loader("train")), ("test", datamodule.loader("test"))):
        xs, ys = [], []
        with torch.no_grad():
            for x, y in loader:
                xs.append(embed(x))
                ys.append(y)
        out[split] = (torch.cat(xs).numpy(), torch.cat(ys).numpy())
    return out


def _embedder(loaded: dict, cut: int | None):
    if cut is None:
        return lambda x: x.flatten(1)
    name = loaded["ftcli"]["model"]["name"]
    model = build_torchvision(name, None)
    net, block_map = to_blocknet(model, name)
    apply_recipe(net, block_map, {"n": cut}, len(CLASSES))
    load_backbone(net, model_state(loaded), Path("checkpoint"))
    net.eval()
    return lambda x: net.blocks["head"].pool(net.features(x)).flatten(1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--per-class", type=int, default=5)
    args = parser.parse_args()
    loaded = read_file(args.checkpoint)
    for per_class in (args.per_class, None):
        label = f"{per_class} per class" if per_class else "all labels"
        for cut in (None, 0, 1, 2):
            data = split_arrays(loaded, cut, per_class)
            probe = LogisticRegression(max_iter=5000).fit(*data["train"])
            what = "raw pixels" if cut is None else f"frozen features, last {cut} stage(s) cut"
            accuracy = probe.score(*data["test"])
            print(f"{label:>12} · {what:<38} dim {data['train'][0].shape[1]:>5} · test acc {accuracy:.3f}")


if __name__ == "__main__":
    main()
