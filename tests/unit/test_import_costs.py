"""What a run that does not ask for the advisor imports: never scikit-learn (the advisor's probes), so
``strategy=auto`` costs nothing to the runs that do not use it (``is_auto`` is a string comparison in
``ftcli.finetune.strategies``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

RUN_MODULES = (
    "ftcli.pipeline",
    "ftcli.commands.train",
    "ftcli.commands.inspect_run",
    "ftcli.commands.lrfind",
    "ftcli.training.lr_range",
    "ftcli.features.datamodules",
)


@pytest.mark.slow  # a fresh interpreter importing torch and Lightning (~7 s on 2 cores)
def test_the_training_path_does_not_import_the_advisor_or_scikit_learn() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {RUN_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'sklearn' or m.startswith('ftcli.advice')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout
