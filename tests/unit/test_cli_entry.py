"""Ctrl-C while `refundflow` is still starting (importing for a second or more) ends in one
line and the interrupted status, not a traceback of the import (worker/entry.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from client.cli.arguments import EXIT_INTERRUPTED
from client.settings import PROJECT_ROOT
from worker import entry

SCRIPT = PROJECT_ROOT / ".venv" / "bin" / "refundflow"


def test_the_console_script_is_the_entry_that_survives_ctrl_c_while_importing() -> None:
    assert "from worker.entry import main" in SCRIPT.read_text()
    assert entry.EXIT_INTERRUPTED == EXIT_INTERRUPTED


def test_ctrl_c_while_starting_is_one_line_and_exit_130() -> None:
    # A fresh interpreter spends well over 0.3 s importing the command line.
    started = subprocess.Popen(
        [sys.executable, "-c", "from worker.entry import main; main()", "--version"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.3)
    started.send_signal(signal.SIGINT)
    out, err = started.communicate(timeout=30)
    assert started.returncode == EXIT_INTERRUPTED, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: interrupted")
