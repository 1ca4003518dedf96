"""trainer.* values of the wrong type or range are named before Lightning sees them (the schema)."""

from __future__ import annotations

import pytest

from ftcli.config.schema import check_config
from ftcli.errors import ConfigError


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("max_epochs", "abc", "whole number >= -1"),
        ("max_epochs", -3, "whole number >= -1"),
        ("max_epochs", 2.5, "whole number >= -1"),
        ("max_steps", True, "whole number >= -1"),
        ("accumulate_grad_batches", 0, "whole number >= 1"),
        ("limit_train_batches", 1.5, "fraction from 0.0 to 1.0"),
        ("limit_val_batches", "all", "fraction from 0.0 to 1.0"),
        ("gradient_clip_val", -1, "number >= 0"),
        ("val_check_interval", 0, "fraction of an epoch"),
        ("enable_progress_bar", "yes", "true or false"),
    ],
)
def test_wrong_values_are_named(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        check_config({"trainer": {key: value}})
    shown = str(value).lower() if isinstance(value, bool) else repr(value)
    assert f"trainer.{key}={shown}" in str(err.value) and expected in str(err.value)


def test_the_shipped_presets_and_common_values_pass(compose_train) -> None:
    for preset in ("default", "cpu", "ddp", "gpu"):
        check_config({"trainer": dict(compose_train(f"trainer={preset}").trainer)})
    check_config({"trainer": {"max_epochs": None, "limit_train_batches": 2, "val_check_interval": 0.5}})
