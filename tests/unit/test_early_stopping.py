"""early_stopping: stops on a plateau, never inside a head-only phase of gradual or lp_ft."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ftcli.config.early_stopping import early_stopping_options
from ftcli.errors import ConfigError
from ftcli.finetune.phases import make_schedule
from ftcli.runs.summary import RunSummary
from ftcli.training.callbacks.early_stopping import PhaseAwareEarlyStopping, early_stopping, stop_summary
from ftcli.training.lightning_module import FineTuneModule
from ftcli.training.trainer import build_trainer

pytestmark = pytest.mark.usefixtures("single_thread")

MAX_EPOCHS = 10


def loaders() -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 32, 32, generator=generator)
    y = torch.randint(0, 3, (8,), generator=generator)
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=4), DataLoader(data, batch_size=8)


def fit(
    tiny_net: Any, tmp_path: Path, strategy: dict[str, Any], stopping: dict[str, Any], lr: float = 1e-3
) -> tuple[Any, Any, FineTuneModule]:
    """Fit a tiny net through build_trainer (the real callbacks) with ``early_stopping``."""
    net = tiny_net("resnet18")
    schedule = make_schedule(strategy, net)
    module = FineTuneModule(net, schedule, {"name": "adamw", "lr": lr}, {"name": "none"}, {"num_classes": 3})
    trainer_cfg = {
        "accelerator": "cpu",
        "precision": "32-true",
        "max_epochs": MAX_EPOCHS,
        "enable_progress_bar": False,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": 1,
    }
    stopper = early_stopping(early_stopping_options({"enabled": True, **stopping}))
    trainer, checkpoint, _ = build_trainer(
        trainer_cfg, tmp_path, multi_phase=len(schedule.phases) > 1, extra_callbacks=[stopper]
    )
    train, val = loaders()
    trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
    return trainer, checkpoint, module


def test_a_plateau_ends_the_run_before_max_epochs_and_the_summary_says_why(tiny_net, tmp_path) -> None:
    # Only the head trains, at a rate too small to move a float32 weight: val/acc is exactly flat.
    trainer, checkpoint, _ = fit(
        tiny_net, tmp_path, {"name": "feature_extraction"}, {"patience": 2}, lr=1e-12
    )
    assert trainer.current_epoch < MAX_EPOCHS
    record = stop_summary(trainer)
    assert record is not None and record["stopped"] is True
    assert record["epoch"] == 2  # epoch 0 sets the best; 1 and 2 do not improve: patience 2 used up
    assert "val/acc did not improve" in record["reason"] and "patience 2" in record["reason"]
    assert record["held_phases"] == []  # one phase only: nothing to hold back
    # best.ckpt is still the best epoch's checkpoint
    assert Path(checkpoint.best_model_path).name == "best.ckpt"
    assert Path(checkpoint.best_model_path).is_file()
    # and the run's summary can carry it
    assert RunSummary(**_summary_fields(), early_stopping=record).early_stopping == record


STRATEGIES = {
    "gradual": {"name": "gradual", "every": 3},  # epochs 0-2 head only, then stage4 from epoch 3
    "lp_ft": {"name": "lp_ft", "probe_epochs": 3},  # epochs 0-2 probe, then everything from epoch 3
}


@pytest.mark.slow  # fits a network through every phase (1-3 s each on 2 cores)
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_no_stop_inside_the_head_only_phase_of_a_phased_strategy(tiny_net, tmp_path, name: str) -> None:
    # min_delta 1.0: accuracy can never improve by that much, so every check after the first is a miss.
    trainer, _, module = fit(tiny_net, tmp_path, STRATEGIES[name], {"patience": 1, "min_delta": 1.0})
    record = stop_summary(trainer)
    assert record is not None and record["stopped"]
    # epochs 0-2 are held; epoch 3 (first backbone epoch) sets the best, epoch 4 misses: stop there
    assert record["epoch"] == 4
    assert module.schedule.phase_index(record["epoch"]) == 1
    assert record["held_phases"] and record["held_phases"][0].startswith("1")


def test_a_key_allows_stopping_inside_the_head_only_phase(tiny_net, tmp_path) -> None:
    stopping = {"patience": 1, "min_delta": 1.0, "during_head_only_phases": True}
    trainer, _, _ = fit(tiny_net, tmp_path, STRATEGIES["lp_ft"], stopping)
    record = stop_summary(trainer)
    assert record is not None and record["stopped"] and record["epoch"] == 1  # inside the probe phase


def test_off_by_default_and_no_record() -> None:
    assert early_stopping(early_stopping_options(None)) is None
    assert early_stopping(early_stopping_options({"enabled": False, "monitor": "val/acc"})) is None


def test_mode_follows_the_metric_unless_given() -> None:
    assert early_stopping(early_stopping_options({"enabled": True})).mode == "max"
    assert early_stopping(early_stopping_options({"enabled": True, "monitor": "val/loss"})).mode == "min"
    callback = early_stopping(early_stopping_options({"enabled": True, "monitor": "val/loss", "mode": "max"}))
    assert isinstance(callback, PhaseAwareEarlyStopping) and callback.mode == "max"


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("monitor", "val/accuracy", "one of val/acc, val/loss"),
        ("mode", "up", "auto"),
        ("patience", 0, "whole number >= 1"),
        ("patience", 2.5, "whole number >= 1"),
        ("min_delta", -0.1, "number >= 0"),
        ("min_delta", "small", "number >= 0"),
        ("during_head_only_phases", "no", "true or false"),
        ("enabled", "yes", "true or false"),
    ],
)
def test_bad_values_name_the_key_what_is_expected_and_an_example(key: str, value: Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        early_stopping_options({"enabled": True, key: value})
    assert f"early_stopping.{key}={value!r}" in info.value.message and fragment in info.value.message
    assert f"For example early_stopping.{key}=" in str(info.value.hint)


def test_a_bad_value_is_reported_even_while_it_is_off() -> None:
    with pytest.raises(ConfigError, match=r"^early_stopping\.monitor='val/accuracy'"):
        early_stopping_options({"enabled": False, "monitor": "val/accuracy"})


def test_an_unknown_key_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"early_stopping\.patient\b") as info:
        early_stopping_options({"enabled": True, "patient": 3})
    assert "patience" in str(info.value.hint)


def _summary_fields() -> dict[str, Any]:
    return {
        "run_dir": ".",
        "model": "resnet18",
        "strategy": "feature_extraction",
        "recipe": "linear",
        "data": "digits",
        "weights": "none",
        "best_val_acc": None,
        "test_acc": None,
        "trainable_params": 0,
        "total_params": 0,
        "epochs": 0,
        "wall_seconds": 0.0,
        "fit_seconds": 0.0,
        "images_per_second": 0.0,
    }
