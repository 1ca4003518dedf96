"""Plan a run from its config: schema -> weights -> transforms -> data -> backbone -> surgery -> phases
-> options.

:func:`plan_run` is the first half of the pipeline: ``ftcli inspect`` shows its :class:`RunPlan`,
``ftcli train`` fits it (``ftcli.pipeline.fitting.run``), ``advise`` probes it and ``lrfind`` sweeps its
learning rate, so every command sees exactly what training builds. The config is checked here, once
(the schema first, then ``RunOptions.from_cfg``), and everything after takes the typed options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ftcli.config.run_options import RunOptions
from ftcli.config.schema import check_config
from ftcli.data.datamodule import ClassificationDataModule
from ftcli.data.images.transforms import TransformSpec, input_transform
from ftcli.data.sources import build_datamodule, holds_texts, text_sources
from ftcli.data.text.spec import TextSpec, text_spec
from ftcli.device import trains_on_gpu
from ftcli.errors import ConfigError
from ftcli.finetune import adapter_record
from ftcli.finetune.freeze_plan import FreezePlan, Schedule, apply_plan
from ftcli.finetune.phases import make_schedule
from ftcli.finetune.strategies import is_auto
from ftcli.model import hf_models
from ftcli.model.adapters import insert as insert_adapters
from ftcli.model.backbones import family_of
from ftcli.model.blocks import BlockNet
from ftcli.model.model_input import ModelInput
from ftcli.model.surgery import SurgeryReport
from ftcli.runs import checkpoint_schema
from ftcli.runs.weights_source import build_network, starting_weights, weights_transform
from ftcli.training.lightning_module import FineTuneModule


@dataclass(frozen=True)
class RunPlan:
    """Everything a run needs before the Trainer exists: the network with its phases, the data, the
    checked options, and the config they came from (stored in checkpoints)."""

    cfg: DictConfig
    options: RunOptions
    net: BlockNet
    schedule: Schedule
    surgery: SurgeryReport
    datamodule: ClassificationDataModule
    transform: TransformSpec | TextSpec
    weights_label: str
    source_meta: dict[str, Any] = field(default_factory=dict)
    # strategy=auto: what the advisor measured and decided (``Advice.to_dict``), stored in checkpoints
    advice: dict[str, Any] | None = None
    # whether the network starts from trained weights (false: scratch, or model.weights=null)
    starts_pretrained: bool = True

    def module(self, module_class: type[FineTuneModule] = FineTuneModule) -> FineTuneModule:
        """The Lightning module that trains this plan (``RangeTestModule`` for ``lrfind``)."""
        cfg = self.cfg
        return module_class(
            self.net,
            self.schedule,
            _plain(cfg.optimizer),
            _plain(cfg.scheduler),
            self.checkpoint_meta(),
            self.options.training,
        )

    @property
    def plan(self) -> FreezePlan:
        """The first phase's plan: what the network looks like when training starts."""
        return self.schedule.first

    def checkpoint_meta(self) -> dict[str, Any]:
        """The self-description stored in every checkpoint (``ftcli.runs.checkpoint_schema``)."""
        cfg = self.cfg
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


