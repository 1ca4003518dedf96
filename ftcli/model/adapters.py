"""Low-rank adapters (LoRA, DoRA) inserted with Hugging Face PEFT into a network's backbone blocks.

``strategy=lora`` freezes every pretrained weight and trains a low-rank update beside chosen layers
(Hu et al. 2021); ``strategy.use_dora=true`` adds DoRA's learned magnitude (Liu et al. 2024). ftcli
chooses *which* layers from its block map, so adapters can go in the last ``strategy.blocks`` blocks
only, and resolves the targets to exact module paths itself before PEFT sees them: the classifier
(the ``head`` block) is never wrapped, whatever the family (with ``all-linear`` PEFT would wrap a timm
head too). Decisions (docs/ARCHITECTURE.md, "Adapters"):
- PEFT injects into the ``BlockNet`` in place (``LoraModel``), so blocks, phases, the no-grad prefix
  and the feature caches work unchanged: a block holding adapters is ``adapted`` in the freeze plan,
  its own weights frozen, its adapters training;
- the preset targets (``strategy.targets=auto``) are every ``nn.Linear`` inside the adapted blocks
  (a transformer's attention and MLP projections, timm ViT ``qkv``/``proj``/``fc1``/``fc2``, ConvNeXt's
  pointwise linears) or, in a network whose blocks hold none, every 1x1 ungrouped ``nn.Conv2d`` (the
  pointwise convolutions of EfficientNet-Lite, ResNet, MobileNet);
- a checkpoint stores the tensors that can change (``ftcli.finetune.adapter_record``) and a fingerprint
  of the rest (:func:`base_fingerprint`): the base is rebuilt from its source when the checkpoint is
  loaded, and refused when its fingerprint differs.

PEFT (and transformers, which it imports) load only when a run uses adapters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ftcli.errors import ConfigError, WeightsError
from ftcli.model.blocks import HEAD, BlockNet

ADAPTER_NAME = "default"  # PEFT's adapter name inside each wrapped layer
ADAPTER_MARK = "lora_"  # every adapter tensor's name holds it (lora_A, lora_B, lora_magnitude_vector)
BASE_LAYER = ".base_layer"  # PEFT keeps a wrapped layer's own weights under this name
AUTO_TARGETS = "auto"
AUTO = "auto"  # strategy.r / strategy.alpha chosen from the network (resolved_options)
AUTO_RANKS = (8, 4, 2, 1)  # what strategy.r=auto picks from, largest first
ALL_BLOCKS = "all"
INSTALL_HINT = "Install the adapters extra: pip install 'ftcli[adapters]' (make install does)."


@dataclass(frozen=True)
class AdapterOptions:
    """The adapter keys of a strategy (``strategy.r``, ``alpha``, ...), checked."""

    r: int | str = AUTO  # auto until inserted: the largest of AUTO_RANKS within max_share
    alpha: float | str = AUTO  # auto: 2 r
    dropout: float = 0.05
    targets: str | tuple[str, ...] = AUTO_TARGETS
    blocks: str | int = ALL_BLOCKS
    use_dora: bool = False
    max_share: float = 0.02

    @property
    def method(self) -> str:
        return "DoRA" if self.use_dora else "LoRA"

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> AdapterOptions:
        """The options a checkpoint stored (``to_dict``)."""
        values = {
            key: stored[key]
            for key in ("r", "alpha", "dropout", "blocks", "use_dora", "max_share")
            if key in stored
        }
        targets = stored.get("targets", AUTO_TARGETS)
        return cls(**values, targets=targets if isinstance(targets, str) else tuple(targets))

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["targets"] = values["targets"] if isinstance(self.targets, str) else list(self.targets)
        return values


@dataclass
class Adapters:
    """What was inserted where (kept on the network as ``net.adapters``), and PEFT's tuner for merging.

    A plain object, not a module, so the tuner (which holds the network) is not registered inside it.
    """

    options: AdapterOptions  # resolved: r and alpha are numbers
    targets: dict[str, list[str]]  # block -> module paths inside the network, in forward order
    tuner: Any  # peft LoraModel
    rank_note: str = ""  # how strategy.r=auto chose the rank ("" when r was given)

    @property
    def blocks(self) -> frozenset[str]:
        return frozenset(block for block, paths in self.targets.items() if paths)

    @property
    def module_count(self) -> int:
        return sum(len(paths) for paths in self.targets.values())


def adapters_of(net: nn.Module) -> Adapters | None:
    return getattr(net, "adapters", None)


def adapted_blocks(net: BlockNet) -> frozenset[str]:
    adapters = adapters_of(net)
    return adapters.blocks if adapters is not None else frozenset()


def target_modules(net: BlockNet, options: AdapterOptions) -> dict[str, list[str]]:
    """The module paths that get adapters, per backbone block (the head never gets any)."""
    backbone = net.backbone_names
    chosen = _chosen_blocks(backbone, options.blocks)

    def paths(test: Any) -> dict[str, list[str]]:
        return {
            block: [
                f"blocks.{block}.{name}"
                for name, module in net.blocks[block].named_modules()
                if name and block in chosen and test(f"blocks.{block}.{name}", module)
            ]
            for block in backbone
        }

    if options.targets != AUTO_TARGETS:
        targets = paths(lambda path, module: _named(path, module, options.targets))
    else:  # the linears, or in a network without any the pointwise convolutions
        targets = paths(lambda _, module: isinstance(module, nn.Linear))
        if not any(targets.values()):
            targets = paths(lambda _, module: _is_pointwise_conv(module))
    if not any(targets.values()):
        raise ConfigError(
            f"strategy.targets={_shown_targets(options.targets)} selects no layer that takes adapters "
            f"in blocks {', '.join(chosen)} of this {net.family} network.",
            "Adapters wrap nn.Linear and nn.Conv2d layers; give their names (the last part of the module "
            "path, e.g. strategy.targets=[conv_pw]) or a regular expression; `ftcli inspect` shows the "
            "blocks.",
        )
    return targets


def insert(net: BlockNet, options: AdapterOptions) -> Adapters:
    """Insert adapters with PEFT into ``net`` in place; returns (and keeps as ``net.adapters``) the record."""
    try:
        from peft import LoraConfig
        from peft.tuners.lora import LoraModel
    except ImportError as err:
        raise ConfigError(f"strategy.r is set, but PEFT is not installed ({err}).", INSTALL_HINT) from err
    targets = target_modules(net, options)
    paths = [path for block in net.backbone_names for path in targets[block]]
    options, rank_note = resolved_options(net, paths, options)
    config = LoraConfig(
        r=int(options.r),
        lora_alpha=float(options.alpha),
        lora_dropout=options.dropout,
        target_modules=paths,
        use_dora=options.use_dora,
        bias="none",
    )
    tuner = LoraModel(net, config, ADAPTER_NAME)
    adapters = Adapters(options, targets, tuner, rank_note)
    net.adapters = adapters  # a plain attribute: nn.Module registers only modules and parameters
    return adapters


def resolved_options(net: BlockNet, paths: list[str], options: AdapterOptions) -> tuple[AdapterOptions, str]:
    """``options`` with numbers for ``r`` and ``alpha``, and how ``r=auto`` chose (or "").

    ``r=auto`` takes the largest rank of 8, 4, 2, 1 whose adapters stay within ``max_share`` of the
    backbone's parameters: rank 8 suits a large transformer (under 2% of SmolLM2) but is 5% of a small
    CNN like EfficientNet-Lite0, whose pointwise layers are a large part of its few parameters.
    ``alpha=auto`` is 2 r, the scale LoRA's usual r=8, alpha=16 has."""
    note = ""
    r = options.r
    if r == AUTO:
        backbone = backbone_parameters(net)
        modules = dict(net.named_modules())
        per_rank = sum(_rank_cost(modules[path]) for path in paths)
        magnitudes = sum(_out_features(modules[path]) for path in paths) if options.use_dora else 0

        def share(rank: int) -> float:
            return (rank * per_rank + magnitudes) / max(backbone, 1)

        r = next((rank for rank in AUTO_RANKS if share(rank) <= options.max_share), AUTO_RANKS[-1])
        tried = ", ".join(f"r={rank}: {100 * share(rank):.1f}%" for rank in AUTO_RANKS if rank >= r)
        within = "within" if share(r) <= options.max_share else "the smallest, still above"
        note = (
            f"r=auto chose {r}, {within} strategy.max_share={options.max_share:g} of the backbone's "
            f"parameters ({tried}); strategy.r=<rank> sets it yourself"
        )
    alpha = 2.0 * float(r) if options.alpha == AUTO else float(options.alpha)
    return replace(options, r=int(r), alpha=alpha), note


