"""``resume=``: continue an interrupted run from a checkpoint, in a run directory of its own.

``resume=PATH`` takes a ``last.ckpt`` (or a run directory holding one); ``resume=last`` finds the
newest earlier run whose resolved config equals this one (``resume`` itself aside). Lightning
restores the epoch, the optimizer and the scheduler; the phase follows from the epoch. The earlier
run's directory is only read, never written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ftcli.errors import ConfigError
from ftcli.model.weights_file import read_file
from ftcli.runs import checkpoint_schema

LAST = "last"
IGNORED_KEYS = ("resume", "print_config")


@dataclass(frozen=True)
class ResumePoint:
    """A checkpoint to continue from, and where it stands."""

    path: Path
    epoch: int
    global_step: int
    phase: dict[str, Any]

    def describe(self) -> str:
        where = f"after epoch {self.epoch} (step {self.global_step})"
        if self.phase and self.phase.get("count", 1) > 1:
            where += (
                f", phase {self.phase['index'] + 1}/{self.phase['count']} ({self.phase.get('label', '')})"
            )
        return f"resuming from {self.path} {where}"


def resolve(
    value: Any, cfg: DictConfig, run_dir: Path, block_names: list[str], num_classes: int
) -> ResumePoint | None:
    """The checkpoint ``resume=`` names, checked against the network this config builds."""
    if value is None or str(value) in ("", "null", "none"):
        return None
    path = find_last(cfg, run_dir) if str(value) == LAST else _checkpoint_path(Path(str(value)).expanduser())
    loaded = read_file(path)
    trained = checkpoint_schema.is_ftcli_checkpoint(loaded)
    if not trained or "loops" not in loaded or "optimizer_states" not in loaded:
        raise ConfigError(
            f"resume={value}: {path} is not a training checkpoint written by `ftcli train`.",
            "Give a last.ckpt from an ftcli run directory (to start from its weights: model.weights=PATH).",
        )
    meta = checkpoint_schema.read(loaded, path, needs=checkpoint_schema.FOR_RESUME)
    checkpoint_schema.check_optimizer_states(loaded, path)
    if (
        list(meta.get(checkpoint_schema.BLOCKS, [])) != list(block_names)
        or int(meta.get(checkpoint_schema.NUM_CLASSES, -1)) != num_classes
    ):
        raise ConfigError(
            f"resume={value}: {path} was trained with blocks {meta.get(checkpoint_schema.BLOCKS)} and "
            f"{meta.get(checkpoint_schema.NUM_CLASSES)} classes;\n"
            f"this config builds {block_names} with {num_classes} classes.",
            "Resume with the same model, recipe and data as the interrupted run.",
        )
    for key in ("epoch", "global_step"):
        stored = loaded.get(key, 0)
        if isinstance(stored, bool) or not isinstance(stored, int) or stored < 0:
            raise ConfigError(
                f"resume={value}: {path}: the checkpoint's {key} is {stored!r:.40}, not a whole number >= 0.",
                checkpoint_schema.DAMAGED_HINT,
            )
    return ResumePoint(
        path,
        int(loaded.get("epoch", 0)),
        int(loaded.get("global_step", 0)),
        meta.get(checkpoint_schema.PHASE) or {},
    )


def _checkpoint_path(path: Path) -> Path:
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt" if (path / "checkpoints").is_dir() else path / "last.ckpt"
    if not path.is_file():
        raise ConfigError(
            f"resume: no checkpoint at {path}.",
            "Give a last.ckpt, a run directory (outputs/DATE/TIME), or resume=last for the newest run "
            "with this config.",
        )
    return path


def find_last(cfg: DictConfig, run_dir: Path) -> Path:
    """The newest ``last.ckpt`` of an earlier run with the same resolved config."""
    wanted = comparable(OmegaConf.to_container(cfg, resolve=True))
    roots = {Path("outputs").resolve(), Path("multirun").resolve(), run_dir.resolve().parents[1]}
    candidates = []
    looked = 0
    for root in roots:
        for ckpt in root.glob("**/checkpoints/last.ckpt") if root.is_dir() else []:
            run = ckpt.parent.parent
            if run.resolve() == run_dir.resolve() or not (run / "config.yaml").is_file():
                continue
            looked += 1
            if comparable(OmegaConf.to_container(OmegaConf.load(run / "config.yaml"))) == wanted:
                candidates.append(ckpt)
    if not candidates:
        searched = ", ".join(sorted(str(r) for r in roots))
        raise ConfigError(
            f"resume=last: none of the {looked} earlier runs with a last.ckpt under {searched} "
            "has this config.",
            "Pass the checkpoint itself: resume=outputs/DATE/TIME/checkpoints/last.ckpt",
        )
    return max(candidates, key=lambda p: p.stat().st_mtime)


def comparable(config: Any) -> Any:
    """A resolved config without the keys that may differ between a run and its resumption."""
    if isinstance(config, dict):
        return {k: v for k, v in config.items() if k not in IGNORED_KEYS}
    return config
