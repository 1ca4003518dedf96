"""What a run that does not ask for them imports: never scikit-learn (the advisor's probes; data=digits
reads scikit-learn's file without importing it), so ``strategy=auto`` costs nothing to the runs that do
not use it (``is_auto`` is a string comparison in ``ftcli.finetune.strategies``), and never transformers
on an image run (torchmetrics would import it for two text metrics: ``ftcli.import_guard``)."""

from __future__ import annotations

import importlib.util
import json
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
HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None


@pytest.mark.slow  # a fresh interpreter importing torch and Lightning (~7 s on 2 cores)
def test_the_image_training_path_imports_neither_the_advisor_scikit_learn_nor_transformers() -> None:
    code = (
        "import importlib, importlib.metadata, json, sys\n"
        f"for name in {RUN_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "from ftcli.data.sources.digits import DigitsDataModule\n"
        "images, labels = DigitsDataModule.load(None)\n"
        "from torchmetrics.utilities.imports import _TRANSFORMERS_GREATER_EQUAL_4_4 as seen\n"
        "print(json.dumps({\n"
        "    'imported': sorted(m for m in sys.modules if m in ('sklearn', 'transformers')\n"
        "                       or m.startswith('ftcli.advice')),\n"
        "    'lightning': 'lightning' in sys.modules and 'torchmetrics' in sys.modules,\n"
        "    'digits': [list(images.shape), len(set(labels.tolist()))],\n"
        "    'torchmetrics_sees_transformers': bool(seen),\n"
        "    'others_see': importlib.metadata.version('transformers') if "
        f"{HAS_TRANSFORMERS} else None,\n"
        "}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["imported"] == [] and found["lightning"], found
    assert found["digits"] == [[1797, 8, 8], 10]
    assert found["torchmetrics_sees_transformers"] is False
    if HAS_TRANSFORMERS:  # only torchmetrics is told it is missing: ftcli's text path and PEFT see it
        assert found["others_see"] == importlib.metadata.version("transformers")
