"""Where a backbone's starting weights come from: nothing, a torchvision enum, or a file.

``model.weights`` is ``null`` (random init), a torchvision weights enum name (``DEFAULT``,
``IMAGENET1K_V2``: from the torch hub cache, else downloaded; offline and uncached is an error that
names the cache path), or a path to a state_dict, a ``.safetensors`` file or an ftcli checkpoint
(chaining: the previous task's model is this task's start). Files always load with
``weights_only=True``, so a checkpoint cannot run code.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ftcli.blocks import HEAD, BlockNet
from ftcli.errors import WeightsError
from ftcli.safe_config import check_targets

CHECKPOINT_KEY = "ftcli"


@dataclass
class WeightsSource:
    """A resolved ``model.weights`` value."""

    kind: str  # "none" | "enum" | "file"
    value: Any = None  # the torchvision enum member, or the Path
    label: str = "random init"


def resolve(model_name: str, weights: str | None) -> WeightsSource:
    """Turn ``model.weights`` into a source, without loading anything yet."""
    if weights is None or str(weights).lower() in ("null", "none", ""):
        return WeightsSource("none")
    text = str(weights)
    looks_like_path = os.sep in text or text.startswith(("~", ".")) or Path(text).suffix != ""
    if looks_like_path:
        path = Path(text).expanduser()
        if not path.is_file():
            raise WeightsError(
                f"model.weights={text}: no such file.",
                "Give a path to a state_dict (.pt/.pth), a .safetensors file or an ftcli checkpoint (.ckpt), "
                "a torchvision weights name such as DEFAULT, or model.weights=null for random init.",
            )
        return WeightsSource("file", path.resolve(), str(path))
    return WeightsSource("enum", _weights_enum(model_name, text), f"torchvision {model_name} {text}")


def _weights_enum(model_name: str, name: str) -> Any:
    """The torchvision weights member ``name`` for ``model_name`` (``DEFAULT`` included)."""
    from torchvision.models import get_model_weights

    enum = get_model_weights(model_name)
    valid = ["DEFAULT", *[member.name for member in enum]]
    if name not in valid:
        raise WeightsError(
            f"model.weights={name} is not a weights name of {model_name}.",
            f"Valid names: {', '.join(valid)}; or null (random init), or a path to a weights file.",
        )
    return enum[name] if name != "DEFAULT" else enum.DEFAULT


def hub_cache_path(enum_member: Any) -> Path:
    """Where torch.hub keeps (or would keep) the file for a torchvision weights member."""
    url = enum_member.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])


def ensure_enum_available(model_name: str, enum_member: Any) -> None:
    """Fail early, with a useful message, when enum weights are neither cached nor downloadable."""
    cached = hub_cache_path(enum_member)
    if cached.is_file():
        return
    offline = os.environ.get("FTCLI_OFFLINE", "") not in ("", "0")
    reason = "FTCLI_OFFLINE is set" if offline else None
    if not offline:
        try:
            torch.hub.load_state_dict_from_url(enum_member.url, progress=True, check_hash=True)
            return
        except Exception as exc:  # URLError, socket errors, HTTP errors, a truncated download
            reason = f"{type(exc).__name__}: {exc}"
    raise WeightsError(
        f"The weights {model_name} {enum_member.name} are not in the cache and could not be downloaded "
        f"({reason}).",
        f"Cache path: {cached}\n"
        f"Copy the file there (from a machine with internet), or use model.weights=null (random init), "
        f"or model.weights=PATH to a state_dict / .safetensors / ftcli checkpoint.",
    )


def read_file(path: Path) -> dict[str, Any]:
    """Load a weights file safely: safetensors, or torch.load(weights_only=True)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return {"state_dict": load_file(str(path))}
        except Exception as exc:
            raise WeightsError(f"{path} is not a readable .safetensors file ({exc}).") from exc
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # The weights-only unpickler names a GLOBAL when the file asks for a class or function (code).
        # A plain pickle.dump file fails earlier, on an opcode it does not support, like random bytes
        # do: parse its opcodes (without running them) to tell the two apart.
        text = str(exc).lower()
        if "weights only load failed" not in text or ("global" not in text and not _pickle_calls_code(path)):
            raise _unreadable(path, exc) from exc
        raise WeightsError(
            f"Refused to load {path}: it holds objects other than tensors and plain data, "
            "so loading it could run code.",
            "Only state_dicts, .safetensors files and ftcli checkpoints are accepted.",
        ) from exc
    except Exception as exc:  # not a torch file: the unpickler fails in many ways (IndexError, KeyError...)
        raise _unreadable(path, exc) from exc
    if not isinstance(loaded, dict):
        raise WeightsError(f"{path} holds a {type(loaded).__name__}, not a state_dict or checkpoint.")
    # The stored config is data: refuse it when it names code to instantiate outside the allowlist.
    check_targets(checkpoint_meta(loaded), str(path))
    return loaded


