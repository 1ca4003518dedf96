"""Lightning's log lines, printed once each through Hydra's handlers, without the known noise."""

from __future__ import annotations

import logging
import re
import warnings

NOISE = (
    "litlogger",
    "TPU available",
    "exists and is not empty",
    "module(s) in eval mode",
    "LeafSpec",
    "smaller than the logging interval",
    "was configured so 100%",
    # resume: the resumed run writes its own checkpoints/ on purpose, the earlier run's stay as they are
    "The dirpath has changed from",
)


class _DropNoise(logging.Filter):
    """Drops Lightning lines that say nothing about this run (adverts, absent hardware)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in NOISE)


def quiet_lightning() -> None:
    """Log each Lightning line once, through Hydra's handlers, without the known noise.

    ``import lightning`` puts its own console handler on the ``lightning`` logger while also
    propagating to the root logger that Hydra configured: every line would print twice.
    The frozen-BatchNorm modules that the freeze plan keeps in eval mode are intentional.
    """
    import lightning  # noqa: F401  (its import adds the handler removed here)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _DropNoise) for f in handler.filters):
            handler.addFilter(_DropNoise())
    for text in NOISE:
        warnings.filterwarnings("ignore", message=f".*{re.escape(text)}.*")
