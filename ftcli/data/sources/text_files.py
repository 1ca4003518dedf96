"""``data=text_csv`` / ``data=text_jsonl``: your labelled texts in CSV or JSON Lines files.

``data.root=DIR`` holds ``train.csv`` and optionally ``val.csv`` and ``test.csv`` (``.jsonl`` for
``text_jsonl``); a missing val (and, with ``data.test_fraction>0``, test) split is carved from train,
stratified and seeded, as the image folders do. ``data.root=FILE`` is one file split by
``data.val_fraction`` / ``data.test_fraction``. The classes are the training split's distinct labels,
sorted (whole numbers numerically).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ftcli.data.checks import expand_path, fractions
from ftcli.data.sources import data_source
from ftcli.data.splits import SPLITS, Sample, as_columns, carve_missing, stratified_split
from ftcli.data.text.datamodule import TextDataModule
from ftcli.data.text.spec import TextSpec
from ftcli.data.text.table_files import FORMATS, class_order, column_option, read_rows
from ftcli.errors import ConfigError, DataError


class TextFilesDataModule(TextDataModule):
    """Labelled texts in ``<split><suffix>`` files under ``data.root``, or in the one file it names."""

    suffix: ClassVar[str] = ""

    def __init__(self, cfg: Mapping[str, Any], spec: TextSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        root = cfg.get("root")
        if root in (None, ""):
            raise ConfigError(f"data.root is required for data.name={self.name}.", self._layout())
        self._root = expand_path(root)
        self.text_column = column_option(cfg, "text_column", "text")
        self.label_column = column_option(cfg, "label_column", "label")
        self.val_fraction, self.test_fraction = fractions(cfg, 0.2, 0.0)
        files = self._files()
        rows = {
            split: read_rows(path, self.suffix, self.text_column, self.label_column)
            for split, path in files.items()
        }
        self.class_names = class_order(row.label for row in rows["train"])
        if len(self.class_names) < 2:
            raise DataError(
                f"{files['train']} has {len(self.class_names)} label(s) {self.class_names}; a classifier "
                "needs at least 2.",
                "Add texts of more classes, or check data.label_column.",
            )
        index = {name: i for i, name in enumerate(self.class_names)}
        for split in ("val", "test"):
            for row in rows.get(split, []):
                if row.label not in index:
                    raise DataError(
                        f"{files[split]} line {row.line}: label '{row.label}' is in the {split} split but "
                        f"not in train ({files['train']}: {', '.join(self.class_names)}).",
                        "Every val/test label needs training texts: fix the label or add training rows.",
                    )
        samples = {
            split: [(row.text, index[row.label]) for row in split_rows] for split, split_rows in rows.items()
        }
        self._use_splits(as_columns(self._split(samples, files)))

    @property
    def root(self) -> Path:
        """The folder of split files, or the one file."""
        return self._root

    def _layout(self) -> str:
        s = self.suffix
        return (
            f"Set data.root=DIR holding train{s} (val{s}, test{s} optional), or data.root=FILE{s} (split by "
            f"data.val_fraction); {FORMATS[s]} with the columns text and label."
        )

    def _files(self) -> dict[str, Path]:
        """The file of each split found: the one ``data.root`` file (as train), or ``DIR/<split><suffix>``."""
        root = self._root
        if not root.exists():
            raise DataError(f"data.root={root} does not exist.", self._layout())
        if root.is_file():
            other = FORMATS.get(root.suffix.lower())
            if other and root.suffix.lower() != self.suffix:
                flavour = "text_csv" if root.suffix.lower() == ".csv" else "text_jsonl"
                raise DataError(
                    f"data.root={root} is a {other} file; data.name={self.name} reads "
                    f"{FORMATS[self.suffix]}.",
                    f"Use data={flavour} data.root={root}",
                )
            return {"train": root}
        files = {split: root / f"{split}{self.suffix}" for split in SPLITS}
        files = {split: path for split, path in files.items() if path.is_file()}
        if "train" not in files:
            found = ", ".join(sorted(p.name for p in root.iterdir())[:10]) or "nothing"
            raise DataError(
                f"data.root={root} holds no train{self.suffix} (found: {found}).",
                self._layout(),
            )
        return files

    def _split(self, samples: dict[str, list[Sample]], files: Mapping[str, Path]) -> dict[str, list[Sample]]:
        """Val (and test) carved from train where no file of their own holds them; a split needs val."""
        where = str(files["train"])
        if self._root.is_file():
            train = samples["train"]
            idx = stratified_split(
                [label for _, label in train],
                self.class_names,
                self.val_fraction,
                self.test_fraction,
                self.seed,
                where,
                "text",
            )
            samples = {split: [train[i] for i in ids] for split, ids in idx.items() if ids}
        else:
            samples = carve_missing(
                samples, self.class_names, self.val_fraction, self.test_fraction, self.seed, where, "text"
            )
        if "val" not in samples:
            raise DataError(
                f"data.root={self._root} gives no validation texts "
                f"(no val{self.suffix}, and data.val_fraction=0).",
                f"Set data.val_fraction=0.1 (carved from train), or add val{self.suffix}.",
            )
        return samples


@data_source("text_csv")
class TextCsvDataModule(TextFilesDataModule):
    """Labelled texts in CSV files (a header line, then ``text,label`` rows)."""

    suffix = ".csv"


@data_source("text_jsonl")
class TextJsonlDataModule(TextFilesDataModule):
    """Labelled texts in JSON Lines files (one ``{"text": ..., "label": ...}`` object per line)."""

    suffix = ".jsonl"