CODE_OPCODES = ("GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX")


def _pickle_calls_code(path: Path) -> bool:
    """Whether ``path`` is a pickle (protocol 2+) that imports or calls objects; parsed, never run."""
    import pickletools

    try:
        with path.open("rb") as f:
            if f.read(1) != b"\x80":  # PROTO: text and most random bytes are not pickles at all
                return False
            f.seek(0)
            return any(op.name in CODE_OPCODES for op, _, _ in pickletools.genops(f))
    except Exception:
        return False


def _unreadable(path: Path, exc: Exception) -> WeightsError:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    if "weights only load failed" in first_line.lower():  # torch's advice to load unsafely: not ours
        first_line = "not a torch.save file"
    return WeightsError(
        f"{path} is not a readable weights file ({type(exc).__name__}: {first_line}).",
        "It may be truncated or of another format; give a state_dict, .safetensors or ftcli checkpoint.",
    )


def is_ftcli_checkpoint(loaded: dict[str, Any]) -> bool:
    """Whether a loaded file is a checkpoint written by ftcli (self-describing)."""
    return isinstance(loaded.get(CHECKPOINT_KEY), dict) and "state_dict" in loaded


def model_state(loaded: dict[str, Any]) -> dict[str, torch.Tensor]:
    """An ftcli checkpoint's network tensors in BlockNet names, head included (chaining, eval, export)."""
    state = loaded.get("state_dict", {})
    prefix = "model."
    return {
        k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix) and isinstance(v, torch.Tensor)
    }


def backbone_state(loaded: dict[str, Any], name_map: dict[str, str]) -> dict[str, Any]:
    """The backbone part of a loaded file in BlockNet names; the old head is always dropped."""
    state = loaded.get("state_dict", loaded) if isinstance(loaded.get("state_dict"), dict) else loaded
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if is_ftcli_checkpoint(loaded):
        tensors = model_state(loaded)
    elif any(k in name_map for k in tensors):
        tensors = {name_map[k]: v for k, v in tensors.items() if k in name_map}
    return {k: v for k, v in tensors.items() if not k.startswith(f"blocks.{HEAD}.")}


def load_backbone(net: BlockNet, loaded: dict[str, Any], path: Path, name_map: dict[str, str]) -> None:
    """Copy a loaded file's backbone weights into every block but the head.

    Every parameter and buffer of the kept blocks must be in the file with the same shape; otherwise
    the file belongs to another architecture and the run stops rather than train half-random weights.
    """
    state = backbone_state(loaded, name_map)
    expected = {k: v for k, v in net.state_dict().items() if not k.startswith(f"blocks.{HEAD}.")}
    missing = [k for k in expected if k not in state]
    mismatched = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or mismatched:
        matched = len(expected) - len(missing) - len(mismatched)
        example = (mismatched or missing)[0]
        raise WeightsError(
            f"{path} does not fit the {net.family} backbone{_model_label(loaded)}: {matched}/{len(expected)} "
            f"tensors match ({len(missing)} missing, {len(mismatched)} of another shape, e.g. {example}).",
            "Is it a checkpoint of a different architecture? Set model.name to the model it was trained as.",
        )
    net.load_state_dict(state, strict=False)


def checkpoint_meta(loaded: dict[str, Any] | None) -> dict[str, Any]:
    """The self-description an ftcli checkpoint carries ({} for other files)."""
    meta = (loaded or {}).get(CHECKPOINT_KEY)
    return dict(meta) if isinstance(meta, dict) else {}


def _model_label(loaded: dict[str, Any]) -> str:
    """`` (the file holds a <model.name>)`` for an ftcli checkpoint; other files do not say."""
    model = checkpoint_meta(loaded).get("model")
    return f" (the file holds a {model['name']})" if isinstance(model, dict) and model.get("name") else ""


def source_name_map(model: nn.Module, net: BlockNet) -> dict[str, str]:
    """Map torchvision parameter/buffer names to BlockNet names (the blocks share the same tensors)."""
    by_id = {id(t): name for name, t in _named_tensors(net)}
    return {name: by_id[id(t)] for name, t in _named_tensors(model) if id(t) in by_id}


def _named_tensors(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)]
