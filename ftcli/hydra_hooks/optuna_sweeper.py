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
trial runs: a trial whose worker died is marked failed after :data:`GRACE_SECONDS` and run again.

The plugin class Hydra instantiates is ``hydra_plugins.ftcli_sweeper.optuna_sweeper.OptunaSweeper`` (Hydra
accepts plugins from the ``hydra_plugins`` package only); the work is here. Imports no torch, and
Optuna only inside the functions that use it.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from ftcli.errors import ConfigError, reject_unknown_keys, unknown_name
from ftcli.ui import console

SAMPLERS = ("tpe", "random", "cmaes", "grid")
PRUNERS = ("median", "successive_halving", "hyperband", "none")
DIRECTIONS = ("maximize", "minimize")
# the keys of hydra.sweeper (configs/hydra/sweeper/optuna.yaml)
KEYS = (
    "_target_",
    "study_name",
    "storage",
    "direction",
    "metric",
    "n_trials",
    "sampler",
    "seed",
    "n_startup_trials",
    "pruner",
    "pruner_options",
    "params",
)
# the objective the train task returns: its best validation accuracy
RETURNED_METRIC = "val/acc"
# what a trial can report after each validation (the training metrics of an epoch come after it)
METRICS = ("val/acc", "val/loss")
JOURNAL = "journal:"
# what a continued study is recognised by in its sweep folder (run_dir_guard.STUDY_RECORD)
STUDY_RECORD = "study.yaml"
# a running trial's heartbeat; one silent for GRACE_SECONDS belonged to a worker that died
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 30


@dataclass(frozen=True)
class SearchOptions:
    """The checked keys of ``hydra.sweeper``."""

    study_name: str
    storage: str | None
    direction: str
    metric: str
    n_trials: int
    sampler: str
    seed: int | None
    n_startup_trials: int
    pruner: str
    pruner_options: dict[str, Any] = field(default_factory=dict)

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"


