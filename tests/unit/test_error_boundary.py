"""One error boundary: a user error is a short message and exit 2 (1 for a failed export), no traceback;
FTCLI_DEBUG=1 adds the traceback; Hydra usage errors count as user errors; a bug propagates."""

from __future__ import annotations

import errno
import os

import pytest

from ftcli.command_line.error_boundary import guard
from ftcli.errors import ConfigError, ExportError, TerminatedError, disk_error, write_error


def fail(error: Exception) -> int:
    raise error


def test_a_user_error_prints_its_message_and_hint_and_exits_2(capsys, monkeypatch) -> None:
    monkeypatch.delenv("FTCLI_DEBUG", raising=False)
    code = guard(fail, ConfigError("data.root=/nope does not exist.", "Point data.root at a folder."))

    err = capsys.readouterr().err
    assert code == 2
    assert "error: data.root=/nope does not exist." in err and "Point data.root at a folder." in err
    assert "Traceback" not in err


def test_an_export_that_does_not_reproduce_pytorch_exits_1(capsys) -> None:
    assert guard(fail, ExportError("max |difference| 1e-2")) == 1


def test_ftcli_debug_prints_the_traceback_too(capsys, monkeypatch) -> None:
    monkeypatch.setenv("FTCLI_DEBUG", "1")
    code = guard(fail, ConfigError("bad value"))

    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" in err and "ConfigError" in err and "error: bad value" in err


def test_a_hydra_usage_error_is_a_user_error(capsys, monkeypatch) -> None:
    from hydra.errors import ConfigCompositionException

    monkeypatch.delenv("FTCLI_DEBUG", raising=False)
    code = guard(fail, ConfigCompositionException("Could not override 'bogus'."))

    assert code == 2
    assert "error: Could not override 'bogus'." in capsys.readouterr().err


def test_a_bug_is_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        guard(lambda: 1 // 0)


@pytest.mark.parametrize(
    ("code", "reason"),
    [(errno.ENOSPC, "the disk is full (ENOSPC)"), (errno.EROFS, "the file system is read-only (EROFS)")],
)
def test_a_full_or_read_only_disk_under_any_write_is_a_user_error(capsys, code: int, reason: str) -> None:
    """A write ftcli does not make itself (Lightning's metrics.csv, a log) still ends with exit 2."""
    assert guard(fail, OSError(code, os.strerror(code), "/runs/r/metrics.csv")) == 2
    err = capsys.readouterr().err
    assert f"error: Cannot write /runs/r/metrics.csv: {reason}." in err and "Traceback" not in err
    assert "unchanged" not in err  # not written atomically: no promise about what it held


def test_a_run_stopped_by_sigterm_exits_143(capsys) -> None:
    assert (
        guard(fail, TerminatedError("Stopped by SIGTERM in epoch 2 (step 40).", "Continue with: ...")) == 143
    )


def test_a_refused_permission_is_named_only_where_a_write_failed() -> None:
    denied = OSError(errno.EACCES, "Permission denied", "/data/train/1.png")
    assert disk_error(denied) is None  # a read can be denied too: not reported as a write
    err = write_error("/runs/r/summary.json", denied, "set hydra.run.dir=PATH")
    assert err is not None and "no permission to write there (EACCES)" in err.message
    assert err.hint == "/runs/r: make it writable, or set hydra.run.dir=PATH."
    assert write_error("/x", OSError(errno.EIO, "I/O error")) is None
