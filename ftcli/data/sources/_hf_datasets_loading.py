"""``data=hf_datasets``'s reading: the ``datasets`` library imported on demand and quiet, a Hub name from
the cache first and downloaded only when online, and every failure a clear error naming the cache.
A module of ``hf_datasets`` (the source)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ftcli.errors import ConfigError, DataError

INSTALL_HINT = "pip install 'ftcli[text]' (it installs the datasets library)"
LOCAL_HINT = "or use local files: data.dataset=csv data.files=PATH.csv (json, parquet, text too)"


def datasets_library() -> Any:
    """The ``datasets`` module, quiet (ftcli prints its own lines); a ConfigError when not installed."""
    try:
        import datasets
    except ImportError as exc:
        raise ConfigError(
            f"data=hf_datasets needs the datasets library, which is not installed ({exc}).", INSTALL_HINT
        ) from exc
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    return datasets


def cache_folder(cache_dir: Path | None) -> str:
    """Where ``load_dataset`` keeps what it read: ``data.cache_dir``, else the library's cache."""
    return str(cache_dir) if cache_dir else str(datasets_library().config.HF_DATASETS_CACHE)


def offline() -> bool:
    """``FTCLI_OFFLINE`` (as for weights), ``HF_DATASETS_OFFLINE`` or ``HF_HUB_OFFLINE``: read now, so a
    variable set after ``datasets`` was imported counts too."""
    if os.environ.get("FTCLI_OFFLINE", "") not in ("", "0"):
        return True
    for variable in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(variable, "").upper() in ("1", "ON", "YES", "TRUE"):
            return True
    return bool(datasets_library().config.HF_HUB_OFFLINE)


@contextlib.contextmanager
def _cache_only() -> Iterator[None]:
    """The datasets library in offline mode for a while: a Hub name is read from the cache, or fails now."""
    config = datasets_library().config
    before = config.HF_HUB_OFFLINE
    config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        config.HF_HUB_OFFLINE = before


def load(dataset: str, config: str | None, files: Any, cache_dir: Path | None, local: bool) -> Any:
    """The ``DatasetDict`` of ``dataset``: local files as given; a Hub name from the cache first, then
    downloaded unless offline; every failure a DataError or ConfigError naming the key."""
    datasets = datasets_library()
    kwargs = {"data_files": files, "cache_dir": str(cache_dir) if cache_dir else None}
    if local:
        return _read(datasets, dataset, config, kwargs, cache_dir)
    cached_other: ValueError | None = None  # in the cache, but not that config
    try:
        with _cache_only():
            return _as_splits(datasets.load_dataset(dataset, config, **kwargs))
    except (ConnectionError, FileNotFoundError):  # not cached (DatasetNotFoundError is a FileNotFoundError)
        pass
    except ValueError as exc:
        cached_other = exc
    if offline():
        if cached_other is not None:
            raise _read_error(cached_other, dataset, config, cache_dir) from cached_other
        reason = "offline mode is set: FTCLI_OFFLINE, HF_DATASETS_OFFLINE or HF_HUB_OFFLINE"
    else:
        try:
            from huggingface_hub import HfApi

            HfApi().dataset_info(dataset, timeout=10)  # fails in a moment without a network
        except Exception as exc:  # no network, an unknown or a gated dataset
            reason = f"{type(exc).__name__}: {_first_line(exc)}"
        else:
            return _read(datasets, dataset, config, kwargs, cache_dir)
    raise _not_cached(dataset, reason, cache_dir)


def _read(datasets: Any, dataset: str, config: str | None, kwargs: Mapping[str, Any], cache_dir: Any) -> Any:
    try:
        return _as_splits(datasets.load_dataset(dataset, config, **kwargs))
    except (
        ValueError,
        OSError,
        RuntimeError,
    ) as exc:  # OSError: ConnectionError, FileNotFoundError, pyarrow's
        raise _read_error(exc, dataset, config, cache_dir) from exc


def _as_splits(loaded: Any) -> Mapping[str, Any]:
    return loaded if isinstance(loaded, Mapping) else {"train": loaded}  # a DatasetDict is a dict


def _read_error(exc: Exception, dataset: str, config: str | None, cache_dir: Any) -> DataError | ConfigError:
    """The error of a ``load_dataset`` call that failed, naming the key to change."""
    text = _first_line(exc)
    if isinstance(exc, ConnectionError):
        return _not_cached(dataset, f"{type(exc).__name__}: {text}", cache_dir)
    if isinstance(exc, ValueError) and "config" in str(exc).lower():  # the config names follow
        shown = " ".join(str(exc).split())
        return ConfigError(f"data.config={config}: {shown}", "Set data.config to one of the names listed.")
    return DataError(f"data.dataset={dataset} cannot be read ({type(exc).__name__}: {text}).", LOCAL_HINT)


def _not_cached(dataset: str, reason: str, cache_dir: Any) -> DataError:
    return DataError(
        f"data.dataset={dataset} is not in the datasets cache and could not be downloaded ({reason}).",
        f"Cache folder: {cache_folder(cache_dir)}. Load it once where there is internet "
        f"(datasets.load_dataset('{dataset}')) and copy that folder here (or point data.cache_dir at it), "
        f"{LOCAL_HINT}.",
    )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
