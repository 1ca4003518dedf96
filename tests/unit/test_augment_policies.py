"""data.augment.policy: RandAugment, TrivialAugmentWide and AutoAugment in the training transform."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from ftcli.data.images.transforms import TransformSpec, is_deterministic, train_transform, validate_augment
from ftcli.errors import ConfigError
from ftcli.features.cache import cache_eligible
from ftcli.finetune.phases import make_schedule

SPEC = TransformSpec(resize=36, crop=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
POLICIES = {
    "randaugment": v2.RandAugment,
    "trivialaugment": v2.TrivialAugmentWide,
    "autoaugment": v2.AutoAugment,
}


@pytest.mark.parametrize("name", list(POLICIES))
def test_each_policy_joins_the_training_transform(name: str) -> None:
    transform = train_transform(SPEC, {"policy": name})
    assert any(isinstance(step, POLICIES[name]) for step in transform.transforms)
    image = Image.new("RGB", (40, 48), (120, 30, 200))
    out = transform(image)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 32, 32) and out.dtype == torch.float32


def test_a_policy_makes_the_transform_random_so_the_feature_cache_is_off_with_its_reason(tiny_net) -> None:
    schedule = make_schedule({"name": "feature_extraction"}, tiny_net("resnet18"))
    assert cache_eligible(schedule, {"policy": None}) == (True, "")  # eligible without it
    assert not is_deterministic({"policy": "randaugment"})
    eligible, reason = cache_eligible(schedule, {"policy": "randaugment"})
    assert not eligible
    assert "data.augment is on" in reason


def test_off_by_default_and_names_are_case_insensitive() -> None:
    assert validate_augment(None)["policy"] is None
    assert validate_augment({"policy": "RandAugment"})["policy"] == "randaugment"
    assert not any(isinstance(step, v2.RandAugment) for step in train_transform(SPEC, {}).transforms)


@pytest.mark.parametrize("value", ["randaug", 3, True])
def test_an_unknown_policy_lists_the_valid_names(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        validate_augment({"policy": value})
    assert "data.augment.policy" in info.value.message
    assert "randaugment, trivialaugment, autoaugment" in info.value.message
    assert "data.augment.policy=randaugment" in str(info.value.hint)
