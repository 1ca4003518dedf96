"""Leaked samples: exact copies across train/val/test (and repeats within a split), found by content hash.

A test accuracy measured on images the network trained on is the silent failure of fine-tuning: the
same file copied into ``train/`` and ``val/``, a manifest listing one picture under two names. At data
setup every sample of every split is reduced to a 16-byte BLAKE2b digest of its content (a source says
what content means: the bytes of an image file, the decoded pixels of an in-memory array, a text with
its Unicode form, case and spacing normalised) and the digests are compared. ``data.on_leak`` says what
happens to a validation or test sample that is a copy of a training one (or a test sample that is a copy
of a validation one): ``warn`` (the default) says so and goes on, ``error`` stops the run, ``drop``
leaves the copies out of val and test (never out of train) and says how many. Repeats within one split
are counted and reported, never dropped nor an error: they weigh a sample twice, but leak nothing.

Only exact copies are found: a re-encoded or resized copy has other bytes and other pixels.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ftcli.data.splits import SPLITS
from ftcli.errors import DataError

ON_LEAK = ("warn", "error", "drop")
DIGEST_BYTES = 16
EXAMPLES = 3  # leaked pairs named in a message
HEAD_BYTES = 4096  # files of one size are told apart by their first bytes before being read whole


@dataclass
class SplitContent:
    """One split's samples as digests (in the split's order) and how to name sample ``i`` in a message."""

    digests: list[bytes]
    name: Callable[[int], str]


@dataclass
class LeakReport:
    """What the check found: copies per split pair, repeats per split, examples, what was dropped."""

    basis: str  # what was hashed: "file bytes", "pixels", "normalised text"
    noun: str  # images | texts
    checked: int  # samples hashed over every split
    seconds: float
    # "val in train": val samples whose content is in train (also "test in train", "test in val")
    across: dict[str, int] = field(default_factory=dict)
    within: dict[str, int] = field(default_factory=dict)  # samples repeating an earlier one of their split
    examples: list[str] = field(default_factory=list)  # "VAL NAME = TRAIN NAME"
    dropped: dict[str, int] = field(default_factory=dict)
    # split -> indices of its samples that copy an earlier split's (what data.on_leak=drop removes)
    leaked: dict[str, list[int]] = field(default_factory=dict, repr=False)

    @property
    def leaked_count(self) -> int:
        """Val and test samples that copy a sample of an earlier split (each counted once)."""
        return sum(len(indices) for indices in self.leaked.values())

    @property
    def repeated_count(self) -> int:
        return sum(self.within.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``summary.json``."""
        return {
            "checked_by": self.basis,
            "samples_checked": self.checked,
            "leaked": self.leaked_count,
            "across": dict(self.across),
            "within": dict(self.within),
            "dropped": dict(self.dropped),
            "examples": list(self.examples),
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        """One line for the console: what was found (or that nothing was) and what was done about it."""
        if not self.leaked_count and not self.repeated_count:
            return (
                f"leak check: no exact copies across or within train/val/test ({self.basis} of "
                f"{self.checked} {self.noun}, {self.seconds:.2f} s)"
            )
        parts = []
        if self.leaked_count:
            pairs = ", ".join(f"{n} {pair}" for pair, n in self.across.items() if n)
            parts.append(f"{self.leaked_count} val/test {self.noun} are exact copies ({self.basis}): {pairs}")
        if self.repeated_count:
            repeats = ", ".join(f"{n} in {split}" for split, n in self.within.items() if n)
            parts.append(f"{self.noun} repeated within a split: {repeats}")
        if self.examples:
            parts.append("e.g. " + "; ".join(self.examples))
        if self.dropped:
            dropped = ", ".join(f"{n} from {split}" for split, n in self.dropped.items())
            parts.append(f"dropped (data.on_leak=drop): {dropped}")
        elif self.leaked_count:
            parts.append("data.on_leak=drop leaves them out of val/test, data.on_leak=error stops")
        return "data leak: " + " · ".join(parts)

    def error(self) -> DataError:
        """``data.on_leak=error``: the run stops, naming the copies."""
        pairs = ", ".join(f"{n} {pair}" for pair, n in self.across.items() if n)
        return DataError(
            f"{self.leaked_count} val/test {self.noun} are exact copies of {self.noun} in an earlier split "
            f"({self.basis}; data.on_leak=error): {pairs}; e.g. " + "; ".join(self.examples),
            "Remove the copies from val/test, or set data.on_leak=drop to leave them out (or "
            "data.on_leak=warn to go on with them).",
        )


def find(contents: Mapping[str, SplitContent], basis: str, noun: str, seconds: float = 0.0) -> LeakReport:
    """Compare the digests of every split: copies of an earlier split (train, then val, then test) and
    repeats within each split."""
    splits = [s for s in SPLITS if s in contents]
    report = LeakReport(basis, noun, sum(len(c.digests) for c in contents.values()), seconds)
    first: dict[str, dict[bytes, int]] = {}  # split -> digest -> index of its first sample with it
    for split in splits:
        seen: dict[bytes, int] = {}
        repeats = 0
        for index, digest in enumerate(contents[split].digests):
            if digest in seen:
                repeats += 1
            else:
                seen[digest] = index
        first[split] = seen
        report.within[split] = repeats
    for later_at, later in enumerate(splits):
        leaked: list[int] = []
        for index, digest in enumerate(contents[later].digests):
            for earlier in splits[:later_at]:
                if digest in first[earlier]:
                    report.across[f"{later} in {earlier}"] = report.across.get(f"{later} in {earlier}", 0) + 1
                    if not leaked or leaked[-1] != index:
                        leaked.append(index)
                    if len(report.examples) < EXAMPLES:
                        other = contents[earlier].name(first[earlier][digest])
                        report.examples.append(f"{contents[later].name(index)} = {other}")
        if leaked:
            report.leaked[later] = leaked
    return report


def kept(items: Sequence[Any], dropped: Iterable[int]) -> list[Any]:
    """``items`` without the positions in ``dropped``."""
    gone = set(dropped)
    return [item for i, item in enumerate(items) if i not in gone]


def digest(data: bytes | memoryview) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()


def file_digests(paths: Sequence[str], threads: int) -> list[bytes]:
    """The digest of each file's bytes, reading as little as it can: a file whose size no other file has
    copies nothing and is never opened; of the rest, only those whose first 4 KiB another file shares
    too are read whole (photos differ within their first blocks). A file left out, or that cannot be
    read, or is empty, gets a digest of its path, which matches nothing (the unreadable-image check names
    it later).
    Threads, a batch of files each: hashlib hashes outside the GIL."""
    digests = [_own(path) for path in paths]
    sizes = {i: _size(path) for i, path in enumerate(paths)}
    # an empty file is no image (the unreadable-image check names it), nor a copy of one
    heads = _read(paths, _sharing({i: size for i, size in sizes.items() if size > 0}), threads, HEAD_BYTES)
    small = {i: d for i, d in heads.items() if sizes[i] <= HEAD_BYTES}  # read whole already
    whole = _read(paths, _sharing({i: (sizes[i], d) for i, d in heads.items() if i not in small}), threads)
    for i, found in {**small, **whole}.items():
        digests[i] = found
    return digests


def _sharing(keys: Mapping[int, Any]) -> list[int]:
    """The indices whose key another index has too."""
    counts = Counter(keys.values())
    return [i for i, key in keys.items() if counts[key] > 1]


def _read(paths: Sequence[str], indices: list[int], threads: int, limit: int = -1) -> dict[int, bytes]:
    """The digest of the first ``limit`` bytes (all: -1) of each file of ``indices`` that can be read."""
    found: dict[int, bytes] = {}

    def read(batch: list[int]) -> None:
        for i in batch:
            try:
                with open(paths[i], "rb") as handle:
                    found[i] = digest(handle.read(limit))
            except OSError:
                pass  # keeps its own digest

    batches = [indices[start : start + 256] for start in range(0, len(indices), 256)]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(read, batches))
    return found


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _own(path: str) -> bytes:
    """A digest no content can have: the path's (a 16-byte BLAKE2b of a different personalisation)."""
    return hashlib.blake2b(
        path.encode("utf-8", "surrogateescape"), digest_size=DIGEST_BYTES, person=b"path"
    ).digest()


def array_digests(images: np.ndarray) -> list[bytes]:
    """The digest of each sample's decoded pixels: rows of an ``(N, ...)`` array, shape and dtype included."""
    rows = np.ascontiguousarray(images).reshape(len(images), -1)
    header = f"{images.shape[1:]}{images.dtype}".encode()
    return [digest(header + row.tobytes()) for row in rows]


def normalised(text: str) -> str:
    """A text as compared: Unicode NFKC, case folded, runs of white space as one space, ends stripped."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def text_digests(texts: Sequence[str]) -> list[bytes]:
    return [digest(normalised(text).encode("utf-8", "surrogatepass")) for text in texts]
