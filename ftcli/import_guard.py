"""Keep image runs from importing transformers: torchmetrics is told it is not installed.

Lightning imports torchmetrics, and torchmetrics (1.9) imports ``transformers`` at import time for two
text metrics (BERTScore, InfoLM) whenever ``transformers>=4.4`` is installed; ``ftcli[text]`` installs
it, so every image run paid for importing transformers (about 1.7 s of its start-up) without using it.
ftcli uses neither metric. torchmetrics decides with ``importlib.metadata``, so :func:`install` puts
a finder on ``sys.meta_path`` that answers ``transformers``' metadata with version 0 *only when the
question comes from torchmetrics' own code*; every other lookup (ftcli's text backbones, PEFT, the
user's code) sees the real installation. ftcli's text path imports transformers itself, so text runs
are unchanged. The price: torchmetrics' BERTScore and InfoLM are unavailable in a process that
imported ftcli first. ``FTCLI_TORCHMETRICS_TEXT=1`` turns the guard off.

Standard library only: installed by ``ftcli/__init__.py`` before anything imports Lightning.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import sys
from pathlib import Path

HIDDEN = "transformers"
# the asker's module: torchmetrics and its submodules, nothing else
ASKER = "torchmetrics"


class _NotInstalled(metadata.Distribution):
    """A distribution of ``transformers`` at version 0: older than any requirement torchmetrics checks."""

    def read_text(self, filename: str) -> str | None:
        if filename in ("METADATA", "PKG-INFO"):
            return f"Metadata-Version: 2.1\nName: {HIDDEN}\nVersion: 0\n"
        return None

    def locate_file(self, path: str | os.PathLike[str]) -> Path:
        return Path(path)


def _asked_by_torchmetrics() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name == ASKER or name.startswith(ASKER + "."):
            return True
        frame = frame.f_back
    return False


class HideTransformersFromTorchmetrics:
    """A ``sys.meta_path`` finder that finds no modules, only the version-0 distribution above."""

    @staticmethod
    def find_spec(*_args: object, **_kwargs: object) -> None:
        return None

    @staticmethod
    def find_distributions(
        context: metadata.DistributionFinder.Context | None = None,
    ) -> list[metadata.Distribution]:
        name = getattr(context, "name", None)
        if name is None or name.replace("-", "_").lower() != HIDDEN or not _asked_by_torchmetrics():
            return []
        return [_NotInstalled()]


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once), unless ``FTCLI_TORCHMETRICS_TEXT=1``."""
    if os.environ.get("FTCLI_TORCHMETRICS_TEXT") == "1":
        return
    if not any(isinstance(finder, HideTransformersFromTorchmetrics) for finder in sys.meta_path):
        sys.meta_path.insert(0, HideTransformersFromTorchmetrics())