def search_options(config: DictConfig) -> SearchOptions:
    """The sweeper's keys, checked: ConfigError naming the key and its valid values."""
    sweeper = config.hydra.sweeper
    reject_unknown_keys([str(k) for k in sweeper], KEYS, "hydra.sweeper", kind="sweeper")
    n_trials = sweeper.get("n_trials")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(
            f"hydra.sweeper.n_trials={n_trials}: a search needs at least one trial.",
            "For example hydra.sweeper.n_trials=20.",
        )
    choices = {"direction": DIRECTIONS, "sampler": SAMPLERS, "pruner": PRUNERS}
    picked = {key: str(sweeper.get(key, values[0])) for key, values in choices.items()}
    for key, value in picked.items():
        if value not in choices[key]:
            raise unknown_name(f"hydra.sweeper.{key}", value, list(choices[key]), key=f"hydra.sweeper.{key}")
    seed = sweeper.get("seed")
    startup = sweeper.get("n_startup_trials", 10)
    for key, value, low in (("seed", seed, 0), ("n_startup_trials", startup, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ConfigError(f"hydra.sweeper.{key}={value} must be a whole number >= {low}.")
    metric = str(sweeper.get("metric") or RETURNED_METRIC)
    if metric not in METRICS:
        raise unknown_name("hydra.sweeper.metric", metric, list(METRICS), key="hydra.sweeper.metric")
    pruner_options = sweeper.get("pruner_options") or {}
    if not isinstance(pruner_options, DictConfig | dict):
        raise ConfigError(
            f"hydra.sweeper.pruner_options={pruner_options} must be a mapping of the pruner's arguments.",
            "For example hydra.sweeper.pruner_options='{n_startup_trials: 3}'.",
        )
    options = SearchOptions(
        study_name=str(sweeper.get("study_name") or "search"),
        storage=None if sweeper.get("storage") is None else str(sweeper.get("storage")),
        direction=picked["direction"],
        metric=metric,
        n_trials=n_trials,
        sampler=picked["sampler"],
        seed=seed,
        n_startup_trials=startup,
        pruner=picked["pruner"],
        pruner_options=dict(
            OmegaConf.to_container(pruner_options)
            if isinstance(pruner_options, DictConfig)
            else pruner_options
        ),
    )
    make_pruner(options, max_epochs=None)  # its arguments, checked before any trial
    return options


def pruner_arguments(options: SearchOptions) -> tuple[dict[str, Any], list[str]]:
    """The ``pruner_options`` the chosen pruner takes, and the names of those that only other pruners
    take (left out, so that ``pruner=hyperband`` works with the median settings of a preset).
    An argument no pruner has is a ConfigError listing the chosen pruner's arguments."""
    import inspect

    by_pruner = {
        name: [p for p in inspect.signature(cls).parameters] for name, cls in _pruner_classes().items()
    }
    kwargs: dict[str, Any] = {}
    others: list[str] = []
    for key, value in options.pruner_options.items():
        if key in by_pruner[options.pruner]:
            kwargs[key] = value
        elif any(key in args for args in by_pruner.values()):
            others.append(key)
        else:
            valid = ", ".join(by_pruner[options.pruner]) or "none"
            raise ConfigError(
                f"hydra.sweeper.pruner_options.{key}: no pruner has such an argument.",
                f"The {options.pruner} pruner's arguments: {valid}.",
            )
    return kwargs, others


def make_pruner(options: SearchOptions, max_epochs: int | None) -> Any:
    """The Optuna pruner ``hydra.sweeper.pruner`` names, built with its ``pruner_options``.

    Hyperband's ``max_resource`` defaults to ``trainer.max_epochs`` (an epoch is the resource).
    """
    kwargs, _ = pruner_arguments(options)
    if options.pruner == "hyperband" and "max_resource" not in kwargs and max_epochs:
        kwargs["max_resource"] = max_epochs
    try:
        return _pruner_classes()[options.pruner](**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"hydra.sweeper.pruner_options for the {options.pruner} pruner: {exc}") from exc


def _pruner_classes() -> dict[str, Any]:
    import optuna

    return {
        "median": optuna.pruners.MedianPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "none": optuna.pruners.NopPruner,
    }


def make_sampler(options: SearchOptions, grid: dict[str, list[Any]] | None, offset: int = 0) -> Any:
    """The Optuna sampler ``hydra.sweeper.sampler`` names, seeded with ``hydra.sweeper.seed + offset``."""
    import optuna

    seed = None if options.seed is None else options.seed + offset
    if options.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=options.n_startup_trials)
    if options.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if options.sampler == "cmaes":
        # CMA-ES models the numeric parameters; categorical and conditional ones are drawn at random
        return optuna.samplers.CmaEsSampler(
            seed=seed, n_startup_trials=options.n_startup_trials, warn_independent_sampling=False
        )
    return optuna.samplers.GridSampler(grid or {}, seed=seed)


def grid_of(space: dict[str, Any]) -> dict[str, list[Any]]:
    """``sampler=grid``: every searched parameter's values (choices, stepped ranges or integer intervals)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    grid: dict[str, list[Any]] = {}
    for key, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            grid[key] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            grid[key] = list(range(dist.low, dist.high + 1, dist.step))
        elif isinstance(dist, FloatDistribution) and dist.step is not None:
            count = round((dist.high - dist.low) / dist.step) + 1
            grid[key] = [dist.low + i * dist.step for i in range(count)]
        else:
            raise ConfigError(
                f"hydra.sweeper.sampler=grid cannot enumerate {key} (a continuous interval).",
                f"Give {key} as choice(...) or range(lo, hi, step), or use hydra.sweeper.sampler=tpe.",
            )
    return grid


def open_storage(url: str | None) -> Any:
    """An Optuna storage: a database URL (with heartbeats), ``journal:PATH``, or None (in memory)."""
    import optuna

    if url is None:
        return None
    if url.startswith(JOURNAL):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix(JOURNAL)).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            # several workers on one SQLite file wait for each other's writes instead of failing
            engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
        )
    except Exception as exc:  # SQLAlchemy's errors: a bad URL, a missing driver, an unreachable server
        raise ConfigError(
            f"hydra.sweeper.storage={url}: cannot open the study storage ({type(exc).__name__}: {exc}).",
            "Give a database URL (sqlite:///search.db, postgresql://...), journal:PATH for a journal file "
            "on a shared filesystem, or null for a study in memory.",
        ) from exc


def counts_toward_total(trial: Any) -> bool:
    """Whether a trial counts toward ``n_trials``: finished (complete, pruned, failed by its job) or
    running in a live worker; a trial whose worker died (failed by the heartbeat) does not, so a rerun
    makes it up."""
    from optuna.trial import TrialState

    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return True
    return trial.state == TrialState.FAIL and "error" in trial.user_attrs


@contextlib.contextmanager
def heartbeat(study: Any, trial: Any) -> Iterator[None]:
    """Record the trial's heartbeat while it runs (database storages; ask-and-tell has none of its own)."""
    record = getattr(study._storage, "record_heartbeat", None)
    if record is None or not _has_heartbeat(study):
        yield
        return
    stop = threading.Event()
    trial_id = trial._trial_id  # Optuna's own heartbeat thread uses the same id

    def beat() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a missed beat must not end the trial
                record(trial_id)
            stop.wait(HEARTBEAT_SECONDS)

    thread = threading.Thread(target=beat, name="ftcli-search-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def tell(study: Any, trial: Any, value: float | None = None, state: Any = None) -> None:
    """``study.tell``. The grid sampler calls ``study.stop()`` after the last point of its grid, which
    Optuna allows only inside ``study.optimize``; the trial is stored by then, and the loop here ends
    by itself (``n_trials`` is capped at the grid's size)."""
    try:
        study.tell(trial, value, state=state)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Without Optuna's warnings about what ftcli does on purpose: heartbeats with ask-and-tell (its
    own loop, ``study.optimize``, is not used) and the experimental ``fail_stale_trials``."""
    import warnings

    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage", category=UserWarning)
        yield


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
        _record_study(sweep_dir, options)
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
                    if not running or not _has_heartbeat(study):
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


def _has_heartbeat(study: Any) -> bool:
    """Whether the study's storage records heartbeats (a database storage), so dead trials are found."""
    return getattr(study._storage, "get_heartbeat_interval", lambda: None)() is not None


def _max_epochs(config: DictConfig) -> int | None:
    value = OmegaConf.select(config, "trainer.max_epochs", default=None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _record_study(sweep_dir: Path, options: SearchOptions) -> None:
    """``<sweep dir>/study.yaml``: the storage and study this folder's trials belong to (RunDirGuard
    lets the same study continue in it)."""
    from ftcli.atomic_files import atomic_write_text

    record = {"study_name": options.study_name, "storage": options.storage}
    atomic_write_text(sweep_dir / STUDY_RECORD, OmegaConf.to_yaml(OmegaConf.create(record)))


def continues_study(config: DictConfig, sweep_dir: Path) -> bool:
    """Whether ``sweep_dir`` holds this very study (same storage, same name, a storage kept on disk):
    running the command again continues it there."""
    path = sweep_dir / STUDY_RECORD
    if not path.is_file() or "optuna" not in str(config.hydra.sweeper.get("_target_", "")).lower():
        return False
    try:
        options = search_options(config)
    except ConfigError:  # reported by SearchSpaceCheck, which runs first
        return False
    record = OmegaConf.load(path)
    return (
        options.storage is not None
        and record.get("storage") == options.storage
        and record.get("study_name") == options.study_name
    )


def register() -> None:
    """Make the sweeper known to Hydra before it starts.

    Hydra finds plugins by listing the ``hydra_plugins`` folders on disk; an editable install
    (``make install``) maps the package through an import hook that such a listing does not see.
    """
    from hydra.core.plugins import Plugins

    from hydra_plugins.ftcli_sweeper.optuna_sweeper import OptunaSweeper

    Plugins.instance().register(OptunaSweeper)
