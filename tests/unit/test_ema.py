"""The EMA of the weights (training/callbacks/ema.py): the documented recurrence, and restarts at phase
changes."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ftcli.config.ema import ema_options
from ftcli.errors import ConfigError
from ftcli.finetune.phases import make_schedule
from ftcli.training.callbacks.ema import PhaseAwareEMA, ema_decay
from ftcli.training.lightning_module import FineTuneModule


class RawWeights(L.Callback):
    """The raw parameters after every optimizer step."""

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps.append({k: v.detach().clone() for k, v in pl_module.model.named_parameters()})


class AtEpochStart(L.Callback):
    """The averaged and raw state of every block at the start of each epoch (after the EMA's own hook)."""

    def __init__(self, ema: PhaseAwareEMA) -> None:
        self.ema = ema
        self.seen: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        averaged = {k[6:]: v.clone() for k, v in self.ema.averaged_state().items() if k.startswith("model.")}
        self.seen.append((averaged, {k: v.clone() for k, v in pl_module.model.state_dict().items()}))


def fit(net, strategy: dict, epochs: int, callbacks: list[L.Callback], batch: int = 4) -> FineTuneModule:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 32, 32, generator=generator)
    loader = DataLoader(TensorDataset(x, torch.arange(8) % 3), batch_size=batch)
    module = FineTuneModule(
        net, make_schedule(strategy, net), {"name": "sgd", "lr": 0.05}, {"name": "none"}, {"num_classes": 3}
    )
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )
    trainer.fit(module, train_dataloaders=loader)
    return module


def test_the_average_follows_the_documented_recurrence_and_differs_from_the_raw_weights(tiny_net) -> None:
    options = ema_options({"enabled": True, "decay": 0.9, "warmup": True})
    ema, raw = PhaseAwareEMA(options), RawWeights()
    module = fit(tiny_net("resnet18"), {"name": "full"}, 1, [raw, ema], batch=2)
    expected = dict(raw.steps[0])  # ema_1 = w_1
    for k, weights in enumerate(raw.steps[1:], start=2):
        d = min(0.9, k / (k + 9))
        assert d == ema_decay(0.9, True, k)
        expected = {name: d * expected[name] + (1 - d) * weights[name] for name in expected}
    averaged = {k[6:]: v for k, v in ema.averaged_state().items() if k.startswith("model.")}
    last = raw.steps[-1]
    for name in expected:
        assert torch.allclose(averaged[name], expected[name], atol=1e-6), name
    assert any(not torch.allclose(averaged[n], last[n]) for n in expected)  # not the raw weights
    # ema.evaluate=true: the run ends with the averaged weights
    final = dict(module.model.named_parameters())
    assert all(torch.equal(final[n], averaged[n]) for n in expected)


@pytest.mark.slow
def test_blocks_a_phase_unfreezes_restart_from_their_current_values(tiny_net) -> None:
    # bn=train: the frozen backbone's BatchNorm statistics move during the probe, so its average lags them
    options = ema_options({"enabled": True, "decay": 0.99, "warmup": False})
    ema = PhaseAwareEMA(options)
    seen = AtEpochStart(ema)
    lp_ft = {"name": "lp_ft", "probe_epochs": 1, "bn": "train"}
    fit(tiny_net("resnet18"), lp_ft, 2, [ema, seen])
    averaged, current = seen.seen[1]  # epoch 1: the fine-tune phase has just begun
    stat = "blocks.stage4.0.bn1.running_mean"
    assert stat in averaged
    for name, value in current.items():
        if name.startswith(("blocks.stem", "blocks.stage")):
            assert torch.equal(averaged[name].to(value.dtype), value), name


@pytest.mark.parametrize("cfg", [{"decay": 1.0}, {"decay": 0}, {"enabled": "yes"}, {"momentum": 0.9}])
def test_bad_values_are_config_errors(cfg) -> None:
    with pytest.raises(ConfigError, match="ema"):
        ema_options(cfg)
