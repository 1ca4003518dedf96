"""Labelled texts from a CSV or JSON Lines file: ``(text, label, line)`` rows, every fault a DataError.

A CSV file has a header line naming its columns; a JSONL file holds one JSON object per line. The text
and label columns (keys) are named by ``data.text_column`` / ``data.label_column``. A label is a string
or a whole number, kept as text (``7`` and ``"7"`` are one class); :func:`class_order` sorts them.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ftcli.errors import ConfigError, DataError

FORMATS = {".csv": "CSV", ".jsonl": "JSON Lines"}
WHOLE_NUMBER = re.compile(r"-?\d+")


class Row(NamedTuple):
    """One labelled text and the line it starts on (for messages)."""

    text: str
    label: str
    line: int


def read_rows(path: Path, suffix: str, text_column: str, label_column: str) -> list[Row]:
    """Every row of a ``.csv`` or ``.jsonl`` (``suffix``) file; DataError for an unreadable file, a missing
    column, an empty text or label, or no rows at all."""
    content = _utf8_text(path, suffix)
    if not content.strip():
        raise DataError(f"{path} is empty.", _layout_hint(suffix, text_column, label_column))
    read = _csv_rows if suffix == ".csv" else _jsonl_rows
    rows = list(read(content, path, text_column, label_column))
    if not rows:
        raise DataError(
            f"{path} has a header but no rows.", f"Add one row per text: {text_column},{label_column}"
        )
    return rows


def class_order(labels: Iterable[str]) -> list[str]:
    """The distinct labels sorted: as numbers when every one is a whole number (2 before 10), else as text."""
    distinct = set(labels)
    if all(WHOLE_NUMBER.fullmatch(label) for label in distinct):
        return sorted(distinct, key=lambda label: (int(label), label))
    return sorted(distinct)


def _utf8_text(path: Path, suffix: str) -> str:
    return utf8_text(
        path, f"Save it as UTF-8 {FORMATS[suffix]} text (e.g. iconv -f cp1252 -t utf-8 in > out)."
    )


def utf8_text(path: Path, hint: str) -> str:
    """The file's text; a DataError naming the first byte that is not UTF-8 (a NUL: a binary file)."""
    data = path.read_bytes()
    bad = data.find(b"\x00")  # NUL: a binary file, which UTF-8 would otherwise decode
    if bad < 0:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            bad = exc.start
    raise DataError(
        f"{path} is not UTF-8 text (byte {bad} is not; is it a binary file, or saved as Latin-1/cp1252?).",
        hint,
    )


def _layout_hint(suffix: str, text_column: str, label_column: str) -> str:
    if suffix == ".csv":
        return f"Give a header line naming the columns ({text_column},{label_column}), then one row per text."
    example = f'{{"{text_column}": "a great film", "{label_column}": "positive"}}'
    return f"Give one JSON object per line, e.g. {example}"


def _csv_rows(content: str, path: Path, text_column: str, label_column: str) -> Iterable[Row]:
    reader = csv.reader(io.StringIO(content, newline=""))
    header = next(reader, [])
    columns = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [c for c in (text_column, label_column) if c.strip().lower() not in columns]
    if missing:
        found = ", ".join(repr(c) for c in header) or "none"
        raise DataError(
            f"{path} lacks the column(s) {', '.join(repr(c) for c in missing)} (columns found: {found}).",
            "Name the columns in the header line, or pick them: data.text_column=NAME data.label_column=NAME",
        )
    text_at, label_at = columns[text_column.strip().lower()], columns[label_column.strip().lower()]
    line = reader.line_num + 1
    for cells in reader:
        if cells:  # a blank line is no row
            yield _row(
                cells[text_at] if text_at < len(cells) else "",
                cells[label_at] if label_at < len(cells) else "",
                path,
                line,
            )
        line = reader.line_num + 1


def json_records(content: str, path: Path, hint: str) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-empty line of a JSON-lines file; a DataError naming the first
    line that is not JSON."""
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path} line {number} is not JSON ({exc.msg}, column {exc.colno}).", hint
            ) from exc


def _jsonl_rows(content: str, path: Path, text_column: str, label_column: str) -> Iterable[Row]:
    for number, record in json_records(content, path, _layout_hint(".jsonl", text_column, label_column)):
        if not isinstance(record, Mapping):
            raise DataError(
                f"{path} line {number} is a JSON {type(record).__name__}, not an object.",
                _layout_hint(".jsonl", text_column, label_column),
            )
        missing = [key for key in (text_column, label_column) if key not in record]
        if missing:
            found = ", ".join(repr(k) for k in record) or "none"
            keys = ", ".join(repr(k) for k in missing)
            raise DataError(
                f"{path} line {number} has no {keys} key (keys found: {found}).",
                "Give every line both keys, or pick them: data.text_column=NAME data.label_column=NAME",
            )
        yield _row(record[text_column], record[label_column], path, number)


def _row(text: Any, label: Any, path: Path, line: int) -> Row:
    where = f"{path} line {line}"
    if not isinstance(text, str):
        raise DataError(f"{where}: the text is {text!r}, not a string.", "Give each text as a string.")
    if not text.strip():
        raise DataError(f"{where} has an empty text.", "Fill in or delete that row.")
    return Row(text, _label(label, where), line)


def _label(value: Any, where: str) -> str:
    """A label as text: a string (stripped) or a whole number (``7``, kept as ``"7"``)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(
            f"{where}: the label is {json.dumps(value)}, neither a string nor a whole number.",
            'Give labels as strings ("positive") or whole numbers (0, 1, 2).',
        )
    label = str(value).strip()
    if not label:
        raise DataError(f"{where} has an empty label.", "Fill in or delete that row.")
    return label


def column_option(cfg: Mapping[str, Any], key: str, default: str) -> str:
    """``data.text_column`` / ``data.label_column``: a column name (``default`` when unset)."""
    value = cfg.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"data.{key} must be a column name, got {value!r}.", f"e.g. data.{key}={default}")
    return value
