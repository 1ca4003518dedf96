"""The typed config schema (``ftcli.config.schema``): every hostile value of issue 17 is a
ConfigError naming the key and what is allowed, checked right after composition, and every shipped
option of every config group passes it."""

from __future__ import annotations

from typing import Any

import pytest
from hydra import compose, initialize_config_dir

from ftcli.command_line.config_groups import config_dir
from ftcli.command_line.hydra_args import overrides_first, quote_non_ascii
from ftcli.config.early_stopping import early_stopping_options
from ftcli.config.ema import ema_options
from ftcli.config.lrfind import range_options
from ftcli.config.mixup import mix_options
from ftcli.config.schema import check_config
from ftcli.data.images.transforms import validate_augment
from ftcli.errors import ConfigError, FtcliError

FAST = ["model=resnet18", "data=digits", "data.image_size=32", "model.weights=null", "trainer=cpu"]

# (overrides, the key the message must name, a fragment of what is allowed)
HOSTILE = [
    ("data.image_size=abc", "data.image_size", "whole number"),
    ("data.image_size=[1,2,3]", "data.image_size", "whole number"),
    ("data.mean=abc", "data.mean", "list of 3"),
    ("seed=abc", "seed", "whole number"),
    ("seed=-1", "seed", "from 0 to"),
    ("seed=1e30", "seed", "whole number"),
    ("optimizer.lr=abc", "optimizer.lr", "finite number"),
    ("optimizer.betas=0.9", "optimizer.betas", "list of 2"),
    ("optimizer.betas=[2,3]", "optimizer.betas", "below 1"),
    ("model.kwargs=5", "model.kwargs", "mapping"),
    ("model.layers_per_block=0", "model.layers_per_block", "auto or a whole number from 1"),
    ("model.layers_per_block=two", "model.layers_per_block", "transformer layers per block"),
    ("optimizer.weight_decay=-1", "optimizer.weight_decay", "from 0"),
    ("optimizer=sgd optimizer.momentum=-1", "optimizer.momentum", "from 0"),
    ("scheduler.warmup_epochs=-1", "scheduler.warmup_epochs", ">= 0"),
    ("scheduler.min_lr_ratio=2", "scheduler.min_lr_ratio", "from 0 to 1"),
    ("scheduler.min_lr_ratio=nan", "scheduler.min_lr_ratio", "finite"),
    ("data.image_size=0", "data.image_size", "from 1"),
    ("data.image_size=100000", "data.image_size", "to 2048"),
    ("recipe=mlp recipe.hidden=[1000000000000]", "recipe.hidden", "65536"),
    ("recipe=mlp recipe.hidden=[65536,65536]", "recipe.hidden", "parameters"),
    ("data.batch_size=65536 data.image_size=2048", "data.batch_size", "GiB"),
    ("strategy.backbone_lr_mult=nan", "strategy.backbone_lr_mult", "finite"),
    ("strategy.backbone_lr_mult=inf", "strategy.backbone_lr_mult", "finite"),
    ("strategy.lr_decay=1e30", "strategy.lr_decay", "from 0 to 1"),
    ("strategy=lp_ft strategy.ft_lr_mult=nan", "strategy.ft_lr_mult", "finite"),
    ("data.mean=[nan,nan,nan]", "data.mean", "finite"),
    ("strategy.pretrained=maybe", "strategy.pretrained", "true or false"),
    ("compile=maybe", "compile", "true or false"),
    ("trainer.deterministic=maybe", "trainer.deterministic", "true, false or warn"),
    ("+strategy.phases=[]", "strategy.phases", "non-empty list"),
    ("trainer.accelerator=tpu", "trainer.accelerator", "auto, cpu, gpu, cuda"),
    (f"data=imagefolder data.root=/{'x' * 5000}", "data.root", "255"),
    (f"model.weights=/tmp/{'w' * 300}.pt", "model.weights", "4,096"),
]


def composed(*overrides: str) -> Any:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=overrides_first([*FAST, *overrides]))


@pytest.mark.parametrize(("overrides", "key", "allowed"), HOSTILE, ids=[row[0][:40] for row in HOSTILE])
def test_a_hostile_value_names_the_key_the_value_and_what_is_allowed(
    overrides: str, key: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as err:
        check_config(composed(*overrides.split()))
    assert key in err.value.message and allowed in err.value.message, err.value.message


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ("model.name=résnet18", ["Unknown model 'résnet18'", "Valid model names"]),
        ("data.val_fraction=日本", ["data.val_fraction", "日本"]),
        ("+model.kwargs.bogus_arg=1", ["model.kwargs.bogus_arg", "not accepted by the builder of resnet18"]),
    ],
)
def test_names_and_kwargs_are_checked_by_the_pipeline(overrides: str, fragments: list[str]) -> None:
    from ftcli.pipeline import plan_run

    with pytest.raises(FtcliError) as err:
        plan_run(composed(overrides, "data.per_class=2"))
    for fragment in fragments:
        assert fragment in str(err.value)


def test_non_ascii_values_are_quoted_for_hydra_and_the_rest_left_alone() -> None:
    assert quote_non_ascii("model.name=résnet18") == "model.name='résnet18'"
    assert quote_non_ascii("model.name=resnet18") == "model.name=resnet18"
    assert quote_non_ascii("data.classes=[chat,chién]") == "data.classes=[chat,chién]"  # a list stays a list
    assert quote_non_ascii("model.name=é,b") == "model.name=é,b"  # a sweep stays a sweep
    assert quote_non_ascii("-m") == "-m"


