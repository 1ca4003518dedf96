"""One error boundary: a user error is a short message and exit 2 (1 for a failed export), no traceback;
FTCLI_DEBUG=1 adds the traceback; Hydra usage errors count as user errors; a bug propagates."""

from __future__ import annotations

import pytest

from ftcli.command_line.error_boundary import guard
from ftcli.errors import ConfigError, ExportError


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
