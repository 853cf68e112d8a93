"""REFUNDFLOW_METRICS_ADDR: off when empty, host:port otherwise, one line when malformed."""

from __future__ import annotations

import pytest

from client.settings import ConfigurationError
from worker.metrics import plan_metrics


def test_empty_is_off() -> None:
    assert plan_metrics("") is None


@pytest.mark.parametrize(
    ("addr", "host", "port"),
    [
        ("127.0.0.1:9464", "127.0.0.1", 9464),
        (":9464", "0.0.0.0", 9464),
        ("[::1]:9000", "::1", 9000),
    ],
)
def test_host_and_port(addr: str, host: str, port: int) -> None:
    plan = plan_metrics(addr)
    assert plan is not None and (plan.host, plan.port) == (host, port)
    # The SDK's own exporter stays on loopback, on a port of its own.
    assert plan.sdk_address.startswith("127.0.0.1:") and plan.sdk_address != addr


@pytest.mark.parametrize("addr", ["bogus", "host:", "host:99999", "host:http"])
def test_malformed_is_one_line(addr: str) -> None:
    with pytest.raises(ConfigurationError, match="REFUNDFLOW_METRICS_ADDR must be host:port"):
        plan_metrics(addr)
