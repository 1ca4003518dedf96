"""Where an Optuna study lives and how its trials are kept honest: the storage (``open_storage``: a
database with heartbeats, a journal file, or memory), which trials count toward ``n_trials``, a running
trial's heartbeat, and the sweep folder's record of its study (``continues_study``: running the same
command again continues it). Imports no torch, and Optuna only inside the functions that use it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ftcli.errors import ConfigError
from ftcli.hydra_hooks.search_options import SearchOptions, search_options

JOURNAL = "journal:"
# what a continued study is recognised by in its sweep folder (run_dir_guard.STUDY_RECORD)
STUDY_RECORD = "study.yaml"
# a running trial's heartbeat; one silent for GRACE_SECONDS belonged to a worker that died
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 30


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
    if record is None or not has_heartbeat(study):
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


def has_heartbeat(study: Any) -> bool:
    """Whether the study's storage records heartbeats (a database storage), so dead trials are found."""
    return getattr(study._storage, "get_heartbeat_interval", lambda: None)() is not None


def record_study(sweep_dir: Path, options: SearchOptions) -> None:
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
