"""Compose a run from its config: weights -> transforms -> data -> backbone -> surgery -> freeze plan.

``train`` and ``inspect`` both call ``prepare``, so the dry run shows exactly what training builds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ftcli import weights as weights_lib
from ftcli.backbones import build_torchvision, family_of, to_blocknet
from ftcli.blocks import BlockNet
from ftcli.data import ImageDataModule, build_datamodule
from ftcli.errors import ConfigError
from ftcli.strategies import FreezePlan, Schedule, apply_plan, make_schedule
from ftcli.surgery import SurgeryReport, apply_recipe
from ftcli.transforms import TransformSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 224


@dataclass
class Prepared:
    """Everything a run needs before the Trainer exists."""

    net: BlockNet
    schedule: Schedule
    surgery: SurgeryReport
    datamodule: ImageDataModule
    transform: TransformSpec
    weights_label: str
    source_meta: dict[str, Any] = field(default_factory=dict)

    @property
    def plan(self) -> FreezePlan:
        """The first phase's plan: what the network looks like when training starts."""
        return self.schedule.first

    def checkpoint_meta(self, cfg: DictConfig) -> dict[str, Any]:
        """The self-description stored in every checkpoint (plain types: loads with weights_only)."""
        from ftcli import __version__

        return {
            "version": __version__,
            "class_names": list(self.datamodule.class_names),
            "num_classes": self.datamodule.num_classes,
            "model": {**_plain(cfg.model), "family": self.net.family, "weights_used": self.weights_label},
            "recipe": _plain(cfg.recipe),
            "strategy": _plain(cfg.strategy),
            "transform": self.transform.to_dict(),
            "blocks": self.net.block_names,
            # the whole data config and the seed: eval rebuilds the same splits from the checkpoint alone
            "data": _plain(cfg.data),
            "seed": int(cfg.seed),
            "chained_from": self.weights_label if self.source_meta else None,
        }


def prepare(cfg: DictConfig) -> Prepared:
    """Build data, network and freeze plan from a composed config."""
    model_name = str(cfg.model.name)
    family_of(model_name)  # unknown names fail here, listing the valid ones
    pretrained = bool(cfg.strategy.get("pretrained", True))
    source = weights_lib.resolve(model_name, cfg.model.get("weights") if pretrained else None)
    loaded = weights_lib.read_file(source.value) if source.kind == "file" else None
    source_meta = weights_lib.checkpoint_meta(loaded)
    spec = resolve_transform(cfg.data, source, source_meta)
    datamodule = build_datamodule(cfg.data, spec, int(cfg.seed))

    enum_member = source.value if source.kind == "enum" else None
    if enum_member is not None:
        weights_lib.ensure_enum_available(model_name, enum_member)
    model = build_torchvision(model_name, enum_member, **_plain(cfg.model.get("kwargs") or {}))
    net, block_map = to_blocknet(model, model_name)
    if block_map.fixed_input and spec.crop != block_map.input_size:
        side = block_map.input_size
        alternative = (
            f", or +model.kwargs.image_size={spec.crop} (random init only)" if source.kind == "none" else ""
        )
        raise ConfigError(
            f"{model_name} takes {side}x{side} images, but the input would be {spec.crop}x{spec.crop}.",
            f"Set data.image_size={side}{alternative}.",
        )
    name_map = weights_lib.source_name_map(model, net)
    surgery = apply_recipe(net, block_map, cfg.recipe, datamodule.num_classes)
    if loaded is not None:
        weights_lib.load_backbone(net, loaded, Path(source.value), name_map)
    schedule = make_schedule(cfg.strategy, net)
    apply_plan(net, schedule.first)
    label = source.label if pretrained else "random init (strategy ignores weights)"
    return Prepared(net, schedule, surgery, datamodule, spec, label, source_meta)


def resolve_transform(data_cfg: DictConfig, source: weights_lib.WeightsSource, meta: dict) -> TransformSpec:
    """Eval preprocessing: the weights' own when they define it, else the config's.

    ``data.image_size`` (when set) overrides the input side, keeping the weights' resize ratio;
    ``data.mean``/``data.std`` (when set) override the normalisation.
    """
    base: TransformSpec | None = None
    if source.kind == "enum":
        base = TransformSpec.from_weights(source.value)
    elif meta.get("transform"):
        base = TransformSpec.from_dict(meta["transform"])
    size = data_cfg.get("image_size")
    if base is None:
        side = int(size or DEFAULT_SIZE)
        base = TransformSpec(resize=side, crop=side, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    elif size:
        base = replace(base, resize=round(int(size) * base.resize / base.crop), crop=int(size))
    if data_cfg.get("mean") is not None:
        base = replace(base, mean=tuple(float(v) for v in data_cfg.mean))
    if data_cfg.get("std") is not None:
        base = replace(base, std=tuple(float(v) for v in data_cfg.std))
    return base


def _plain(node: Any) -> Any:
    """A config node as plain dicts/lists (checkpoints and builders must not hold omegaconf objects)."""
    if isinstance(node, DictConfig) or OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True)
    return node
