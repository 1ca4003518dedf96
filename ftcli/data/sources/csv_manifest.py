"""``data=csv``: a CSV manifest with ``path`` and ``label`` columns and an optional ``split`` column."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ftcli import notices
from ftcli.data.checks import check_file, expand_path, fractions
from ftcli.data.images.file_datamodule import FileDataModule
from ftcli.data.images.transforms import TransformSpec
from ftcli.data.sources import data_source
from ftcli.data.splits import Sample, carve_missing, stratified_split
from ftcli.errors import ConfigError, DataError

SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@data_source("csv")
class CsvDataModule(FileDataModule):
    """A CSV manifest with ``path`` and ``label`` columns and an optional ``split`` column."""

    def __init__(self, cfg: Mapping[str, Any], spec: TransformSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        manifest = cfg.get("manifest")
        if manifest in (None, ""):
            raise ConfigError(
                "data.manifest is required for data.name=csv.",
                "Set data.manifest=/path/to/labels.csv (columns: path,label[,split]).",
            )
        self.manifest = expand_path(manifest)
        root = cfg.get("root")
        self._root = expand_path(root) if root not in (None, "") else self.manifest.parent
        self.val_fraction, self.test_fraction = fractions(cfg, 0.2, 0.0)
        self._ensure_scanned()

    @property
    def root(self) -> Path:
        """The folder that manifest paths are relative to."""
        return self._root

    def describe(self) -> dict[str, Any]:
        """As for every module, plus the manifest path."""
        return {**super().describe(), "manifest": str(self.manifest)}

    def _scan(self) -> tuple[list[str], dict[str, list[Sample]]]:
        rows = read_manifest(self.manifest, self.root)
        has_split = any(split is not None for _, _, split in rows)
        train_labels = {label for _, label, split in rows if split in (None, "train")}
        class_names = sorted(train_labels)
        if len(class_names) < 2:
            raise DataError(
                f"{self.manifest} has {len(class_names)} training label(s) {class_names}; "
                "a classifier needs at least 2.",
                "Add rows for more classes.",
            )
        index = {name: i for i, name in enumerate(class_names)}
        for _, label, split in rows:
            if label not in index:
                raise DataError(
                    f"{self.manifest}: label '{label}' appears in the {split} split but not in train.",
                    "Every val/test label needs training rows; fix the label or add training rows.",
                )
        if not has_split:
            labels = [index[label] for _, label, _ in rows]
            where = f"{self.manifest}"
            idx = stratified_split(
                labels, class_names, self.val_fraction, self.test_fraction, self.seed, where
            )
            return class_names, {s: [(rows[i][0], labels[i]) for i in ids] for s, ids in idx.items()}
        samples: dict[str, list[Sample]] = {}
        for path, label, split in rows:
            samples.setdefault(split or "train", []).append((path, index[label]))
        if "train" not in samples:
            raise DataError(f"{self.manifest} has no rows with split=train.", "Mark some rows as train.")
        return class_names, carve_missing(
            samples, class_names, self.val_fraction, self.test_fraction, self.seed, str(self.manifest)
        )


def read_manifest(manifest: Path, root: Path) -> list[tuple[str, str, str | None]]:
    """(absolute path, label, split or None) per row; DataError for a missing column, value or file."""
    check_file(manifest, "data.manifest")
    data = manifest.read_bytes()
    bad = data.find(b"\x00")  # NUL: a binary file, which UTF-8 would otherwise decode
    if bad < 0:
        try:
            data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            bad = exc.start
    if bad >= 0:
        raise DataError(
            f"data.manifest={manifest} is not UTF-8 text (byte {bad} is not; is it a binary file?).",
            "Give a CSV file saved as UTF-8 text with a header line: path,label[,split]",
        )
    with open(manifest, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        missing = [c for c in ("path", "label") if c not in columns]
        if missing:
            found = ", ".join(repr(c) for c in reader.fieldnames or []) or "none"
            raise DataError(
                f"{manifest} lacks the column(s) {', '.join(missing)} (columns found: {found}).",
                "The first line must be a header naming at least the columns path and label.",
            )
        rows = [_manifest_row(row, columns, manifest, reader.line_num, root) for row in reader]
    rows = _unique_rows(rows, manifest)
    if not rows:
        raise DataError(f"{manifest} has a header but no rows.", "Add one row per image: path,label")
    missing_files = [path for path, _, _ in rows if not os.path.isfile(path)]
    if missing_files:
        raise DataError(
            f"{len(missing_files)} file(s) listed in {manifest} do not exist, first: {missing_files[0]}",
            f"Paths are relative to data.root={root}; fix the paths or data.root.",
        )
    return rows


def _unique_rows(
    rows: list[tuple[str, str, str | None]], manifest: Path
) -> list[tuple[str, str, str | None]]:
    """Repeated rows once each (a warning says how many); one file under two labels, or in two splits,
    is a DataError naming it (it would train on its own validation image, or on two answers)."""
    seen: dict[str, tuple[str, str | None]] = {}
    unique = []
    for path, label, split in rows:
        key = os.path.normpath(path)
        if key not in seen:
            seen[key] = (label, split)
            unique.append((path, label, split))
            continue
        first_label, first_split = seen[key]
        if first_label != label:
            raise DataError(
                f"{manifest} lists {path} under two labels: '{first_label}' and '{label}'.",
                "Give each image one label: delete or fix one of its rows.",
            )
        if first_split != split:
            raise DataError(
                f"{manifest} lists {path} in two splits: {first_split or 'unset'} and {split or 'unset'}.",
                "An image in both train and val/test would be evaluated on what it trained on; keep one row.",
            )
    if len(unique) < len(rows):
        notices.warn(
            f"{manifest}: {len(rows) - len(unique)} repeated row(s) ignored; {len(unique)} distinct images."
        )
    return unique


def _manifest_row(
    row: Mapping[str, str | None], columns: Mapping[str, str], manifest: Path, line: int, root: Path
) -> tuple[str, str, str | None]:
    def cell(name: str) -> str:
        return (row.get(columns[name]) or "").strip() if name in columns else ""

    path, label = cell("path"), cell("label")
    if not path or not label:
        raise DataError(f"{manifest} line {line} has an empty path or label.", "Fill in or delete that row.")
    split: str | None = None
    if "split" in columns:
        split = SPLIT_ALIASES.get(cell("split").lower())
        if split is None:
            raise DataError(
                f"{manifest} line {line} has split '{cell('split')}'.",
                "The split column may only hold train, val or test.",
            )
    return str(root / os.path.expanduser(path)), label, split
