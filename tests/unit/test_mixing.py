"""MixUp / CutMix (training/mixing.py): soft targets, off in head-only phases, and the feature cache."""

from __future__ import annotations

import pytest
import torch

from ftcli.config.mixup import mix_options
from ftcli.config.run_options import TrainingOptions
from ftcli.errors import ConfigError
from ftcli.features.cache import cache_eligible
from ftcli.finetune.phases import make_schedule
from ftcli.training.mixing import batch_mixer, mixes_in_cached_phase

NUM_CLASSES = 5


def batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, 16, 16, generator=generator), torch.arange(n) % NUM_CLASSES


@pytest.mark.parametrize("alphas", [{"mixup_alpha": 0.4}, {"cutmix_alpha": 1.0}])
def test_mixed_targets_are_soft_and_sum_to_one(alphas) -> None:
    torch.manual_seed(0)
    mix = batch_mixer(mix_options(alphas), NUM_CLASSES)
    x, y = batch()
    mixed, targets = mix(x, y)
    assert mixed.shape == x.shape and not torch.equal(mixed, x)
    assert targets.shape == (len(y), NUM_CLASSES) and targets.is_floating_point()
    assert torch.allclose(targets.sum(dim=1), torch.ones(len(y)))
    assert ((targets > 0) & (targets < 1)).any()  # soft: some image is part one class, part another
    assert (targets.max(dim=1).values < 1).any()


def test_an_unmixed_batch_gets_one_hot_targets() -> None:
    mix = batch_mixer(mix_options({"mixup_alpha": 0.4, "prob": 0.0}), NUM_CLASSES)
    x, y = batch()
    mixed, targets = mix(x, y)
    assert torch.equal(mixed, x)
    assert torch.equal(targets, torch.nn.functional.one_hot(y, NUM_CLASSES).float())


def test_soft_targets_reach_the_training_loss(tiny_net) -> None:
    from ftcli.training.lightning_module import FineTuneModule

    net = tiny_net("resnet18", num_classes=NUM_CLASSES)
    schedule = make_schedule({"name": "full"}, net)
    optimizer, scheduler = {"name": "adamw", "lr": 1e-3}, {"name": "none"}
    mixed_options = TrainingOptions(mixup=mix_options({"mixup_alpha": 0.4}))
    plain = FineTuneModule(net, schedule, optimizer, scheduler, {"num_classes": NUM_CLASSES})
    mixed = FineTuneModule(net, schedule, optimizer, scheduler, {"num_classes": NUM_CLASSES}, mixed_options)
    assert mixed.meta["mixup"]["mixup_alpha"] == 0.4  # recorded in every checkpoint's metadata
    x, y = batch(4)
    x = torch.nn.functional.interpolate(x, size=32)
    torch.manual_seed(0)
    assert not torch.allclose(plain.training_step((x, y), 0), mixed.training_step((x, y), 0))


def test_off_in_head_only_phases_unless_asked(tiny_net) -> None:
    net = tiny_net("resnet18")
    lp_ft = make_schedule({"name": "lp_ft", "probe_epochs": 2}, net)
    probe, fine_tune = lp_ft.phases
    options = mix_options({"cutmix_alpha": 1.0})
    assert not options.applies(probe) and options.applies(fine_tune)
    assert mix_options({"cutmix_alpha": 1.0, "during_head_only_phases": True}).applies(probe)
    assert not mix_options({}).applies(fine_tune)  # off by default


def test_mixing_in_a_head_only_run_switches_the_feature_cache_off_with_a_reason(tiny_net) -> None:
    net = tiny_net("resnet18")
    schedule = make_schedule({"name": "feature_extraction"}, net)
    assert not mixes_in_cached_phase(mix_options({"mixup_alpha": 0.2}), schedule)  # off in probes
    asked = mix_options({"mixup_alpha": 0.2, "during_head_only_phases": True})
    assert mixes_in_cached_phase(asked, schedule)
    eligible, reason = cache_eligible(schedule, None, mixing=True)
    assert not eligible and "mixup" in reason


@pytest.mark.parametrize(
    "cfg",
    [{"mixup_alpha": -1}, {"prob": 2}, {"switch_prob": "x"}, {"alpha": 1}, {"during_head_only_phases": 1}],
)
def test_bad_values_are_config_errors(cfg) -> None:
    with pytest.raises(ConfigError, match="mixup"):
        mix_options(cfg)
