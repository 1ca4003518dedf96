"""What Lightning's pass-through Trainer arguments accept (``trainer.strategy``, ``precision``,
``max_time``, ``gradient_clip_algorithm``), as the installed Lightning (2.6) defines them.

The config layer imports no lightning (``make lint``), so the values are written out here; the schema
(``ftcli.config.schema``) checks the keys against them before the Trainer starts, and
tests/unit/test_config_schema.py checks them against the installed Lightning, so an upgrade that
changes them fails a test instead of a user's run.
"""

from __future__ import annotations

LIGHTNING_STRATEGIES = (
    "auto",
    "ddp",
    "ddp_find_unused_parameters_false",
    "ddp_find_unused_parameters_true",
    "ddp_fork",
    "ddp_fork_find_unused_parameters_false",
    "ddp_fork_find_unused_parameters_true",
    "ddp_notebook",
    "ddp_notebook_find_unused_parameters_false",
    "ddp_notebook_find_unused_parameters_true",
    "ddp_spawn",
    "ddp_spawn_find_unused_parameters_false",
    "ddp_spawn_find_unused_parameters_true",
    "deepspeed",
    "deepspeed_stage_1",
    "deepspeed_stage_2",
    "deepspeed_stage_2_offload",
    "deepspeed_stage_3",
    "deepspeed_stage_3_offload",
    "deepspeed_stage_3_offload_nvme",
    "fsdp",
    "fsdp_cpu_offload",
    "single_device",
    "single_tpu",
    "single_xla",
    "xla",
    "xla_debug",
)
# ftcli's auto (ftcli.device.resolve_precision), Lightning's names and its aliases (also as integers)
LIGHTNING_PRECISIONS = (
    "auto",
    "32-true",
    "16-mixed",
    "bf16-mixed",
    "16-true",
    "bf16-true",
    "64-true",
    "transformer-engine",
    "transformer-engine-float16",
    "64",
    "32",
    "16",
    "bf16",
)
PRECISION_INTS = (64, 32, 16)
TIMEDELTA_KEYS = ("weeks", "days", "hours", "minutes", "seconds", "milliseconds", "microseconds")
GRADIENT_CLIP_ALGORITHMS = ("norm", "value")
