"""Property-based fuzzing of the composed config (Hypothesis, derandomized: the same examples every run).

For a key of the composed ``train`` config and a hostile value (wrong types, NaN/inf, huge or negative
numbers, ``maybe``, non-ASCII text, over-long paths, lists, mappings, null), the config is composed
once, the value set in-process, then the schema (``check_config``) and the cheap code that consumes
that key's group run as a start would. The result must be a clean start or an FtcliError naming the
key (exit 2 at the boundary): never another exception, and never a traceback at the boundary.
"""

from __future__ import annotations

import copy
import math
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, OmegaConf

from ftcli.command_line.config_groups import config_dir
from ftcli.command_line.hydra_errors import usage_error
from ftcli.config.schema import check_config
from ftcli.errors import FtcliError

from helpers.nets import make_net

FAST = ["model=resnet18", "data=digits", "data.image_size=32", "model.weights=null", "trainer=cpu"]
# Lightning's own Trainer arguments that ftcli passes through unchecked (left to Lightning), and the
# lrfind block (only in lrfind's config, checked against the strategy's phases).
NOT_FUZZED = (
    "trainer.devices",
    "trainer.strategy",
    "trainer.precision",
    "trainer.max_time",
    "trainer.gradient_clip_algorithm",
    "lrfind",
    "logger",
    "resume",
    "print_config",
)
EXTRA_KEYS = ["strategy.phases", "model.kwargs.bogus_arg", "data.augment.policy", "data.mean", "data.std"]

pytestmark = pytest.mark.usefixtures("single_thread")


def leaf_keys(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, Mapping) and node:
        return [k for key, value in node.items() for k in leaf_keys(value, f"{prefix}{key}.")]
    return [prefix.rstrip(".")]


@pytest.fixture(scope="module")
def base() -> DictConfig:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=[*FAST, "data.per_class=2"])


@pytest.fixture(scope="module")
def net() -> Any:
    return make_net("resnet18", num_classes=3)


def fuzzed_keys() -> list[str]:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=FAST)
    keys = leaf_keys(OmegaConf.to_container(cfg, resolve=True))
    keys = [k for k in keys if not k.startswith(NOT_FUZZED)]
    return sorted({*keys, *EXTRA_KEYS})


KEYS = fuzzed_keys()
WORDS = ["maybe", "abc", "nan", "inf", "-inf", "-1", "0", "1e30", "日本", "résnet18", "", "tpu", "auto",
         "null", "true", "x" * 5000, "/tmp/" + "y" * 300, "[]", "DEFAULT"]  # fmt: skip
SAFE_TEXT = st.text(st.characters(blacklist_characters="$\\", blacklist_categories=("Cs",)), max_size=12)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**31, 2**32, 2**63, 65536, 100000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    SAFE_TEXT,
)
HOSTILE = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.dictionaries(SAFE_TEXT, st.integers(-5, 5), max_size=2),
)


# ---------------------------------------------------------------------------- the start of a run, cheaply


def start(cfg: DictConfig, key: str, net: Any) -> None:
    """What a run does first with the group of ``key`` (no training, no images decoded)."""
    group = key.split(".")[0]
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)
    STARTS.get(group, lambda *_: None)(plain, key, net)


def _seed(plain: dict[str, Any], key: str, net: Any) -> None:
    import numpy as np

    torch.Generator().manual_seed(plain["seed"])
    np.random.default_rng(plain["seed"])


def _model(plain: dict[str, Any], key: str, net: Any) -> None:
    from ftcli.model import weights
    from ftcli.model.backbones import build_model, family_of

    family_of(plain["model"]["name"])
    weights.resolve(plain["model"]["name"], plain["model"].get("weights"))
    if key.startswith("model.kwargs"):
        build_model(plain["model"]["name"], dict(plain["model"].get("kwargs") or {}))


def _recipe(plain: dict[str, Any], key: str, net: Any) -> None:
    from ftcli.model.backbones import build_torchvision, to_blocknet
    from ftcli.model.surgery import apply_recipe

    hidden = plain["recipe"].get("hidden") or []
    if sum(hidden) > 4096:  # valid but big: allocating it is not what this test measures
        return
    fresh, block_map = to_blocknet(build_torchvision("resnet18", None), "resnet18")
    apply_recipe(fresh, block_map, plain["recipe"], 3)


def _strategy(plain: dict[str, Any], key: str, net: Any) -> None:
    from ftcli.finetune.phases import make_schedule

    if plain["strategy"].get("name") != "auto":  # resolved by the advisor before a run is planned
        schedule = make_schedule(plain["strategy"], net)
        for phase in schedule.phases:
            assert all(math.isfinite(b.lr_mult) for b in phase.blocks), phase


