"""Image files: which extensions count as images, decoding with a clear error, and the cheap header check.

A broken file must stop a run with its name (or be skipped under ``data.on_bad_image=skip``), never
surface as a PIL traceback from inside a DataLoader worker.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from ftcli.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open and fully decode an image; a broken file raises DataError naming it."""
    try:
        with Image.open(path) as img:
            img.load()
            return img
    except DECODE_ERRORS as e:
        raise DataError(
            f"Cannot decode image {path}: {e}",
            "Delete or replace the file (data.on_bad_image=skip only drops files with unreadable headers).",
        ) from None  # short: it may cross a DataLoader worker boundary as formatted text


def load_or_none(path: str) -> Image.Image | None:
    try:
        return load_image(path)
    except DataError:
        return None


def find_unreadable(paths: Sequence[str]) -> list[str]:
    """The paths whose image header PIL cannot parse (pixels are not decoded)."""

    def unreadable(path: str) -> bool:
        try:
            with Image.open(path) as img:
                return img.size[0] < 1 or img.size[1] < 1
        except DECODE_ERRORS:
            return True

    if len(paths) > 256:
        with ThreadPoolExecutor(max_workers=8) as pool:
            flags = list(pool.map(unreadable, paths))
    else:
        flags = [unreadable(p) for p in paths]
    return [p for p, bad in zip(paths, flags, strict=True) if bad]
