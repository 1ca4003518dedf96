"""loss.label_smoothing and loss.class_weights: what they do to the training loss, and their checks."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ftcli.config.loss import LossOptions, loss_options
from ftcli.config.run_options import TrainingOptions
from ftcli.errors import ConfigError
from ftcli.finetune.phases import make_schedule
from ftcli.training.lightning_module import FineTuneModule
from ftcli.training.loss import imbalance_line, inverse_frequency, resolve_weights, train_loss

pytestmark = pytest.mark.usefixtures("single_thread")

OPTIMIZER = {"name": "adamw", "lr": 1e-3}
SCHEDULER = {"name": "none"}


def fixed_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Logits for 6 samples over 3 classes; the labels are imbalanced (four of class 0)."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3, generator=generator) * 2
    return logits, torch.tensor([0, 0, 0, 0, 1, 2])


def module(tiny_net: Any, loss: dict[str, Any] | None) -> FineTuneModule:
    net = tiny_net("resnet18")
    schedule = make_schedule({"name": "feature_extraction"}, net)
    meta = {"num_classes": 3, "class_names": ["a", "b", "c"]}
    return FineTuneModule(
        net, schedule, OPTIMIZER, SCHEDULER, meta, TrainingOptions(loss=loss_options(loss, 3))
    )


def step_loss(mod: FineTuneModule, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss training_step returns for one batch (logging needs no Trainer here)."""
    mod.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    return mod.training_step((x, y), 0).detach()


# --- label smoothing ---------------------------------------------------------------------------------


def test_label_smoothing_matches_the_closed_form() -> None:
    logits, y = fixed_batch()
    eps = 0.1
    log_p = F.log_softmax(logits, dim=1)
    nll = -log_p[torch.arange(len(y)), y]
    uniform = -log_p.mean(dim=1)  # cross-entropy against the uniform distribution over the 3 classes
    expected = ((1 - eps) * nll + eps * uniform).mean()
    got = train_loss(logits, y, LossOptions(label_smoothing=eps), None)
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, F.cross_entropy(logits, y))  # it did change the loss


def test_the_module_trains_on_the_smoothed_loss_and_validates_on_the_plain_one(tiny_net) -> None:
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0])
    plain, smoothed = module(tiny_net, None), module(tiny_net, {"label_smoothing": 0.2})
    plain.eval(), smoothed.eval()  # same weights (same seed), BN in eval mode: identical logits
    logits = plain(x).detach()
    assert torch.allclose(step_loss(plain, x, y), F.cross_entropy(logits, y), atol=1e-5)
    assert torch.allclose(
        step_loss(smoothed, x, y), F.cross_entropy(logits, y, label_smoothing=0.2), atol=1e-5
    )
    assert torch.allclose(smoothed.criterion(logits, y), F.cross_entropy(logits, y))  # val/test: plain
    assert smoothed.meta["loss"] == {"label_smoothing": 0.2, "class_weights": None}  # into the checkpoint


# --- class weights -----------------------------------------------------------------------------------


def test_class_weights_change_the_loss_of_an_imbalanced_batch() -> None:
    logits, y = fixed_batch()
    weights = torch.tensor([0.5, 2.0, 3.0])
    nll = -F.log_softmax(logits, dim=1)[torch.arange(len(y)), y]
    expected = (weights[y] * nll).sum() / weights[y].sum()  # the weighted mean torch defines
    got = train_loss(logits, y, LossOptions(class_weights=(0.5, 2.0, 3.0)), weights)
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, F.cross_entropy(logits, y), atol=1e-3)


def test_auto_weights_are_inverse_frequencies_with_mean_one() -> None:
    weights = inverse_frequency([6, 2, 1])
    assert weights == pytest.approx([0.3, 0.9, 1.8])  # proportional to 1/6, 1/2, 1/1
    assert sum(weights) / len(weights) == pytest.approx(1.0)
    assert inverse_frequency([5, 0, 5]) == pytest.approx([1.0, 0.0, 1.0])  # an absent class: weight 0


def test_explicit_weights_reach_the_module(tiny_net) -> None:
    mod = module(tiny_net, {"class_weights": [1, 2, 3]})
    assert mod.class_weight.tolist() == [1.0, 2.0, 3.0]
    assert "class_weight" not in mod.state_dict()  # not stored: checkpoints keep the same tensors


class LabelledData(L.LightningDataModule):
    """Random images with the given training labels; ``dataset("train").targets`` as the real ones."""

    def __init__(self, labels: list[int]) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(len(labels), 3, 32, 32, generator=generator)
        self.train = TensorDataset(x, torch.tensor(labels))
        self.train.targets = list(labels)  # type: ignore[attr-defined]

    def dataset(self, split: str) -> Dataset:
        return self.train

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=9)


def test_auto_weights_come_from_the_training_split_and_an_imbalance_is_announced(tiny_net, capsys) -> None:
    mod = module(tiny_net, {"class_weights": "auto"})
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(mod, datamodule=LabelledData([0] * 6 + [1] * 2 + [2]))
    assert mod.class_weight.tolist() == pytest.approx([0.3, 0.9, 1.8])
    assert "imbalanced training split (a 6, b 2, c 1)" in capsys.readouterr().out


def test_the_imbalance_line_only_from_a_ratio_of_two() -> None:
    names = ["cat", "dog"]
    assert imbalance_line([10, 6], names, weighted=False) is None
    line = imbalance_line([10, 5], names, weighted=False)
    assert line is not None and "cat 10, dog 5" in line and "loss.class_weights=auto" in line
    assert "class_weights" not in (imbalance_line([10, 5], names, weighted=True) or "")


def test_auto_without_labels_says_what_to_give_instead() -> None:
    with pytest.raises(ConfigError, match="one weight per class"):
        resolve_weights(LossOptions(class_weights="auto"), None)


# --- bad values --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1.0, 1.5, -0.1, "abc", True])
def test_label_smoothing_out_of_range_names_the_key_and_the_range(value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        loss_options({"label_smoothing": value}, 3)
    assert "loss.label_smoothing" in info.value.message and "from 0" in info.value.message
    assert "loss.label_smoothing=0.1" in str(info.value.hint)


@pytest.mark.parametrize("value", [[1, 2], [1, 2, 3, 4], [1, -1, 1], [0, 0, 0], ["a", "b", "c"]])
def test_class_weights_of_the_wrong_length_or_sign_name_the_number_of_classes(value: Any) -> None:
    with pytest.raises(ConfigError, match="3 classes") as info:
        loss_options({"class_weights": value}, 3)
    assert "[1,1,1]" in str(info.value.hint)


@pytest.mark.parametrize("value", ["sometimes", 2.0, {"a": 1}])
def test_class_weights_of_the_wrong_type_list_the_choices(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"null \(off\), auto"):
        loss_options({"class_weights": value}, 3)


def test_unknown_loss_keys_and_defaults() -> None:
    with pytest.raises(ConfigError, match=r"loss\.smoothing"):
        loss_options({"smoothing": 0.1}, 3)
    assert loss_options(None, 3) == LossOptions(0.0, None)
    assert loss_options({"label_smoothing": 0, "class_weights": None}, 3) == LossOptions(0.0, None)
    assert math.isclose(loss_options({"label_smoothing": 0.1}, 3).label_smoothing, 0.1)
