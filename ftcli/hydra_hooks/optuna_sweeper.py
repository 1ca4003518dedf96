"""ftcli's Hydra sweeper: an Optuna search on its ask-and-tell API, with pruning (``hparams_search=NAME``).

Hydra's own Optuna sweeper plugin stopped at Optuna 2 and only saw finished jobs. This one asks the
study for a trial, samples it (``search_space.sample``: ``hydra.sweeper.params``, the command line's
sweeps, the ``search_when`` keys), runs it as an ordinary job through Hydra's launcher into
``<sweep dir>/<trial number>``, and tells the study how it ended: complete (its objective), pruned
(the run stopped early, ``training/callbacks/trial_pruning.py``) or failed (reported, and the search
goes on; Ctrl-C fails the trial and stops the search). At the end: a ranked table, the best trial's
``ftcli train`` command, ``optimization_results.yaml`` and the plots (``search_results.py``).

The study lives in ``hydra.sweeper.storage`` (default ``sqlite:///<sweep dir>/search.db``; any
SQLAlchemy URL; ``journal:PATH`` for Optuna's journal file on a shared filesystem; null: in memory).
``n_trials`` is the study's total: running the same command again (same sweep dir, or the same storage
and study_name) continues the study up to it, and several workers on one storage share it, each
asking for the next trial, so no trial runs twice. A database storage records a heartbeat while a
trial runs: a trial whose worker died is marked failed after ``study_storage.GRACE_SECONDS`` and run again.

The plugin class Hydra instantiates is ``hydra_plugins.ftcli_sweeper.optuna_sweeper.OptunaSweeper`` (Hydra
accepts plugins from the ``hydra_plugins`` package only); the work is here. Its keys, sampler and
pruner: ``search_options.py``; its storage, heartbeats and study record: ``study_storage.py``. Imports no
torch, and Optuna only inside the functions that use it.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from ftcli.errors import ConfigError
from ftcli.hydra_hooks.search_options import (
    RETURNED_METRIC,
    SearchOptions,
    grid_of,
    make_pruner,
    make_sampler,
    pruner_arguments,
    search_options,
)
from ftcli.hydra_hooks.study_storage import (
    HEARTBEAT_SECONDS,
    counts_toward_total,
    has_heartbeat,
    heartbeat,
    open_storage,
    quiet_optuna,
    record_study,
    tell,
)
from ftcli.ui import console


class OptunaSearch(Sweeper):
    """The sweeper: one trial per job, ask -> launch -> tell, until the study has ``n_trials``."""

    def __init__(self, **keys: Any) -> None:
        # the keys are read (and checked) from the whole config in setup(): search_options
        self.keys = keys
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[Any]:
        import optuna
        from optuna.trial import TrialState

        from ftcli.hydra_hooks import search_results
        from ftcli.hydra_hooks.search_space import reachable_conditional, sample, search_space

        assert self.config is not None
        config = self.config
        options = search_options(config)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        # first, so that a second worker started at the same moment sees a study to join, not a used folder
        record_study(sweep_dir, options)
        if not (sweep_dir / "multirun.yaml").exists():
            OmegaConf.save(config, sweep_dir / "multirun.yaml")
        space = search_space(config.hydra.sweeper.get("params"), arguments)
        grid = None
        if options.sampler == "grid":
            grid = grid_of({**space.sampled, **reachable_conditional(config, space)})
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with quiet_optuna():
            storage = open_storage(options.storage)
        try:
            study = optuna.create_study(
                study_name=options.study_name,
                storage=storage,
                sampler=make_sampler(options, grid),
                pruner=make_pruner(options, _max_epochs(config)),
                direction=options.direction,
                load_if_exists=True,
            )
        except ValueError as exc:  # the stored study has another direction
            raise ConfigError(
                f"hydra.sweeper.study_name={options.study_name} in {options.storage}: {exc}",
                "Give the direction the study was created with, or a new hydra.sweeper.study_name.",
            ) from exc
        _, others = pruner_arguments(options)
        if others:
            console.show_line(
                f"search: pruner_options {', '.join(others)} left out: "
                f"the {options.pruner} pruner does not take them"
            )
        total = options.n_trials
        if grid is not None:
            total = min(total, math.prod(len(v) for v in grid.values()))
        done = sum(counts_toward_total(t) for t in study.get_trials(deepcopy=False))
        console.show_line(
            f"search: study {options.study_name} ({options.storage or 'in memory'}) · {options.direction} "
            f"{options.metric} · sampler {options.sampler} · pruner {options.pruner} · "
            f"{done} of {total} trials done"
        )
        returns = []
        waiting = False
        while True:
            with quiet_optuna():
                optuna.storages.fail_stale_trials(study)  # a dead worker's trial: failed, made up below
                trials = study.get_trials(deepcopy=False)
                if sum(counts_toward_total(t) for t in trials) >= total:
                    running = sum(t.state == TrialState.RUNNING for t in trials)
                    if not running or not has_heartbeat(study):
                        break
                    # other workers' trials: wait for them (a dead one's is failed after GRACE_SECONDS
                    # and made up here), so that the study is complete when this command ends
                    if not waiting:
                        console.show_line(f"search: waiting for {running} trial(s) of other workers")
                        waiting = True
                    time.sleep(HEARTBEAT_SECONDS)
                    continue
                # A sampler seeded by the trial number: one worker's search is reproducible, and a
                # continued study or a second worker draws new values instead of replaying seed 42's
                study.sampler = make_sampler(options, grid, offset=len(trials))  # the grid picks in ask()
                trial = study.ask()
                study.sampler = make_sampler(options, grid, offset=trial.number)  # the others in suggest
            overrides = sample(config, trial, space)
            returns.append(self._run(study, trial, overrides, sweep_dir / str(trial.number), options))
        search_results.finish(study, sweep_dir, options)
        return returns

    def _run(
        self, study: Any, trial: Any, overrides: Sequence[str], run_dir: Path, options: SearchOptions
    ) -> Any:
        """One trial as one job in ``run_dir``; then tell the study how it ended."""
        from optuna.trial import TrialState

        from ftcli.hydra_hooks.run_dir_guard import earlier_results
        from ftcli.training.callbacks import trial_pruning

        trial.set_user_attr("overrides", list(overrides))
        trial.set_user_attr("run_dir", str(run_dir.absolute()))
        found = earlier_results(run_dir)
        if found:  # another study's trial with this number wrote there: never write over a run
            message = f"{run_dir} already holds a run ({', '.join(found)}) of another study"
            trial.set_user_attr("error", message)
            tell(study, trial, state=TrialState.FAIL)
            console.error_console.print(f"search: trial {trial.number} not run: {message}", markup=False)
            return None
        try:
            with (
                trial_pruning.trial_scope(trial, run_dir, options.metric, options.maximize) as outcome,
                heartbeat(study, trial),
            ):
                [job] = self.launcher.launch([list(overrides)], initial_job_idx=trial.number)
        except BaseException:  # Ctrl-C: failed without an error of its own, so a rerun makes it up
            tell(study, trial, state=TrialState.FAIL)
            raise
        try:
            returned = float(job.return_value)
        except Exception as exc:  # a user error (FailedJob) or a crash of the job: the search goes on
            message = getattr(job._return_value, "message", None)
            if message is None:  # not a user error (reported by the job already): a bug, shown here
                message = f"{type(exc).__name__}: {exc}"
                console.error_console.print(f"search: trial {trial.number} crashed: {message}", markup=False)
                if os.environ.get("FTCLI_DEBUG"):
                    console.error_console.print("".join(traceback.format_exception(exc)), markup=False)
            trial.set_user_attr("error", message.splitlines()[0] if message else type(exc).__name__)
            tell(study, trial, state=TrialState.FAIL)
            return job
        if outcome.pruned_epoch is not None:
            trial.set_user_attr("pruned_epoch", outcome.pruned_epoch)
            tell(study, trial, state=TrialState.PRUNED)
            return job
        value = returned if options.metric == RETURNED_METRIC else outcome.best
        if value is None or math.isnan(value):
            trial.set_user_attr("error", f"no {options.metric}: the run validated nothing")
            tell(study, trial, state=TrialState.FAIL)
            return job
        tell(study, trial, value)
        return job


def _max_epochs(config: DictConfig) -> int | None:
    value = OmegaConf.select(config, "trainer.max_epochs", default=None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def register() -> None:
    """Make the sweeper known to Hydra before it starts.

    Hydra finds plugins by listing the ``hydra_plugins`` folders on disk; an editable install
    (``make install``) maps the package through an import hook that such a listing does not see.
    """
    from hydra.core.plugins import Plugins

    from hydra_plugins.ftcli_sweeper.optuna_sweeper import OptunaSweeper

    Plugins.instance().register(OptunaSweeper)
