"""`refundflow dev` beside another stack: a port in use is named with the option that moves
it (the metrics ports too, which a second stack used to share without a word), and a stack
in another folder tells other shells how to reach it (REFUNDFLOW_HOME)."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from worker import dev_foreground
from worker.devstack import DevStack, StackConfig
from worker.processes import StackError


def test_a_busy_metrics_port_is_refused_with_the_option_that_moves_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        config = StackConfig.for_tests(tmp_path)
        config.metrics_port = busy
        with pytest.raises(StackError) as refused:
            DevStack(config).start()
    said = str(refused.value)
    assert said == (
        f"port {busy} for the worker's metrics is already in use on 127.0.0.1: choose"
        " another with --metrics-port"
    )


def test_a_stack_in_another_folder_is_reached_through_refundflow_home(tmp_path: Path) -> None:
    elsewhere = SimpleNamespace(config=SimpleNamespace(home=tmp_path / "home2"))
    said = dev_foreground._how_to_reach(elsewhere)  # type: ignore[arg-type]
    assert said[0].startswith("From another shell (")
    assert said[1] == f"  REFUNDFLOW_HOME={tmp_path / 'home2'} refundflow sandbox order" + (
        " --amount 12000 --currency USD --json"
    )
    here = SimpleNamespace(config=SimpleNamespace(home=Path(".refundflow").resolve()))
    said = dev_foreground._how_to_reach(here)  # type: ignore[arg-type]
    assert said[0].startswith("From another shell in this folder")
    assert said[1] == "  refundflow sandbox order --amount 12000 --currency USD --json"
