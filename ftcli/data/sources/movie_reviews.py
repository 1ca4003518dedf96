"""``data=movie_reviews``: 10,568 movie-review sentences labelled negative or positive by people.

Pang & Lee's sentence-polarity snippets as scored by Hutto & Gilbert (ICWSM 2014) for VADER: each of
10,605 sentences has the mean of human ratings from -4 to +4. A sentence is ``positive`` when its score
is above 0 and ``negative`` below 0; the 37 scored exactly 0 (no polarity) are left out, leaving 10,568.

The file ``movieReviewSnippets_GroundTruth.txt`` ships inside the source distribution of PyPI's
``vaderSentiment`` 3.3.2 (``additional_resources/hutto_ICWSM_2014.tar.gz`` in it); it is read straight
from the nested archives, nothing is extracted. ``make install`` downloads it into the virtual
environment (``<venv>/share/ftcli``), where it is found with no setting.
"""

from __future__ import annotations

import functools
import io
import os
import sys
import tarfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ftcli.data.checks import expand_path, fractions
from ftcli.data.sources import data_source
from ftcli.data.splits import stratified_split
from ftcli.data.text.datamodule import TextDataModule
from ftcli.data.text.spec import TextSpec
from ftcli.errors import ConfigError, DataError

FILE = "movieReviewSnippets_GroundTruth.txt"
SDIST = "vaderSentiment-3.3.2.tar.gz"
INNER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
INNER_MEMBER = f"hutto_ICWSM_2014/{FILE}"
CLASSES = ["negative", "positive"]
DOWNLOAD_HINT = (
    "`make install` puts it in .venv/share/ftcli. Or download PyPI's vaderSentiment source yourself: "
    "pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d DIR, then add data.root=DIR"
)


@data_source("movie_reviews")
class MovieReviewsDataModule(TextDataModule):
    """Movie-review sentences, negative (human score < 0) or positive (> 0), split stratified and seeded."""

    def __init__(self, cfg: Mapping[str, Any], spec: TextSpec, seed: int) -> None:
        super().__init__(cfg, spec, seed)
        val_fraction, test_fraction = fractions(cfg, 0.1, 0.2)
        if val_fraction <= 0:
            raise ConfigError(
                f"data.val_fraction must be above 0 for {self.name}.", "e.g. data.val_fraction=0.1"
            )
        self.path = find_source(cfg.get("root"))
        texts, labels = polar_sentences(read_snippets(self.path))
        self.class_names = list(CLASSES)
        where = f"the movie reviews ({self.path})"
        idx = stratified_split(
            labels, self.class_names, val_fraction, test_fraction, self.seed, where, "text"
        )
        self._use_splits({s: ([texts[i] for i in ids], [labels[i] for i in ids]) for s, ids in idx.items()})

    @property
    def root(self) -> Path:
        """The file the sentences were read from (the text file, or the vaderSentiment archive)."""
        return self.path


def search_folders(root: Any) -> list[tuple[str, Path]]:
    """Where to look, as (what it is, folder): ``data.root``, else ``$FTCLI_DATA_DIR``, else the
    environment's ``share/ftcli`` (where ``make install`` downloads the archive)."""
    if root not in (None, ""):
        return [("data.root", expand_path(root))]
    folders = []
    if os.environ.get("FTCLI_DATA_DIR"):
        folders.append(("$FTCLI_DATA_DIR", expand_path(os.environ["FTCLI_DATA_DIR"])))
    folders.append(("the environment", Path(sys.prefix) / "share" / "ftcli"))
    return folders


def find_source(root: Any) -> Path:
    """The sentences' file: ``movieReviewSnippets_GroundTruth.txt`` or ``vaderSentiment-3.3.2.tar.gz`` in
    the first folder of :func:`search_folders` holding one (``data.root`` may also name either file)."""
    folders = search_folders(root)
    for label, folder in folders:
        if label == "data.root" and not folder.exists():
            raise DataError(f"data.root={folder} does not exist.", DOWNLOAD_HINT)
        if folder.is_file() and (folder.name == FILE or folder.name.endswith((".tar.gz", ".tgz"))):
            return folder
        for name in (FILE, SDIST):
            if (folder / name).is_file():
                return folder / name
    looked = ", ".join(f"{label} {folder}" for label, folder in folders)
    raise DataError(f"The movie reviews ({FILE} or {SDIST}) are not in {looked}.", DOWNLOAD_HINT)


def read_snippets(path: Path) -> list[tuple[float, str]]:
    """Every (score, sentence) of the file, read from the archives when ``path`` is one."""
    stat = path.stat()
    return _read_snippets(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _read_snippets(path: str, size: int, mtime_ns: int) -> list[tuple[float, str]]:
    """Cached per file version (size, mtime): every datamodule of a sweep reads it once."""
    data = Path(path).read_bytes() if Path(path).name == FILE else _from_archives(Path(path))
    try:
        content = data.decode("utf-8")  # the 3.3.2 file is UTF-8 (clichés, Jirí Hubac)
    except UnicodeDecodeError:
        content = data.decode("latin-1")  # any byte decodes: another copy's accents stay readable
    snippets = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        try:
            score = float(parts[1])
        except (IndexError, ValueError):
            score = float("nan")
        if len(parts) < 3 or score != score or not parts[2].strip():
            raise DataError(
                f"{path} ({FILE}) line {number} is not 'id<TAB>score<TAB>sentence': {line[:80]!r}",
                f"Use an unchanged copy. {DOWNLOAD_HINT}",
            )
        snippets.append((score, parts[2].strip()))
    return snippets


def _from_archives(path: Path) -> bytes:
    """The file's bytes from inside the vaderSentiment source archive and its inner archive, in memory."""
    try:
        with tarfile.open(path) as outer:
            inner = _member(outer, INNER_ARCHIVE)
        with tarfile.open(fileobj=io.BytesIO(inner)) as archive:
            return _member(archive, INNER_MEMBER)
    except (tarfile.TarError, OSError, EOFError, KeyError, zlib.error) as exc:
        raise DataError(
            f"{path} is not a readable vaderSentiment 3.3.2 source archive ({type(exc).__name__}: {exc}).",
            f"Download it again. {DOWNLOAD_HINT}",
        ) from exc


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    member = archive.extractfile(name)  # KeyError when absent
    if member is None:
        raise KeyError(f"{name} is not a file")
    return member.read()


def polar_sentences(snippets: list[tuple[float, str]]) -> tuple[list[str], list[int]]:
    """Sentences with a polarity and their class (0 negative: score < 0, 1 positive: > 0); 0 is left out."""
    kept = [(text, int(score > 0)) for score, text in snippets if score != 0]
    return [text for text, _ in kept], [label for _, label in kept]
