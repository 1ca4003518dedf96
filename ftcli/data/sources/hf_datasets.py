"""``data=hf_datasets``: labelled texts read by the Hugging Face ``datasets`` library (``load_dataset``).

``data.dataset`` is what ``datasets.load_dataset`` takes: a dataset on the Hub (``imdb``,
``rotten_tomatoes``, ``user/name``), a local folder of data files, or a builder for local files
(``csv``, ``json``, ``parquet``, ``text``, ``arrow``) with ``data.files`` (a path, a glob, a list, or a
mapping of split name -> path). The library keeps what it read as Arrow files in its cache
(``data.cache_dir``, default its own: ``$HF_DATASETS_CACHE``), so a second run reads no text files.

A Hub name is looked up in the cache first; uncached, it is downloaded unless ``FTCLI_OFFLINE`` or
``HF_DATASETS_OFFLINE`` / ``HF_HUB_OFFLINE`` is set, and an offline miss is an error in well under a
second that names the cache folder. ``data.splits`` maps ftcli's train/val/test to the dataset's split
names; a val or test split the dataset lacks (under its default name, or set to null) is carved from
train by ``data.val_fraction`` / ``data.test_fraction``, stratified and seeded, as ``text_csv`` does.
The classes are a ``ClassLabel`` feature's names in its order (those with training texts), else the
training split's distinct labels sorted as ``text_csv`` sorts them (whole numbers numerically).

``datasets`` is imported inside the functions (the ``text`` extra): image runs never import it.
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ftcli.data.checks import expand_path, fractions
from ftcli.data.sources import data_source
from ftcli.data.splits import SPLITS, Sample, as_columns, carve_missing
from ftcli.data.text.datamodule import TextDataModule
from ftcli.data.text.spec import TextSpec
from ftcli.data.text.table_files import class_order, column_option
from ftcli.errors import ConfigError, DataError

LOCAL_BUILDERS = ("csv", "json", "parquet", "text", "arrow")  # load_dataset's builders for local files
DEFAULT_SPLITS = {"train": "train", "val": "validation", "test": "test"}
INSTALL_HINT = "pip install 'ftcli[text]' (it installs the datasets library)"
LOCAL_HINT = "or use local files: data.dataset=csv data.files=PATH.csv (json, parquet, text too)"
TEXT_TYPES = ("string", "large_string")
WHOLE_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


@data_source("hf_datasets")
class HfDatasetsDataModule(TextDataModule):
    """Labelled texts from ``datasets.load_dataset(data.dataset, data.config, data_files=data.files)``."""

    def __init__(self, cfg: Mapping[str, Any], spec: TextSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        self.dataset_name = _dataset_option(cfg.get("dataset"))
        self.config_name = _optional_text(cfg, "config")
        self.text_column = column_option(cfg, "text_column", "text")
        self.label_column = column_option(cfg, "label_column", "label")
        self.val_fraction, self.test_fraction = fractions(cfg, 0.2, 0.0)
        self.split_names = _splits_option(cfg.get("splits"))
        cache_dir = _optional_text(cfg, "cache_dir")
        self.cache_dir = expand_path(cache_dir) if cache_dir else None
        self.folder = _local_folder(self.dataset_name)
        self.local = self.dataset_name in LOCAL_BUILDERS or self.folder is not None
        self.files = _files_option(cfg.get("files"), self.dataset_name, self.split_names)
        source = str(self.folder) if self.folder is not None else self.dataset_name
        loaded = load(source, self.config_name, self.files, self.cache_dir, self.local)
        self.chosen = _choose_splits(loaded, self.split_names, self.dataset_name)
        rows = {
            split: _rows(loaded[name], name, self.dataset_name, self.text_column, self.label_column)
            for split, name in self.chosen.items()
        }
        names = _class_label_names(loaded[self.chosen["train"]].features[self.label_column])
        train_labels = {label for _, label in rows["train"]}
        self.class_names = (
            [name for name in names if name in train_labels] if names else class_order(train_labels)
        )
        self._check_classes(rows)
        index = {name: i for i, name in enumerate(self.class_names)}
        samples = {
            split: [(text, index[label]) for text, label in split_rows] for split, split_rows in rows.items()
        }
        self._use_splits(as_columns(self._carve(samples)))

    @property
    def root(self) -> Path | None:
        """The local folder, or the one local file, the texts were read from (None for a Hub dataset)."""
        if self.dataset_name not in LOCAL_BUILDERS:
            return self.folder
        if isinstance(self.files, str) and not glob.has_magic(self.files):
            return Path(self.files)
        return None

    def _where(self, split: str) -> str:
        return f"data.dataset={self.dataset_name} split '{self.chosen[split]}'"

    def _check_classes(self, rows: Mapping[str, list[tuple[str, str]]]) -> None:
        """At least two classes in train; every val/test label among them."""
        if len(self.class_names) < 2:
            raise DataError(
                f"{self._where('train')} has {len(self.class_names)} label(s) {self.class_names} "
                f"in data.label_column={self.label_column}; a classifier needs at least 2.",
                "Pick a dataset with texts of more classes, or check data.label_column.",
            )
        known = set(self.class_names)
        for split in ("val", "test"):
            for i, (_, label) in enumerate(rows.get(split, [])):
                if label not in known:
                    raise DataError(
                        f"{self._where(split)} row {i}: label '{label}' is in the {split} split but not in "
                        f"train ({self._where('train')}: {', '.join(self.class_names)}).",
                        "Every val/test label needs training texts: map another split (data.splits."
                        f"{split}=NAME), or set data.splits.{split}=null to carve {split} from train.",
                    )

    def _carve(self, samples: dict[str, list[Sample]]) -> dict[str, list[Sample]]:
        """Val (and test) carved from train where the dataset gives none; a run needs val."""
        samples = carve_missing(
            samples,
            self.class_names,
            self.val_fraction,
            self.test_fraction,
            self.seed,
            self._where("train"),
            "text",
        )
        if "val" not in samples:
            raise DataError(
                f"data.dataset={self.dataset_name} gives no validation texts (no split "
                f"'{self.split_names['val'] or DEFAULT_SPLITS['val']}', and data.val_fraction=0).",
                "Set data.val_fraction=0.1 (carved from train), or data.splits.val=NAME (one of its splits).",
            )
        return samples


# ---------------------------------------------------------------------------- options


def _dataset_option(value: Any) -> str:
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


def _local_folder(dataset: str) -> Path | None:
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


def _optional_text(cfg: Mapping[str, Any], key: str) -> str | None:
    value = cfg.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"data.{key} must be a string or null, got {value!r}.")
    return value


def _splits_option(value: Any) -> dict[str, str | None]:
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


def _files_option(value: Any, dataset: str, splits: Mapping[str, str | None]) -> Any:
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


# ---------------------------------------------------------------------------- loading


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


# ---------------------------------------------------------------------------- splits, columns, labels


def _choose_splits(
    loaded: Mapping[str, Any], wanted: Mapping[str, str | None], dataset: str
) -> dict[str, str]:
    """ftcli's split -> the dataset's split read as it; a val/test missing under its default name (or
    null) is left to be carved from train, any other missing name is an error listing the splits."""
    available = list(loaded)
    chosen: dict[str, str] = {}
    for split in SPLITS:
        name = wanted[split]
        if name is None:
            continue
        if name in available:
            chosen[split] = name
        elif split == "train" or name != DEFAULT_SPLITS[split]:
            raise DataError(
                f"data.splits.{split}={name}: data.dataset={dataset} has no split '{name}' "
                f"(its splits: {', '.join(available) or 'none'}).",
                f"Set data.splits.{split} to one of them"
                + ("." if split == "train" else f", or null to carve {split} from train."),
            )
    return chosen


def _class_label_names(feature: Any) -> list[str] | None:
    """A ``ClassLabel`` feature's names (in its order), else None."""
    names = getattr(feature, "names", None)
    return [str(name) for name in names] if type(feature).__name__ == "ClassLabel" and names else None


