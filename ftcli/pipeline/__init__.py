"""The one path from a composed config to a fitted model (docs/ARCHITECTURE.md, "The path of one
``ftcli train``"): :func:`plan_run` checks the config once and builds what a run needs (``inspect`` shows
it, ``advise`` probes it, ``lrfind`` sweeps its learning rate); :func:`run` fits and tests it and
writes the run folder. Commands parse arguments and print; tests and benchmarks call these too.
"""

from ftcli.pipeline.fitting import RunResult, run
from ftcli.pipeline.planning import RunPlan, plan_run

__all__ = ["RunPlan", "RunResult", "plan_run", "run"]
