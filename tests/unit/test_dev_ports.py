"""`refundflow dev` beside another stack: a port in use is named with the option that moves
it (the metrics ports too, which a second stack used to share without a word), and a stack
in another folder tells other shells how to reach it (REFUNDFLOW_HOME)."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from worker import dev_foreground
from worker.cli import build_parser
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
        f"port {busy} (the worker's metrics: --metrics-port) already in use on 127.0.0.1:"
        " choose another with that option (or stop what uses them)"
    )


def test_one_port_for_two_servers_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """A trial gave --sandbox-port and --webhook-port the same port: "stack ready", then the
    webhook receiver died, its reason only in its log."""
    config = StackConfig.for_tests(tmp_path / "home")
    config.webhook_port = config.sandbox_port
    with pytest.raises(StackError) as refused:
        DevStack(config).start()
    assert str(refused.value) == (
        f"the same port for two servers: {config.sandbox_port} (--sandbox-port and"
        " --webhook-port); give each its own"
    )
    assert not (tmp_path / "home").exists()  # refused before anything was made


def test_a_port_out_of_range_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    for wrong in ("70000", "0", "-1", "http"):
        with pytest.raises(SystemExit) as ended:
            build_parser().parse_args(["dev", "--temporal-port", wrong])
        assert ended.value.code == 2
        assert "expected a port from 1 to 65535" in capsys.readouterr().err


def test_every_busy_port_is_named_at_once(tmp_path: Path) -> None:
    """A second stack beside the first: one refusal names them all (a trial needed four runs,
    one port each)."""
    with socket.socket() as first, socket.socket() as second:
        for taken in (first, second):
            taken.bind(("127.0.0.1", 0))
            taken.listen()
        config = StackConfig.for_tests(tmp_path)
        config.metrics_port = first.getsockname()[1]
        config.api_port = second.getsockname()[1]
        with pytest.raises(StackError) as refused:
            DevStack(config).start()
    said = str(refused.value)
    assert said.startswith("ports ") and said.count("--") == 2
    assert f"{config.api_port} (" in said and "--api-port" in said and "--metrics-port" in said


def test_a_refused_start_leaves_no_folder_behind(tmp_path: Path) -> None:
    """`refundflow dev --home NEW` refused (a port in use) does not create NEW or its logs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = StackConfig.for_tests(tmp_path / "new-home")
        config.api_port = taken.getsockname()[1]
        with pytest.raises(StackError):
            DevStack(config).start()
    assert not (tmp_path / "new-home").exists()


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
