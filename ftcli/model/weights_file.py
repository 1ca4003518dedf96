"""Read a weights file safely: safetensors, or ``torch.load(weights_only=True)``, never code.

Every file ftcli loads (``model.weights=PATH``, checkpoints for eval/predict/export/resume/inspect)
goes through :func:`read_file`. What an ftcli checkpoint's metadata must hold is checked by
``ftcli.runs.checkpoint_schema``, which reads the dict this returns.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from ftcli.errors import WeightsError
from ftcli.model import safetensors_checksum


def read_file(path: Path) -> dict[str, Any]:
    """Load a weights file safely: safetensors (its checksum checked when ftcli wrote it), or
    torch.load(weights_only=True) after the archive's CRCs."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        safetensors_checksum.verify(path)  # written by ftcli: its tensors' SHA-256; else nothing to check
        try:
            return {"state_dict": load_file(str(path))}
        except Exception as exc:
            raise WeightsError(f"{path} is not a readable .safetensors file ({exc}).") from exc
    check_archive(path)
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
    return loaded


def check_archive(path: Path) -> None:
    """A ``torch.save`` file is a zip archive: check every member's CRC (``torch.load`` does not), so
    flipped or zeroed bytes are refused before anything is unpickled (about 0.1 s for 100 MB)."""
    import zipfile

    try:
        if not zipfile.is_zipfile(path):
            return  # a legacy (pre-zip) torch file, or not a torch file: torch.load says which
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except OSError as exc:
        raise WeightsError(f"{path} cannot be read ({exc.strerror or exc}).") from exc
    except Exception as exc:  # BadZipFile, zlib.error, EOFError...: the archive's structure is damaged
        bad = f"its structure ({type(exc).__name__}: {exc})"
    if bad is not None:
        raise WeightsError(
            f"{path} is damaged: the archive's checksum fails for {bad} "
            "(bytes changed or lost after it was written).",
            "Use another copy, or another checkpoint of the run (best.ckpt or last.ckpt).",
        )


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
