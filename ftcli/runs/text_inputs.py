"""Unlabelled texts for ``ftcli predict``: one ``.txt``, ``.csv`` or ``.jsonl`` file, every fault a DataError.

A ``.txt`` file holds one text per non-empty line; a ``.csv`` file a header line and a ``text`` column
(or a single column of any name); a ``.jsonl`` file one JSON object per line with a ``text`` key. Training
data is read by ``ftcli.data.text.table_files``, which needs labels; predict has none, and must say
which column it read (a one-column CSV's header is not a text). Imports no torch.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ftcli.data.text.table_files import json_records, utf8_text
from ftcli.errors import DataError

TEXT_SUFFIXES = (".txt", ".csv", ".jsonl")
TEXT_COLUMN = "text"
FILE_HINT = (
    "Give inputs=FILE.txt (one text per line), FILE.csv (a header, then a 'text' column) or "
    'FILE.jsonl (one {"text": "..."} object per line), UTF-8.'
)


@dataclass(frozen=True)
class TextInputs:
    """The texts of one file, in file order, and where in it they were read (for the printed heading)."""

    path: Path
    texts: list[str]
    source: str  # "lines", "column 'text'", "key 'text'"


def is_text_file(inputs: str) -> bool:
    """Whether ``inputs=`` names a file of texts (by its suffix; a folder or glob names images)."""
    path = Path(inputs).expanduser()
    return path.suffix.lower() in TEXT_SUFFIXES and path.is_file()


def read_texts(path: Path) -> TextInputs:
    """Every text of ``path`` (see the module docstring); a DataError when it has none to give."""
    path = path.expanduser()
    suffix = path.suffix.lower()
    content = _utf8(path)
    if not content.strip():
        raise DataError(f"{path} is empty: there is no text to classify.", FILE_HINT)
    if suffix == ".csv":
        texts, source = _csv_texts(content, path)
    elif suffix == ".jsonl":
        texts, source = _jsonl_texts(content, path), f"key '{TEXT_COLUMN}'"
    else:
        texts, source = [line.strip() for line in content.splitlines() if line.strip()], "lines"
    if not texts:
        raise DataError(f"{path} holds a header but no texts.", FILE_HINT)
    return TextInputs(path, texts, source)


def shorten(text: str, width: int = 60) -> str:
    """One line of at most ``width`` characters (the terminal table; the CSV keeps the whole text)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def _utf8(path: Path) -> str:
    return utf8_text(
        path, "Save it as UTF-8 (e.g. iconv -f cp1252 -t utf-8 in.txt > out.txt), then give that file."
    )


def _csv_texts(content: str, path: Path) -> tuple[list[str], str]:
    """The ``text`` column (any case), else the only column; one empty cell is an error naming its line."""
    reader = csv.reader(io.StringIO(content, newline=""))
    header = next(reader, [])
    names = [name.strip() for name in header]
    lowered = [name.lower() for name in names]
    if TEXT_COLUMN in lowered:
        at = lowered.index(TEXT_COLUMN)
    elif len(names) == 1:
        at = 0
    else:
        found = ", ".join(repr(name) for name in header) or "none"
        raise DataError(
            f"{path} has no '{TEXT_COLUMN}' column (columns found: {found}).",
            f"Name the column of texts '{TEXT_COLUMN}' in the header line, or keep only that column.",
        )
    texts = []
    line = reader.line_num + 1
    for cells in reader:
        if any(cell.strip() for cell in cells):  # a blank line is no row
            text = cells[at].strip() if at < len(cells) else ""
            if not text:
                raise DataError(
                    f"{path} line {line} has an empty '{names[at]}' cell.", "Fill in or delete that row."
                )
            texts.append(text)
        line = reader.line_num + 1
    return texts, f"column '{names[at]}'"


def _jsonl_texts(content: str, path: Path) -> list[str]:
    texts = []
    for number, record in json_records(content, path, FILE_HINT):
        problem = _record_problem(record)
        if problem:
            raise DataError(f"{path} line {number} {problem}.", 'Give every line a text: {"text": "..."}')
        texts.append(record[TEXT_COLUMN].strip())
    return texts


def _record_problem(record: object) -> str | None:
    """What keeps one JSON line from being a text, or None."""
    if not isinstance(record, Mapping):
        return f"is a JSON {type(record).__name__}, not an object"
    if TEXT_COLUMN not in record:
        return f"has no '{TEXT_COLUMN}' key (keys found: {', '.join(repr(k) for k in record) or 'none'})"
    text = record[TEXT_COLUMN]
    if not isinstance(text, str):
        return f"has '{TEXT_COLUMN}': {json.dumps(text)[:40]}, not a string"
    return None if text.strip() else f"has an empty '{TEXT_COLUMN}'"