def plan_run(cfg: DictConfig, advice: dict[str, Any] | None = None) -> RunPlan:
    """Build data, network and phases from a composed config; ``strategy=auto`` must be resolved first
    (``ftcli.advice.advisor.resolve_auto``, whose record ``advice`` is stored in the checkpoints)."""
    check_config(cfg)  # types, ranges, finiteness: before anything is built
    if is_auto(cfg):
        raise ConfigError(
            "strategy=auto must be resolved by the advisor before the run is planned.",
            "Run it through `ftcli train` or `ftcli inspect`, which resolve it.",
        )
    model_name = str(cfg.model.name)
    family_of(model_name)  # unknown names fail here, listing the valid ones
    pretrained = bool(cfg.strategy.get("pretrained", True))
    with_adapters = adapter_record.wanted(cfg.strategy)
    if with_adapters and not pretrained:
        raise ConfigError(
            f"strategy={cfg.strategy.name} trains adapters on frozen pretrained weights, but "
            "strategy.pretrained=false starts from random ones.",
            "Remove strategy.pretrained=false, or use strategy=scratch to train from random weights.",
        )
    start = starting_weights(model_name, cfg.model.get("weights") if pretrained else None)
    source, source_meta = start.source, start.meta
    if with_adapters and source.kind == "none":
        raise ConfigError(
            f"strategy={cfg.strategy.name} trains adapters on frozen pretrained weights, but "
            "model.weights=null gives random ones (a base no checkpoint could be rebuilt on).",
            "Set model.weights (remove model.weights=null for the default), or use strategy=scratch.",
        )
    text = hf_models.is_hf(model_name)
    _check_modality(model_name, text, cfg.data)
    spec: TransformSpec | TextSpec = (
        text_spec(cfg.data, str(start.hf_folder), hf_models.trusts_remote_code(cfg.model.get("kwargs")))
        if text
        else input_transform(cfg.data, weights_transform(model_name, source, source_meta))
    )
    datamodule = build_datamodule(cfg.data, spec, int(cfg.seed))
    datamodule.on_gpu = trains_on_gpu(cfg.get("trainer") or {})  # data.augment_on_device=auto reads it
    # copies across splits, before anything heavy: data.on_leak=error stops here, drop shrinks val/test
    datamodule.check_leaks()

    def check_input(model_input: ModelInput) -> None:
        if isinstance(spec, TransformSpec) and not model_input.accepts_size(spec.crop):
            side = model_input.size
            alternative = (
                f", or +model.kwargs.{model_input.size_kwarg}={spec.crop} (random init only)"
                if source.kind == "none" and model_input.size_kwarg is not None
                else ""
            )
            raise ConfigError(
                f"{model_name} takes {side}x{side} images, but the input would be {spec.crop}x{spec.crop}.",
                f"Set data.image_size={side}{alternative}.",
            )

    kwargs = _plain(cfg.model.get("kwargs") or {})
    recipe = _plain(cfg.recipe)
    net, surgery = build_network(
        model_name,
        kwargs,
        start,
        recipe,
        datamodule.num_classes,
        check_input,
        layers_per_block=cfg.model.get("layers_per_block", "auto"),
    )
    if with_adapters:
        insert_adapters(net, adapter_record.adapter_options(cfg.strategy))
    schedule = make_schedule(cfg.strategy, net)
    apply_plan(net, schedule.first)
    # the option blocks, checked once now that the class and phase counts are known
    options = RunOptions.from_cfg(cfg, datamodule.num_classes, len(schedule.phases))
    net.gradient_checkpointing = options.gradient_checkpointing
    if text and options.training.mixup.enabled:
        raise ConfigError(
            "mixup.* mixes the pixels of two images (MixUp, CutMix); it does not apply to text.",
            "Remove the mixup.* overrides for a text model (mixup=default leaves it off).",
        )
    label = source.label if pretrained else "random init (strategy ignores weights)"
    trained = pretrained and source.kind != "none"
    return RunPlan(
        cfg, options, net, schedule, surgery, datamodule, spec, label, source_meta, advice, trained
    )


def _check_modality(model_name: str, text_model: bool, data_cfg: Any) -> None:
    """A text model needs a text dataset and an image model an image one: say so before loading either."""
    if text_model == holds_texts(data_cfg):
        return
    name = data_cfg.get("name")
    if text_model:
        raise ConfigError(
            f"model.name={model_name} reads text, but data={name} holds images.",
            f"Use a text dataset: {', '.join(text_sources())} (e.g. data=movie_reviews).",
        )
    raise ConfigError(
        f"data={name} holds texts, but model.name={model_name} reads images.",
        "Use a text model: model=smollm2_135m, model=minilm_l6 or model.name=hf/<repo id or folder>.",
    )


def _plain(node: Any) -> Any:
    """A config node as plain dicts/lists (checkpoints and builders must not hold omegaconf objects)."""
    if isinstance(node, DictConfig) or OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True)
    return node