def _rows(split: Any, name: str, dataset: str, text_column: str, label_column: str) -> list[tuple[str, str]]:
    """(text, label as text) for every row of one dataset split; DataError for a missing column, a
    column of the wrong type, an empty text or a missing label."""
    where = f"data.dataset={dataset} split '{name}'"
    columns = list(split.column_names)
    for key, column in (("text_column", text_column), ("label_column", label_column)):
        if column not in columns:
            raise DataError(
                f"{where} has no column '{column}' (data.{key}; columns found: {', '.join(columns)}).",
                "Pick the columns: data.text_column=NAME data.label_column=NAME",
            )
    text_feature, label_feature = split.features[text_column], split.features[label_column]
    if getattr(text_feature, "dtype", None) not in TEXT_TYPES:
        raise DataError(
            f"{where}: column '{text_column}' (data.text_column) holds {text_feature}, not texts.",
            f"Pick the column of texts (columns: {', '.join(columns)}).",
        )
    names = _class_label_names(label_feature)
    if names is None and getattr(label_feature, "dtype", None) not in TEXT_TYPES + WHOLE_TYPES:
        raise DataError(
            f"{where}: column '{label_column}' (data.label_column) holds {label_feature}, neither strings "
            "nor whole numbers.",
            f"Pick the column of labels (columns: {', '.join(columns)}).",
        )
    rows = []
    for i, (text, label) in enumerate(zip(split[text_column], split[label_column], strict=True)):
        if text is None or not text.strip():
            raise DataError(
                f"{where} row {i} (counting from 0) has an empty text.", "Fill in or delete that row."
            )
        if names is not None:
            if label is None or not 0 <= label < len(names):
                raise DataError(
                    f"{where} row {i} (counting from 0) has no label ({label}; classes: {', '.join(names)}).",
                    "A split without labels (-1, as in GLUE's test splits) cannot score: set "
                    "data.splits.test=null to carve the test split from train.",
                )
            rows.append((text, names[label]))
            continue
        shown = "" if label is None else str(label).strip()
        if not shown:
            raise DataError(
                f"{where} row {i} (counting from 0) has an empty label.", "Fill in or delete that row."
            )
        rows.append((text, shown))
    if not rows:
        raise DataError(f"{where} holds no rows.", "Add texts to it, or map another split in data.splits.")
    return rows
