"""``ftcli inspect``: a dry run. Builds exactly what ``train`` would and shows it, trains nothing."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from ftcli import display, jobs
from ftcli.paths import config_dir


def inspect(cfg: DictConfig) -> float:
    """Print the data, the block plan (trainable/frozen, lr, BN, autograd) and the new head."""
    from ftcli.build import prepare

    prepared = prepare(cfg)
    display.show(display.data_line(prepared.datamodule.describe()))
    display.show(display.plan_table(prepared, float(cfg.optimizer.lr)))
    surgery = prepared.surgery
    removed = ", ".join(surgery.removed) or "none"
    display.show(
        f"recipe {surgery.recipe}: removed blocks: {removed} · features {surgery.feature_dim} -> "
        f"{' -> '.join(surgery.head)}"
    )
    spec = prepared.transform
    display.show(
        f"input: resize {spec.resize}, crop {spec.crop}, mean {tuple(spec.mean)}, std {tuple(spec.std)}"
    )
    return 0.0


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def main(cfg: DictConfig) -> float:
    return jobs.run_guarded(inspect, cfg)


if __name__ == "__main__":
    main()