def _optimizer(plain: dict[str, Any], key: str, net: Any) -> None:
    from ftcli.training.optimizers import OPTIMIZERS

    parameter = torch.nn.Parameter(torch.zeros(2))
    OPTIMIZERS.get(plain["optimizer"]["name"])(
        [{"params": [parameter]}], plain["optimizer"]["lr"], plain["optimizer"]
    )


def _scheduler(plain: dict[str, Any], key: str, net: Any) -> None:
    from ftcli.training.schedulers import SCHEDULERS

    curve = SCHEDULERS.get(plain["scheduler"]["name"])(plain["scheduler"], lambda: (100, 10))
    assert all(math.isfinite(curve(step)) and curve(step) >= 0 for step in (0, 1, 50, 99))


def _trainer(plain: dict[str, Any], key: str, net: Any) -> None:
    from ftcli.device import check_accelerator, resolve_precision

    options = dict(plain["trainer"])  # its keys' types and ranges: the schema (check_config)
    check_accelerator(str(options["accelerator"]))
    resolve_precision(options.get("precision"), str(options["accelerator"]))


def _data(plain: dict[str, Any], key: str, net: Any) -> None:
    from ftcli.data.images.transforms import input_transform, train_transform
    from ftcli.data.sources import build_datamodule

    spec = input_transform(plain["data"], None)
    train_transform(spec, plain["data"].get("augment"))
    build_datamodule(plain["data"], spec, 42)


def _options(plain: dict[str, Any], key: str, net: Any) -> None:
    """The option blocks (loss, mixup, ema, early_stopping), as the pipeline checks them."""
    from ftcli.config.run_options import RunOptions

    RunOptions.from_cfg(plain, num_classes=10, phases=1)


STARTS: dict[str, Callable[[dict[str, Any], str, Any], None]] = {
    "seed": _seed,
    "model": _model,
    "recipe": _recipe,
    "strategy": _strategy,
    "optimizer": _optimizer,
    "scheduler": _scheduler,
    "trainer": _trainer,
    "data": _data,
    "loss": _options,
    "mixup": _options,
    "ema": _options,
    "early_stopping": _options,
}


def names_the_key(message: str, key: str) -> bool:
    """The message names the key (``model.kwargs.bogus_arg``: its ``model.kwargs`` is enough)."""
    parts = key.split(".")
    return any(".".join(parts[:n]) in message for n in range(len(parts), 1, -1)) or key in message


@settings(
    max_examples=300,
    derandomize=True,  # seeded by the test itself: the same examples on every run and machine
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(key=st.sampled_from(KEYS), value=HOSTILE)
def test_a_hostile_value_starts_cleanly_or_is_an_error_naming_its_key(
    key: str, value: Any, base: DictConfig, net: Any
) -> None:
    cfg = copy.deepcopy(base)
    OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    try:
        check_config(cfg)
        start(cfg, key, net)
    except FtcliError as err:
        assert err.exit_code == 2
        assert names_the_key(str(err), key), f"{key}={value!r}: {err}"
    except Exception as exc:
        converted = usage_error(exc)  # what the CLI's error boundary makes of it
        assert converted is not None, f"{key}={value!r}:\n{''.join(traceback.format_exception(exc))}"


def test_the_fuzzed_keys_cover_every_group() -> None:
    groups = {key.split(".")[0] for key in KEYS}
    assert {
        "seed",
        "model",
        "recipe",
        "strategy",
        "optimizer",
        "scheduler",
        "trainer",
        "data",
        "loss",
        "mixup",
        "ema",
        "early_stopping",
        "compile",
    } <= groups
    assert len(KEYS) >= 40


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(
    items=st.lists(
        st.text(
            st.characters(min_codepoint=0xA0, blacklist_categories=("Cs", "Z", "C")), min_size=1, max_size=6
        ),
        min_size=1,
        max_size=3,
    ),
    sweep=st.booleans(),
)
def test_an_unquoted_non_ascii_item_is_an_error_whose_hint_parses(items: list[str], sweep: bool) -> None:
    """``data.classes=[é]`` (or a sweep ``a,é``): Hydra's lexer refuses it; ftcli says to quote it, and
    the override its hint shows gives back exactly the items typed."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    sweep = sweep and len(items) > 1
    override = "data.classes=" + (",".join(items) if sweep else f"[{','.join(items)}]")
    parser = OverridesParser.create()
    with pytest.raises(OverrideParseException) as raised:
        parser.parse_overrides([override])  # as Hydra parses the command line
    err = usage_error(raised.value)
    assert err is not None and err.exit_code == 2
    assert err.message.startswith(f"{override} is not valid: ") and "quoted" in err.message
    suggested = err.hint.split("'", 1)[1].rsplit("'", 1)[0]
    parsed = parser.parse_override(suggested)
    values = [getattr(v, "text", v) for v in parsed.sweep_iterator()] if sweep else parsed.value()
    assert values == items, (override, suggested)
