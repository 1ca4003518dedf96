"""Early stopping (``early_stopping.*``): Lightning's EarlyStopping, made aware of the phases.

A multi-phase strategy (gradual, lp_ft) first trains only the head. Validation accuracy often
plateaus there, by design: the head has learned what the frozen features allow, and the gain comes
when the backbone unfreezes. So by default no stop happens inside a phase that trains only the head
while a later phase trains backbone blocks (``during_head_only_phases: false``), and patience counts
again from each phase boundary (a new phase changes what trains). ``best.ckpt`` is unaffected: it
stays the best validation accuracy of the epochs that ran (``training/callbacks/best_and_last.py``).
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from torch import Tensor

from ftcli.config.early_stopping import EarlyStoppingOptions
from ftcli.errors import ConfigError
from ftcli.finetune.freeze_plan import Schedule
from ftcli.model.blocks import HEAD


def head_only_before_backbone(schedule: Schedule, index: int) -> bool:
    """Whether phase ``index`` trains nothing but the head while a later phase trains backbone blocks."""

    def trains_backbone(phase_index: int) -> bool:
        return any(b.updates for b in schedule.phases[phase_index].blocks if b.name != HEAD)

    later = range(index + 1, len(schedule.phases))
    return not trains_backbone(index) and any(trains_backbone(i) for i in later)


class PhaseAwareEarlyStopping(EarlyStopping):
    """EarlyStopping that holds off inside head-only phases and restarts its patience at each phase."""

    def __init__(
        self,
        monitor: str = "val/acc",
        mode: str = "max",
        patience: int = 3,
        min_delta: float = 0.0,
        during_head_only_phases: bool = False,
    ) -> None:
        super().__init__(monitor=monitor, mode=mode, patience=patience, min_delta=min_delta, strict=True)
        self.during_head_only_phases = during_head_only_phases
        self.phase: int | None = None  # the phase of the last check (saved, so a resumed run keeps its count)
        self.held_phases: list[str] = []
        # the outcome, kept at the end of fit: trainer.test(ckpt_path=best) reloads the callback's state
        # as it was when best.ckpt was written
        self.outcome: dict[str, Any] | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        schedule = module_schedule(pl_module)
        if schedule is not None and not self.during_head_only_phases:
            self.held_phases = [
                f"{p.index + 1} ({p.label})" if p.label else str(p.index + 1)
                for p in schedule.phases
                if head_only_before_backbone(schedule, p.index)
            ]
        held = f"; never inside head-only phase {', '.join(self.held_phases)}" if self.held_phases else ""
        pl_module.print(
            f"early stopping: on · {self.monitor} ({self.mode}), patience {self.patience}, "
            f"min_delta {abs(self.min_delta):g}{held}"
        )

    def _run_early_stopping_check(self, trainer: L.Trainer) -> None:
        schedule = module_schedule(trainer.lightning_module)
        if schedule is not None:
            index = schedule.phase_index(trainer.current_epoch)
            if index != self.phase:
                self.phase = index
                self.wait_count = 0
            if not self.during_head_only_phases and head_only_before_backbone(schedule, index):
                return
        super()._run_early_stopping_check(trainer)

    def _validate_condition_metric(self, logs: dict[str, Tensor]) -> bool:
        if self.monitor not in logs:
            logged = ", ".join(sorted(logs)) or "nothing"
            raise ConfigError(
                f"early_stopping.monitor={self.monitor} is not logged by this run "
                f"(logged: {logged}); validation may be off or empty.",
                "Monitor a logged metric, e.g. early_stopping.monitor=train/loss, or switch validation on.",
            )
        return True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.outcome = self.summary()
        if self.stopped:
            pl_module.print(f"early stopping after epoch {self.stopped_epoch}: {self.reason()}")

    @property
    def stopped(self) -> bool:
        return self.stopping_reason != EarlyStoppingReason.NOT_STOPPED

    def reason(self) -> str:
        """Why training stopped (or did not), in one sentence."""
        if not self.stopped:
            return f"not stopped: {self.monitor} never went {self.patience} validation(s) without improving"
        if self.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED:
            since = " outside the head-only phases" if self.held_phases else ""
            return (
                f"{self.monitor} did not improve by more than {abs(self.min_delta):g} for {self.wait_count} "
                f"validation(s) (patience {self.patience}); best{since} {float(self.best_score):.4f}"
            )
        return (self.stopping_reason_message or str(self.stopping_reason.value)).replace(
            " Signaling Trainer to stop.", ""
        )

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` records: whether it stopped, after which (0-based) epoch, and why."""
        return {
            "stopped": self.stopped,
            "epoch": self.stopped_epoch if self.stopped else None,
            "reason": self.reason(),
            "monitor": self.monitor,
            "mode": self.mode,
            "patience": self.patience,
            "held_phases": list(self.held_phases),
        }

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "phase": self.phase}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.phase = state_dict.get("phase")


def module_schedule(module: Any) -> Schedule | None:
    schedule = getattr(module, "schedule", None)
    return schedule if isinstance(schedule, Schedule) else None


def early_stopping(options: EarlyStoppingOptions) -> PhaseAwareEarlyStopping | None:
    """The callback for ``early_stopping.*`` (checked in ``ftcli.config.early_stopping``); None when off."""
    if not options.enabled:
        return None
    return PhaseAwareEarlyStopping(
        monitor=options.monitor,
        mode=options.resolved_mode,
        patience=options.patience,
        min_delta=options.min_delta,
        during_head_only_phases=options.during_head_only_phases,
    )


def stop_summary(trainer: L.Trainer) -> dict[str, Any] | None:
    """The early-stopping record of a finished fit (``RunSummary.early_stopping``); None when it was off."""
    callback = next((c for c in trainer.callbacks if isinstance(c, PhaseAwareEarlyStopping)), None)
    if callback is None:
        return None
    return callback.outcome or callback.summary()
