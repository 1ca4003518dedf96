"""Skip a test module when an optional package is missing, without importing it."""

from __future__ import annotations

import importlib.util

import pytest


def require_package(name: str) -> None:
    """Skip the calling module unless ``name`` is installed. ``pytest.importorskip`` would import it in
    every pytest worker while collecting: 1-2 s each for transformers or peft, most of it for tests that
    run on one worker."""
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (make install installs it)", allow_module_level=True)
