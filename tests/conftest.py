"""Fixtures shared by tests/unit and tests/cli: a tiny BlockNet, composed Hydra configs, one thread,
and one tiny trained sweep for the whole session (tests/helpers/shared_runs.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from helpers.cli_runner import SMALL_SPLITS

# torch, Hydra and ftcli are imported where used: pytest-xdist's controller process loads this file too,
# and importing them there (about 4 s of CPU) only competes with the workers starting up
if TYPE_CHECKING:
    from omegaconf import DictConfig

    from ftcli.model.blocks import BlockNet

    from helpers.shared_runs import TrainedSweep

# What every composed test config needs: small offline data, random init, the CPU trainer.
FAST_OVERRIDES = [
    "model=resnet18",
    "data=digits",
    "data.image_size=32",
    "model.weights=null",
    "trainer=cpu",
    *SMALL_SPLITS,
]


def pytest_configure(config: pytest.Config) -> None:
    """In a pytest-xdist worker (``make test`` runs one per core): one intra-op thread, here and in
    every process it starts, so that the workers share the cores instead of each spinning on all.
    ftcli is imported first, as its commands are, so that its import guard is in place before a test
    module imports Lightning (``ftcli/import_guard.py``)."""
    import ftcli  # noqa: F401

    if hasattr(config, "workerinput"):
        import torch

        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """Run a module's tests on one intra-op thread, then restore the setting.

    The tensors here are tiny; on a 2-core machine that is busy with other work, two OpenMP threads
    make them ~10x slower than one.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_net() -> Callable[..., BlockNet]:
    """Factory for :func:`make_net` (resnet18 + a fresh linear head for 3 classes by default)."""
    from helpers.nets import make_net

    return make_net


@pytest.fixture
def compose_train() -> Callable[..., DictConfig]:
    """Compose the shipped ``train`` config with FAST_OVERRIDES plus the given overrides."""

    from hydra import compose, initialize_config_dir

    from ftcli.command_line.config_groups import config_dir

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose("train", overrides=[*FAST_OVERRIDES, *overrides])

    return _compose


@pytest.fixture(scope="session")
def digits_sweep(tmp_path_factory: pytest.TempPathFactory) -> TrainedSweep:
    """A finished 2-job sweep on digits 0-6 (job 0 last_layers, job 1 full), trained once per session
    (once for all pytest-xdist workers) for the tests that only read a run or its checkpoint."""
    from helpers.shared_runs import trained_digits_sweep

    return trained_digits_sweep(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``model.name`` of a tiny random-init Llama (2 layers, hidden 32; tests/helpers/text_models.py)."""
    from helpers.text_models import write_tiny_llama

    return "hf/" + str(write_tiny_llama(tmp_path_factory.mktemp("tiny-llama")))