def _rank_cost(module: nn.Module) -> int:
    """Adapter parameters per unit of rank on a layer: A (in -> r) and B (r -> out), as PEFT builds them."""
    if isinstance(module, nn.Conv2d):
        height, width = module.kernel_size
        return module.in_channels * height * width // module.groups + module.out_channels
    if isinstance(module, nn.Linear):
        return module.in_features + module.out_features
    return 0


def _out_features(module: nn.Module) -> int:
    return module.out_channels if isinstance(module, nn.Conv2d) else getattr(module, "out_features", 0)


def is_adapter_tensor(name: str) -> bool:
    return ADAPTER_MARK in name


def backbone_parameters(net: BlockNet) -> int:
    """The backbone's own parameters, adapters left out: what ``r=auto``'s share and ``inspect``'s are of."""
    return sum(
        p.numel()
        for block in net.backbone_names
        for name, p in net.blocks[block].named_parameters()
        if not is_adapter_tensor(name)
    )


def set_adapters_trainable(module: nn.Module, trainable: bool) -> None:
    """Turn ``requires_grad`` of the adapter tensors inside ``module`` on or off (nothing else)."""
    for name, parameter in module.named_parameters():
        if is_adapter_tensor(name):
            parameter.requires_grad_(trainable)


def adapter_parameters(net: nn.Module) -> int:
    return sum(p.numel() for name, p in net.named_parameters() if is_adapter_tensor(name))


