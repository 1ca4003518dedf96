"""A SHA-256 of the tensor bytes in every ``.safetensors`` file ftcli writes, checked when it is read.

A safetensors file is an 8-byte header length, a JSON header (names, dtypes, shapes, offsets and a
``__metadata__`` map of strings), then the tensor bytes. The format checks that the header is
consistent but not the bytes: a flipped bit in a weight loads silently. ftcli stores the SHA-256 of
everything after the header under ``__metadata__[KEY]`` (the header is rewritten once, the bytes stay
where they are) and :func:`verify` recomputes it: a mismatch is a WeightsError naming the file. Files
written by others carry no such key and load as before. Hashing reads the file once (about 1 GB/s).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ftcli.atomic_files import atomic_path
from ftcli.errors import WeightsError

KEY = "ftcli_sha256"
METADATA = "__metadata__"
MAX_HEADER = 100 * 2**20  # safetensors' own limit on the header's size
CHUNK = 8 * 2**20


def save(state: Mapping[str, Any], path: Path, metadata: Mapping[str, str] | None = None) -> Path:
    """``safetensors.torch.save_file`` with the checksum in the metadata, written atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    with atomic_path(path) as partial:
        raw = Path(f"{partial}.raw")
        try:
            save_file(dict(state), str(raw), metadata=dict(metadata or {}))
            header, start = read_header(raw)
            header.setdefault(METADATA, {})[KEY] = _data_digest(raw, start)
            encoded = json.dumps(header, separators=(",", ":")).encode()
            encoded += b" " * (-len(encoded) % 8)  # safetensors aligns the tensor bytes to 8
            with open(raw, "rb") as source, open(partial, "wb") as target:
                target.write(struct.pack("<Q", len(encoded)) + encoded)
                source.seek(start)
                shutil.copyfileobj(source, target, CHUNK)
        finally:
            raw.unlink(missing_ok=True)
    return path


def verify(path: Path) -> bool:
    """Check a safetensors file's checksum: True when it matches, False when it has none (not written by
    ftcli); a WeightsError when the bytes changed after it was written or the header is unreadable."""
    header, start = read_header(path)
    stored = (header.get(METADATA) or {}).get(KEY)
    if stored is None:
        return False
    if _data_digest(path, start) != stored:
        raise WeightsError(
            f"{path} is damaged: the SHA-256 of its tensors differs from the one stored when ftcli wrote it "
            "(bytes changed after it was written).",
            "Use another copy, or write it again (a converted model: delete its folder and run again).",
        )
    return True


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """The JSON header of a safetensors file and where its tensor bytes start."""
    try:
        with open(path, "rb") as handle:
            size_bytes = handle.read(8)
            (size,) = struct.unpack("<Q", size_bytes) if len(size_bytes) == 8 else (-1,)
            if not 0 < size <= MAX_HEADER:
                raise ValueError(f"header size {size}")
            header = json.loads(handle.read(size))
    except OSError as exc:
        raise WeightsError(f"{path} cannot be read ({exc.strerror or exc}).") from exc
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise WeightsError(f"{path} is not a readable .safetensors file (its header: {exc}).") from exc
    if not isinstance(header, dict):
        raise WeightsError(f"{path} is not a readable .safetensors file (its header is not a mapping).")
    return header, 8 + size


def _data_digest(path: Path, start: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        handle.seek(start)
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
