"""What a logged failure may carry: the traceback, never its frames' local variables (a
trial found an operator's bearer token in the codec server's log, from a traceback's
locals)."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from worker import logging_setup
from worker.logging_setup import configure_logging

SECRET = "Bearer eyJ-not-for-logs"


def fail_holding_a_secret() -> None:
    authorization = SECRET
    raise ValueError(f"bad payload ({len(authorization)} characters of header)")


@pytest.fixture
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> object:
    # Not Temporal's runtime: configure_logging would make it the process's default.
    monkeypatch.setattr(logging_setup, "_forward_temporal_core_logs", lambda: None)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_a_logged_traceback_leaves_out_local_variables(
    log_format: str, restore_logging: object, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(log_format)
    try:
        fail_holding_a_secret()
    except ValueError:
        structlog.get_logger("test").exception("codec.failed")
    logging.getLogger().handlers[0].flush()
    written = capsys.readouterr().err
    assert "fail_holding_a_secret" in written and "bad payload" in written  # the traceback
    assert "eyJ-not-for-logs" not in written
    if log_format == "json":
        assert json.loads(written.splitlines()[-1])["event"] == "codec.failed"
