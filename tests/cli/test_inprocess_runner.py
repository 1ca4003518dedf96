"""The in-process runner (tests/helpers/cli_inprocess.py) behaves like a subprocess and leaves no trace.

Every converted CLI test relies on it: exit codes from ``SystemExit`` (Hydra's and ftcli's), stdout and
stderr apart, repeated calls in one process, and the process put back as it was after each call.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from hydra.core.global_hydra import GlobalHydra

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import assert_ok, assert_user_error

INSPECT = ["inspect", "model=resnet18", "model.weights=null", "data=digits", "data.image_size=32"]


def process_state() -> dict[str, Any]:
    from ftcli.ui import console

    # real loggers only: logging.config also sets `disabled` on the PlaceHolders of logger names'
    # parents, where it means nothing
    loggers = {"": logging.getLogger(), **logging.Logger.manager.loggerDict}
    loggers = {n: lg for n, lg in loggers.items() if isinstance(lg, logging.Logger)}
    return {
        "argv": list(sys.argv),
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
        "hydra": GlobalHydra.instance().is_initialized(),
        "root_handlers": list(logging.getLogger().handlers),
        "root_level": logging.getLogger().level,
        "disabled_loggers": {n for n, lg in loggers.items() if lg.disabled},
        "consoles": (console.console, console.error_console),
        "stdout": sys.stdout,
        "stderr": sys.stderr,
    }


def test_repeated_runs_give_codes_and_output_and_put_the_process_back(tmp_path: Path) -> None:
    before = process_state()

    bad = run_cli_inprocess("train", "model=resnet19", cwd=tmp_path)  # sys.exit(2) inside the Hydra app
    assert_user_error(bad, "Unknown model 'resnet19'", "resnet18")
    assert bad.stderr.startswith("error:") and bad.stdout == ""
    # inspect configures Hydra's `disabled` job logging, which disables every existing logger
    for _ in range(2):
        inspected = run_cli_inprocess(*INSPECT, cwd=tmp_path)
        assert_ok(inspected)
        assert "stage4" in inspected.stdout and inspected.stderr == ""
    helped = run_cli_inprocess("train", "--help", cwd=tmp_path)  # Hydra's help: sys.exit(0)
    assert helped.returncode == 0 and "ftcli train" in helped.stdout
    unknown = run_cli_inprocess("frobnicate", cwd=tmp_path)  # the dispatcher's own return 2
    assert_user_error(unknown, "unknown command 'frobnicate'")

    assert process_state() == before
    assert "HYDRA_FULL_ERROR" not in os.environ
    assert list(tmp_path.iterdir()) == [], "inspect and the refused runs wrote nothing into the cwd"


def test_the_subprocess_environment_is_set_for_the_run(tmp_path: Path) -> None:
    """FTCLI_OFFLINE and COLUMNS as run_cli sets them, FTCLI_DEBUG from the caller's shell dropped."""
    os.environ["FTCLI_DEBUG"] = "1"
    try:
        result = run_cli_inprocess("train", "model=resnet19", cwd=tmp_path, env={"TORCH_HOME": str(tmp_path)})
    finally:
        del os.environ["FTCLI_DEBUG"]
    assert "Traceback" not in result.stderr, "FTCLI_DEBUG leaked into the run"
    assert result.returncode == 2
    assert os.environ.get("TORCH_HOME") != str(tmp_path)
