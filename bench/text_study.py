"""The article's text example, measured: does SmolLM2's pretraining transfer to movie-review sentiment?

Usage: python -m bench.text_study [--labels 10 50 100] [--seeds 1 2 3] [--scratch-labels 10 100]

For each seed it plans the run ftcli would train (``model=smollm2_135m data=movie_reviews``, validation
1% = 106 sentences, test 4% = 423) and computes the frozen network's pooled features (the last real
token, what ``feature_extraction`` trains its head on) with ftcli's own feature-cache code, for the
pretrained weights and for a random-init SmolLM2 (``model.weights=null``). For each label budget (the
``data.per_class`` training sentences per class, the same ones ``ftcli train`` picks) it fits a
converged linear probe (scikit-learn's logistic regression, C picked on the validation split from
0.01/0.1/1/10) and reports test accuracy. ``scratch`` (the whole random-init network trained, 5 epochs at
lr 1e-4) is the real ``ftcli train``, one seed per budget: it trains 135M weights live on the CPU.
It prints and writes ``text_study.md``: mean, standard deviation and every seed's accuracy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from sklearn.linear_model import LogisticRegression

from ftcli.command_line.config_groups import config_dir
from ftcli.data.sources import build_datamodule
from ftcli.data.text.spec import text_spec
from ftcli.features.cache import compute, cut_of
from ftcli.pipeline import plan_run

COMMON = ["model=smollm2_135m", "data=movie_reviews", "data.val_fraction=0.01", "data.test_fraction=0.04"]
C_GRID = (0.01, 0.1, 1.0, 10.0)
SCRATCH = [
    "strategy=scratch", "trainer=cpu", "trainer.max_epochs=5", "optimizer.lr=1e-4",
    "trainer.enable_progress_bar=false", "print_config=false",
]  # fmt: skip
PROBES = (("pretrained SmolLM2 · linear probe", True), ("random-init SmolLM2 · linear probe", False))
SCRATCH_NAME = "scratch (all weights trained, 1 seed)"


def features(seed: int, per_class: int, pretrained: bool) -> dict[str, tuple[np.ndarray, np.ndarray, list]]:
    """Per split: pooled features, labels, and each text's token ids (to find a budget's texts)."""
    overrides = [*COMMON, f"seed={seed}", f"data.per_class={per_class}", "strategy=feature_extraction"]
    if not pretrained:
        overrides.append("model.weights=null")
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    torch.manual_seed(seed)  # the random-init network of this seed
    plan = plan_run(cfg)
    out = {}
    for split in ("train", "val", "test"):
        dataset = plan.datamodule.dataset(split)
        x, y = compute(plan.net, cut_of(plan.net), dataset, 32, 0, torch.device("cpu"))
        out[split] = (x.numpy(), y.numpy(), [tuple(ids) for ids in dataset.ids])
    return out


def budget_rows(seed: int, per_class: int, train_ids: list) -> list[int]:
    """Rows of the largest budget's training split that ``data.per_class=per_class`` keeps."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[*COMMON, f"seed={seed}", f"data.per_class={per_class}"])
    datamodule = build_datamodule(cfg.data, text_spec(cfg.data, _tokenizer_folder()), seed)
    where = {ids: row for row, ids in enumerate(train_ids)}
    return [where[tuple(ids)] for ids in datamodule.dataset("train").ids]


def _tokenizer_folder() -> str:
    from ftcli.model import hf_models

    return str(hf_models.model_folder("hf/HuggingFaceTB/SmolLM2-135M-Instruct", "package"))


def probe(train: tuple, val: tuple, test: tuple) -> float:
    """Test accuracy (%) of the logistic regression whose C scored best on validation."""
    best = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=5000).fit(train[0], train[1])
        score = model.score(val[0], val[1])
        if best is None or score > best[0]:
            best = (score, model)
    return 100.0 * best[1].score(test[0], test[1])


def scratch(out: Path, labels: int, seed: int) -> float:
    """``ftcli train strategy=scratch``: the whole random-init SmolLM2 trained live; test accuracy (%)."""
    run_dir = out / f"scratch-{labels}-{seed}"
    if not (run_dir / "summary.json").is_file():
        settings = [*SCRATCH, f"data.per_class={labels}", f"seed={seed}", f"hydra.run.dir={run_dir}"]
        command = [sys.executable, "-m", "ftcli.cli", "train", *COMMON, *settings]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return 100.0 * float(json.loads((run_dir / "summary.json").read_text())["test_acc"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--scratch-labels", type=int, nargs="*", default=[10, 100])
    parser.add_argument("--out", type=Path, default=Path("outputs/text_study"))
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    largest = max(options.labels)
    results: dict[tuple[str, int], list[float]] = {}
    for seed in options.seeds:
        for name, pretrained in PROBES:
            split = features(seed, largest, pretrained)
            for labels in options.labels:
                rows = budget_rows(seed, labels, split["train"][2])
                train = (split["train"][0][rows], split["train"][1][rows])
                accuracy = probe(train, split["val"][:2], split["test"][:2])
                results.setdefault((name, labels), []).append(accuracy)
                print(f"seed {seed} · {name} · {labels}/class: {accuracy:.1f}%", flush=True)
    for labels in options.scratch_labels:
        accuracy = scratch(options.out, labels, options.seeds[0])
        results[(SCRATCH_NAME, labels)] = [accuracy]
        print(f"scratch · {labels}/class: {accuracy:.1f}%", flush=True)
    lines = ["| contender | labels/class | test accuracy % (mean ± sd) | per seed |", "|---|---:|---:|---|"]
    for (name, labels), accs in sorted(results.items(), key=lambda item: (item[0][1], item[0][0])):
        spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
        shown = ", ".join(f"{acc:.1f}" for acc in accs)
        lines.append(f"| {name} | {labels} | {statistics.mean(accs):.1f} ± {spread:.1f} | {shown} |")
    (options.out / "text_study.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