def base_fingerprint(net: BlockNet, saved: set[str]) -> str:
    """sha256 over the tensors a checkpoint does not store (the frozen base weights), by name: what the
    adapters were trained on. The names drop PEFT's ``.base_layer``, so the fingerprint of a base is the
    same before and after adapters are inserted."""
    digest = hashlib.sha256()
    state = net.state_dict()
    for name in sorted(set(state) - saved, key=base_name):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(base_name(name).encode())
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def base_name(name: str) -> str:
    return name.replace(BASE_LAYER, "")


def check_base(expected: str, actual: str, where: str, source: str) -> None:
    """A checkpoint's adapters applied to other base weights than they were trained on: refuse."""
    if expected != actual:
        raise WeightsError(
            f"{where}: its adapters were trained on base weights with fingerprint {expected[:16]}..., "
            f"but the base rebuilt from {source} has {actual[:16]}...: they would apply to other weights.",
            "Use the base weights the run started from (the same model.weights, the same installed "
            "weights package), or train the adapters again on this base.",
        )


def merged(net: BlockNet) -> BlockNet:
    """``net`` with every adapter merged into its layer's weights and PEFT's wrappers removed
    (PEFT's ``merge_and_unload``): a plain network with the adapted function, for export."""
    adapters = adapters_of(net)
    if adapters is None:
        return net
    adapters.tuner.merge_and_unload(progressbar=False, safe_merge=True)
    del net.adapters
    return net


def write_peft_folder(net: BlockNet, folder: Path, base_model: str) -> list[Path]:
    """The adapters as a PEFT adapter folder (``adapter_config.json``, ``adapter_model.safetensors``)
    for other PEFT tooling; module paths are the network's own (``blocks.<block>.<module>``)."""
    adapters = adapters_of(net)
    if adapters is None:
        raise WeightsError("this checkpoint holds no adapters: there is no adapter folder to write.")
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = adapters.tuner.peft_config[ADAPTER_NAME]
    config.base_model_name_or_path = base_model
    config.save_pretrained(str(folder))
    state = get_peft_model_state_dict(net, adapter_name=ADAPTER_NAME, save_embedding_layers=False)
    save_file(
        {k: v.detach().contiguous() for k, v in state.items()}, str(folder / "adapter_model.safetensors")
    )
    return [folder / "adapter_config.json", folder / "adapter_model.safetensors"]


