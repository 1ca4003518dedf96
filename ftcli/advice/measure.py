"""What the advisor measures on the training split: data counts and a linear probe on every block.

Two networks of the same architecture are probed block by block: the one the run would start from
(its pretrained or chained weights) and a random-init copy (seeded), plus the raw input (pixels, or a
text's token counts). The random copy and the raw input say what a linear classifier gets with no
pretrained knowledge at all, so the pretrained probe's margin over them measures how much the source
task's features help this one. Images and texts are measured the same way.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from sklearn.model_selection import train_test_split

from ftcli.advice import block_features, probes
from ftcli.advice.probes import ProbeScore
from ftcli.errors import DataError
from ftcli.model.blocks import BlockNet

# Above this many training samples the probes use a stratified subsample of this size (stated).
MAX_PROBE_IMAGES = 2000
# what the advisor builds the networks with: every block kept, nothing trains
PROBE_RECIPE = {"name": "linear", "n": 0, "hidden": [], "dropout": 0.0, "activation": "relu"}
PROBE_STRATEGY = {"name": "feature_extraction", "bn": "frozen", "backbone_lr_mult": 1.0, "lr_decay": 1.0}


@dataclass
class Measurements:
    """Everything measured, in plain numbers (``to_dict`` is what advice.json stores)."""

    model: str
    weights: str
    data: str
    classes: list[str]
    per_class: dict[str, int]
    # the input as the probes saw it ("32x32 px", "at most 128 tokens") and what a sample is called
    input_size: str
    samples_probed: int
    blocks: list[str]
    pretrained: dict[str, ProbeScore] = field(default_factory=dict)
    random_init: dict[str, ProbeScore] = field(default_factory=dict)
    raw_input: ProbeScore | None = None
    raw_input_name: str = block_features.RAW_INPUT_NAMES["image"]
    noun: str = "images"
    unprobed: dict[str, str] = field(default_factory=dict)
    features_loaded: bool = False
    seconds: float = 0.0

    @property
    def samples(self) -> int:
        return sum(self.per_class.values())

    @property
    def min_per_class(self) -> int:
        return min(self.per_class.values()) if self.per_class else 0

    @property
    def median_per_class(self) -> float:
        return float(statistics.median(self.per_class.values())) if self.per_class else 0.0

    def to_dict(self) -> dict[str, Any]:
        def scores(table: dict[str, ProbeScore]) -> dict[str, dict[str, float]]:
            return {name: value.to_dict() for name, value in table.items()}

        return {
            "model": self.model,
            "weights": self.weights,
            "data": self.data,
            "classes": self.classes,
            "per_class": self.per_class,
            "min_per_class": self.min_per_class,
            "median_per_class": self.median_per_class,
            "input_size": self.input_size,
            "noun": self.noun,
            "samples": self.samples,
            "samples_probed": self.samples_probed,
            "blocks": self.blocks,
            "probe": {
                "method": f"logistic regression (C={probes.PROBE_C}, standardised features), "
                "stratified k-fold on the training split",
                "pretrained": scores(self.pretrained),
                "random_init": scores(self.random_init),
                "raw_input": self.raw_input.to_dict() if self.raw_input else None,
                "raw_input_name": self.raw_input_name,
            },
            "unprobed": self.unprobed,
            "features_loaded": self.features_loaded,
            "seconds": self.seconds,
        }


def probe_config(cfg: DictConfig, pretrained: bool) -> DictConfig:
    """``cfg`` as the advisor builds it: every block kept, nothing augmented, weights on or off; a text
    model pools the way the run's recipe says (``recipe.pool``)."""
    probe = copy.deepcopy(cfg)
    with open_dict(probe):
        probe.strategy = OmegaConf.create({**PROBE_STRATEGY, "pretrained": pretrained})
        probe.recipe = OmegaConf.create({**PROBE_RECIPE, "pool": cfg.recipe.get("pool", "auto")})
        probe.data.augment = None
    return probe


def probe_indices(labels: list[int], seed: int, limit: int = MAX_PROBE_IMAGES) -> list[int]:
    """Every training sample, or a stratified seeded subsample of ``limit`` when there are more."""
    if len(labels) <= limit:
        return list(range(len(labels)))
    keep, _ = train_test_split(range(len(labels)), train_size=limit, stratify=labels, random_state=seed)
    return sorted(int(i) for i in keep)


def measure(
    cfg: DictConfig,
    pretrained_net: BlockNet,
    random_net: BlockNet,
    datamodule: Any,
    weights_label: str,
    directory: Path,
    device: torch.device,
) -> Measurements:
    """Count the training split and probe every block of both networks (and the raw input)."""
    started = time.perf_counter()
    dataset = datamodule.dataset("train")
    labels = [int(t) for t in dataset.targets]
    names = list(datamodule.class_names)
    counts = Counter(labels)
    per_class = {names[i]: counts.get(i, 0) for i in range(len(names))}
    found = [name for name, count in per_class.items() if count > 0]
    if len(found) < 2:
        raise DataError(
            f"The training split holds {len(found)} class{'' if len(found) == 1 else 'es'} "
            f"({', '.join(found) or f'no {datamodule.sample_noun}'}); a classifier needs at least 2.",
            "Check data.root / data.classes, or lower data.val_fraction and data.test_fraction.",
        )
    seed = int(cfg.seed)
    indices = probe_indices(labels, seed)
    spec = datamodule.spec
    texts = hasattr(spec, "max_length")
    result = Measurements(
        model=str(cfg.model.name),
        weights=weights_label,
        data=str(cfg.data.name),
        classes=names,
        per_class=per_class,
        input_size=f"at most {spec.max_length} tokens" if texts else f"{spec.crop}x{spec.crop} px",
        samples_probed=len(indices),
        blocks=pretrained_net.backbone_names,
        raw_input_name=block_features.RAW_INPUT_NAMES["text" if texts else "image"],
        noun=datamodule.sample_noun,
    )
    batch = max(64, int(datamodule.batch_size))
    ours = block_features.cached(pretrained_net, dataset, indices, directory, batch, device, baseline=True)
    theirs = block_features.cached(random_net, dataset, indices, directory, batch, device, baseline=False)
    result.features_loaded = ours.loaded and theirs.loaded
    result.unprobed = dict(ours.unprobed)
    if probes.fold_count(ours.labels) >= 2:
        scores = probes.scores_of(ours.by_block, ours.labels, seed, ours.path)
        result.raw_input = scores.pop(block_features.RAW_INPUT)
        result.pretrained = scores
        result.random_init = probes.scores_of(theirs.by_block, theirs.labels, seed, theirs.path)
    result.seconds = time.perf_counter() - started
    return result
