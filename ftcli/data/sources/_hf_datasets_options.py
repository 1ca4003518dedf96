"""``data=hf_datasets``'s keys, checked: ``data.dataset`` (a Hub name, a local folder or a builder),
``data.splits``, ``data.files`` and the optional strings. A module of ``hf_datasets`` (the source)."""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ftcli.data.checks import expand_path
from ftcli.data.splits import SPLITS
from ftcli.errors import ConfigError, DataError

LOCAL_BUILDERS = ("csv", "json", "parquet", "text", "arrow")  # load_dataset's builders for local files
DEFAULT_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def dataset_option(value: Any) -> str:
    if isinstance(value, str):
        value = value.strip()
    if value in (None, "", "???"):
        raise ConfigError(
            "data.dataset is required for data.name=hf_datasets.",
            "e.g. data.dataset=rotten_tomatoes (a Hub name), or data.dataset=csv data.files=PATH.csv",
        )
    if not isinstance(value, str):
        raise ConfigError(
            f"data.dataset must be a dataset name or builder, got {value!r}.", "e.g. data.dataset=csv"
        )
    return value


def local_folder(dataset: str) -> Path | None:
    """The folder ``data.dataset`` names, if it is one (``load_dataset`` reads its files by split name);
    None for a Hub name or a builder. A path that does not exist, or a file, is an error."""
    path = expand_path(dataset)
    if dataset in LOCAL_BUILDERS:
        return None
    if path.is_dir():
        return path
    if path.is_file():
        builder = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}
        raise ConfigError(
            f"data.dataset={dataset} is a file; data.dataset takes a dataset name, a folder or a builder.",
            f"Use data.dataset={builder.get(path.suffix.lower(), 'csv')} data.files={path}",
        )
    if "://" not in dataset and (dataset.startswith(("/", ".", "~", "$")) or dataset.count("/") > 1):
        raise DataError(
            f"data.dataset={path} does not exist (it is a path, not a Hub name).",
            "Point it at a folder of data files, or use data.dataset=csv data.files=PATH.csv",
        )
    return None


def optional_text(cfg: Mapping[str, Any], key: str) -> str | None:
    value = cfg.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"data.{key} must be a string or null, got {value!r}.")
    return value


def splits_option(value: Any) -> dict[str, str | None]:
    """``data.splits``: ftcli's split -> the dataset's split name (null: carved from train)."""
    if value is None:
        return dict(DEFAULT_SPLITS)
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"data.splits must map train/val/test to the dataset's split names, got {value!r}.",
            "e.g. data.splits.val=validation (null: carve val from train)",
        )
    unknown = sorted(set(value) - set(SPLITS))
    if unknown:
        raise ConfigError(
            f"data.splits has the key(s) {', '.join(unknown)}; ftcli's splits are {', '.join(SPLITS)}.",
            "e.g. data.splits.val=validation data.splits.test=test",
        )
    splits = {**DEFAULT_SPLITS, **value}
    for split, name in splits.items():
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigError(
                f"data.splits.{split} must be a split name of the dataset or null, got {name!r}.",
                f"e.g. data.splits.{split}={DEFAULT_SPLITS[split]}",
            )
    if splits["train"] is None:
        raise ConfigError(
            "data.splits.train is null; the training texts need a split.", "e.g. data.splits.train=train"
        )
    used = [name for name in splits.values() if name is not None]
    if len(set(used)) < len(used):
        raise ConfigError(
            f"data.splits maps two of ftcli's splits to one dataset split ({splits}).",
            "Give each its own split, or null to carve val/test from train.",
        )
    return splits


def files_option(value: Any, dataset: str, splits: Mapping[str, str | None]) -> Any:
    """``data.files`` as ``load_dataset``'s ``data_files`` (paths expanded); local files must exist."""
    if value in (None, ""):
        if dataset in LOCAL_BUILDERS:
            raise ConfigError(
                f"data.files is required for data.dataset={dataset} (the files it reads).",
                f"e.g. data.files=~/reviews.{_suffix(dataset)}, or data.files={{train: a.{_suffix(dataset)}, "
                f"test: b.{_suffix(dataset)}}}",
            )
        return None
    local = dataset in LOCAL_BUILDERS
    if isinstance(value, str):
        return _file(value, "data.files", local)
    if isinstance(value, Sequence):
        return [_file(v, "data.files", local) for v in value]
    if isinstance(value, Mapping):
        names = [name for name in splits.values() if name is not None]
        unused = sorted(str(key) for key in value if key not in names)
        if unused:
            raise ConfigError(
                f"data.files names the split(s) {', '.join(unused)}, which data.splits does not use "
                f"(it reads {', '.join(names)}).",
                "Name the files' splits as data.splits does (train, validation, test), or set "
                f"data.splits.val={unused[0]}",
            )
        return {
            str(key): (
                [_file(v, f"data.files.{key}", local) for v in item]
                if isinstance(item, Sequence) and not isinstance(item, str)
                else _file(item, f"data.files.{key}", local)
            )
            for key, item in value.items()
        }
    raise ConfigError(
        f"data.files must be a path, a glob, a list or a mapping of split -> path, got {value!r}."
    )


def _file(value: Any, key: str, local: bool) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a path or a glob, got {value!r}.", f"e.g. {key}=~/reviews.csv")
    if not local:
        return value  # relative to the dataset (a Hub repo's or a folder's files)
    path = str(expand_path(value))
    if glob.has_magic(path):
        if not glob.glob(path):
            raise DataError(
                f"{key}={value} matches no file.", "Check the pattern, e.g. data.files='~/texts/*.csv'"
            )
    elif not Path(path).is_file():
        raise DataError(
            f"{key}={path} does not exist.", "Point it at a file, a glob or a split -> file mapping."
        )
    return path


def _suffix(builder: str) -> str:
    return {"json": "jsonl", "text": "txt"}.get(builder, builder)