def kept_names(net: BlockNet, whole_blocks: Iterable[str] = ()) -> set[str]:
    """The state_dict names a checkpoint of an adapted network keeps: every adapter tensor, every buffer
    (BatchNorm statistics), and every tensor of the head and of ``whole_blocks`` (blocks a phase trains)."""
    prefixes = tuple(f"blocks.{block}." for block in {HEAD, *whole_blocks})
    buffers = {name for name, _ in net.named_buffers()}
    return {
        name
        for name in net.state_dict()
        if is_adapter_tensor(name) or name in buffers or name.startswith(prefixes)
    }


def describe(net: BlockNet) -> list[str]:
    """Lines for ``inspect``: the method and rank, the trainable share, the checkpoint size to expect, and
    where the adapters sit, block by block."""
    adapters = adapters_of(net)
    if adapters is None:
        return []
    options = adapters.options
    state = net.state_dict()
    backbone = backbone_parameters(net)
    added = adapter_parameters(net)
    kept_tensors = kept_names(net)
    kept = sum(t.numel() * t.element_size() for n, t in state.items() if n in kept_tensors)
    whole = sum(t.numel() * t.element_size() for n, t in state.items() if not is_adapter_tensor(n))
    lines = [
        f"{options.method} r={options.r} alpha={options.alpha:g} dropout={options.dropout:g} on "
        f"{adapters.module_count} layers in {len(adapters.blocks)} blocks (PEFT): {added:,} adapter "
        f"parameters, {100 * added / max(backbone, 1):.2f}% of the backbone's {backbone:,}",
        f"checkpoints store the adapters, the head and the buffers: {_megabytes(kept)} of weights "
        f"(the whole network: {_megabytes(whole)}); the base is rebuilt from its weights when one is read",
    ]
    if adapters.rank_note:
        lines.insert(1, adapters.rank_note)
    groups: dict[str, list[str]] = {}  # blocks with the same adapted layers share one line
    for block, paths in adapters.targets.items():
        if paths:
            short = sorted({path.rsplit(".", 1)[-1] for path in paths})
            layers = f"{len(paths)} layer{'s' if len(paths) > 1 else ''}"
            groups.setdefault(f"{layers} ({', '.join(short)})", []).append(block)
    for layers, blocks in groups.items():
        named = (
            ", ".join(blocks)
            if len(blocks) <= 3
            else f"{len(blocks)} blocks {blocks[0]} ... {blocks[-1]}, each"
        )
        lines.append(f"  {named}: {layers}")
    return lines


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"


def _chosen_blocks(backbone: list[str], blocks: str | int) -> list[str]:
    if blocks == ALL_BLOCKS:
        return list(backbone)
    if isinstance(blocks, int) and not isinstance(blocks, bool) and 1 <= blocks <= len(backbone):
        return backbone[len(backbone) - blocks :]
    raise ConfigError(
        f"strategy.blocks={blocks} is not valid: this network has {len(backbone)} blocks before the head "
        f"({', '.join(backbone)}).",
        f"Use all, or the number of last blocks that get adapters, from 1 to {len(backbone)}.",
    )


def _named(path: str, module: nn.Module, targets: str | tuple[str, ...]) -> bool:
    """Whether a user's ``strategy.targets`` (module names, or a regular expression searched in the
    path) picks this module; only layers PEFT can wrap count."""
    if not isinstance(module, (nn.Linear, nn.Conv2d)):
        return False
    if isinstance(targets, str):
        return re.search(targets, path) is not None
    return any(path == t or path.endswith(f".{t}") for t in targets)


def _is_pointwise_conv(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1


def _shown_targets(targets: str | tuple[str, ...]) -> str:
    return targets if isinstance(targets, str) else f"[{','.join(targets)}]"
