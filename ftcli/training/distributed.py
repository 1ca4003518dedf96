"""Leave no DDP state behind a run: the next job of a sweep, in the same process, starts clean."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextmanager
def distributed_scope() -> Iterator[None]:
    """Leave no DDP state behind a job: the next job of a sweep (same process) starts clean.

    Lightning's launcher writes LOCAL_RANK and friends into this process's environment and keeps
    the process group; the next job would take both as "already launched" and wait for ranks that
    have exited.
    """
    saved = {name: os.environ.get(name) for name in DDP_ENV}
    try:
        yield
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
