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

``datasets`` is imported inside the functions (the ``text`` extra): image runs never import it. The keys
are checked in ``_hf_datasets_options.py``, the library is called in ``_hf_datasets_loading.py``.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ftcli.data.checks import expand_path, fractions
from ftcli.data.sources import data_source
from ftcli.data.sources._hf_datasets_loading import load
from ftcli.data.sources._hf_datasets_options import (
    DEFAULT_SPLITS,
    LOCAL_BUILDERS,
    dataset_option,
    files_option,
    local_folder,
    optional_text,
    splits_option,
)
from ftcli.data.splits import SPLITS, Sample, as_columns, carve_missing
from ftcli.data.text.datamodule import TextDataModule
from ftcli.data.text.spec import TextSpec
from ftcli.data.text.table_files import class_order, column_option
from ftcli.errors import DataError

TEXT_TYPES = ("string", "large_string")
WHOLE_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


@data_source("hf_datasets")
class HfDatasetsDataModule(TextDataModule):
    """Labelled texts from ``datasets.load_dataset(data.dataset, data.config, data_files=data.files)``."""

    def __init__(self, cfg: Mapping[str, Any], spec: TextSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        self.dataset_name = dataset_option(cfg.get("dataset"))
        self.config_name = optional_text(cfg, "config")
        self.text_column = column_option(cfg, "text_column", "text")
        self.label_column = column_option(cfg, "label_column", "label")
        self.val_fraction, self.test_fraction = fractions(cfg, 0.2, 0.0)
        self.split_names = splits_option(cfg.get("splits"))
        cache_dir = optional_text(cfg, "cache_dir")
        self.cache_dir = expand_path(cache_dir) if cache_dir else None
        self.folder = local_folder(self.dataset_name)
        self.local = self.dataset_name in LOCAL_BUILDERS or self.folder is not None
        self.files = files_option(cfg.get("files"), self.dataset_name, self.split_names)
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
