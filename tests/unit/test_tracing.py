"""Traces are off unless configured (client/tracing.py): a user who sets no OTLP endpoint
gets no interceptor (no trace header in workflow history) and no exporter; a collector
protocol refundflow cannot speak is refused in one line. The traces themselves, across the
API's and the worker's processes: tests/integration/test_traces.py."""

from __future__ import annotations

import pytest

from client import tracing
from client.settings import ConfigurationError

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),  # compose's ${VAR:-} when unset
        ({"OTEL_SERVICE_NAME": "refunds"}, False),  # a name alone exports nothing
        (ENDPOINT, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({**ENDPOINT, "OTEL_SDK_DISABLED": "true"}, False),
        ({**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_traces_are_on_only_when_an_endpoint_is_configured(env: dict[str, str], on: bool) -> None:
    assert tracing.tracing_configured(env) is on


def test_without_configuration_nothing_is_set_up() -> None:
    assert tracing.start_tracing("refundflow-worker", {}) is False
    assert tracing.temporal_interceptors() == []
    tracing.flush_tracing()  # nothing to flush, and no error


def test_a_grpc_collector_is_refused_in_one_line() -> None:
    env = {**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with pytest.raises(ConfigurationError, match=r"^OTEL_EXPORTER_OTLP_PROTOCOL=grpc .*4318\)$"):
        tracing.start_tracing("refundflow-worker", env)
    assert tracing.temporal_interceptors() == []