def test_keys_the_schema_does_not_know_are_left_alone() -> None:
    check_config(composed("+trainer.some_new_key=whatever", "+data.augment.new_knob=3", "+brand_new=[1]"))
    check_config({"seed": 1})  # a partial config: missing keys are not the schema's business


def test_an_unresolvable_interpolation_is_left_to_whoever_reads_it() -> None:
    check_config(composed("model.weights=${source_checkpoint}", "+source_checkpoint=???"))


def test_the_dry_run_refuses_before_building_anything() -> None:
    from ftcli.commands.inspect_run import inspect

    with pytest.raises(ConfigError, match=r"strategy\.pretrained"):
        inspect(composed("strategy.pretrained=maybe"))


def test_a_path_too_long_for_the_file_system_is_a_user_error_at_the_boundary() -> None:
    import errno

    from ftcli.command_line.hydra_errors import usage_error

    err = usage_error(OSError(errno.ENAMETOOLONG, "File name too long", "x" * 5000))
    assert isinstance(err, ConfigError) and "too long" in err.message and "5000 characters" in err.message


@pytest.mark.parametrize(
    ("read", "block", "expected"),
    [
        (lambda c: ema_options(c), "ema", "Unknown ema key(s): ema.colour."),
        (lambda c: mix_options(c), "mixup", "Unknown mixup key(s): mixup.colour."),
        (lambda c: range_options(c, 1), "lrfind", "Unknown lrfind key(s): lrfind.colour."),
        (lambda c: early_stopping_options(c), "early_stopping", "Unknown key(s): early_stopping.colour."),
        (lambda c: validate_augment(c), "data.augment", "Unknown augmentation key(s): data.augment.colour."),
    ],
)
def test_a_typo_in_a_block_key_is_refused_with_the_valid_keys(read: Any, block: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read({"colour": 1})
    assert caught.value.message == expected
    assert caught.value.hint is not None and caught.value.hint.startswith("Valid keys: ")
    assert "colour" not in caught.value.hint


LIGHTNING_HOSTILE = [
    ("trainer.devices=0", "trainer.devices", "a number of devices >= 1"),
    ("trainer.devices=[0,0]", "trainer.devices", "distinct device indices"),
    ("trainer.devices=many", "trainer.devices", "auto, -1"),
    ("trainer.strategy=dpp", "trainer.strategy", "ddp_spawn"),
    ("trainer.precision=8", "trainer.precision", "bf16-mixed"),
    ("trainer.max_time=12h", "trainer.max_time", "DD:HH:MM:SS"),
    ("trainer.max_time={hour:1}", "trainer.max_time", "hours"),
    ("trainer.gradient_clip_algorithm=l2", "trainer.gradient_clip_algorithm", "norm or value"),
]


@pytest.mark.parametrize(
    ("overrides", "key", "allowed"), LIGHTNING_HOSTILE, ids=[r[0] for r in LIGHTNING_HOSTILE]
)
def test_a_bad_lightning_pass_through_value_is_refused_before_the_trainer(
    overrides: str, key: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as err:
        check_config(composed(overrides))
    assert f"{key}=" in err.value.message and allowed in err.value.message, err.value.message


@pytest.mark.parametrize(
    "overrides",
    [
        "trainer.devices=auto",
        "trainer.devices=-1",
        "trainer.devices=4",
        "trainer.devices=[0,1]",
        "trainer.devices='0,1'",
        "trainer.strategy=ddp_spawn",
        "trainer.strategy=fsdp",
        "trainer.precision=auto",
        "trainer.precision=16-mixed",
        "trainer.precision=32",
        "trainer.precision=bf16",
        "trainer.precision=null",
        "trainer.max_time=00:12:00:00",
        "trainer.max_time={hours:1,minutes:30}",
        "trainer.max_time=null",
        "trainer.gradient_clip_algorithm=value",
        "trainer.gradient_clip_algorithm=null",
    ],
)
def test_the_values_lightning_accepts_pass(overrides: str) -> None:
    check_config(composed(overrides))


def test_the_written_out_lightning_values_match_the_installed_lightning() -> None:
    from typing import get_args

    from lightning.fabric.connector import (
        _PRECISION_INPUT_INT,
        _PRECISION_INPUT_STR,
        _PRECISION_INPUT_STR_ALIAS,
    )
    from lightning.pytorch.strategies import StrategyRegistry
    from lightning.pytorch.utilities import GradClipAlgorithmType

    from ftcli.config import lightning_values

    assert set(lightning_values.LIGHTNING_STRATEGIES) == {"auto", *StrategyRegistry.available_strategies()}
    lightning = {*get_args(_PRECISION_INPUT_STR), *get_args(_PRECISION_INPUT_STR_ALIAS)}
    assert set(lightning_values.LIGHTNING_PRECISIONS) == {"auto", *lightning}
    assert set(lightning_values.PRECISION_INTS) == set(get_args(_PRECISION_INPUT_INT))
    assert set(lightning_values.GRADIENT_CLIP_ALGORITHMS) == set(GradClipAlgorithmType.supported_types())
