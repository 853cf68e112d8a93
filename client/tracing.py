"""Traces (OpenTelemetry), on by configuration only, for the worker and the API.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) names an
OTLP/HTTP collector: then this process's spans go there in batches, under OTEL_SERVICE_NAME
(default: the process's own name), sampled as OTEL_TRACES_SAMPLER says, and every Temporal
client it connects carries temporalio's TracingInterceptor. That interceptor puts the trace
context in the headers of workflow starts, updates and activities, so one refund is one
trace: the API request, the workflow start, the run, its activities and their HTTP calls
(activities/http_adapters.py sends a W3C `traceparent` to the provider).

Off, nothing is set up: no interceptor, no trace header in workflow history, no
`traceparent` on outgoing calls. Workflow headers are not encrypted by the payload codec;
the trace header holds ids only (trace, span, flags).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from client.settings import ConfigurationError

if TYPE_CHECKING:  # the SDK and the interceptor load only where traces are on
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.client import Interceptor

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
# Spans still queued when the process stops get this long to reach the collector: the
# worker and the API end through os._exit, which skips the SDK's own exit hook.
FLUSH_TIMEOUT_MS = 3000

_provider: TracerProvider | None = None


def tracing_configured(env: Mapping[str, str] = os.environ) -> bool:
    """True when the environment asks for traces (OpenTelemetry's own variables)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in _ENDPOINTS)


def start_tracing(service: str, env: Mapping[str, str] = os.environ) -> bool:
    """Export this process's spans over OTLP/HTTP if configured; True if tracing is on.

    `service` names the process unless OTEL_SERVICE_NAME (or service.name in
    OTEL_RESOURCE_ATTRIBUTES) does. Called once per process, before it connects to Temporal.
    """
    global _provider
    if _provider is not None:
        return True
    if not tracing_configured(env):
        return False
    for name in _PROTOCOLS:
        protocol = env.get(name, "").strip().lower()
        if protocol and protocol != "http/protobuf":
            raise ConfigurationError(
                f"{name}={protocol} is not supported: refundflow exports traces over"
                " OTLP/HTTP (http/protobuf, usually port 4318)"
            )
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    return True


def temporal_interceptors() -> list[Interceptor]:
    """What a Temporal client of this process carries: the tracing interceptor if tracing
    is on (a worker built on the client gets it too), else nothing."""
    if _provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def flush_tracing() -> None:
    """Send the spans still queued, waiting at most FLUSH_TIMEOUT_MS (a collector that is
    down must not hold up a deploy's shutdown)."""
    if _provider is not None:
        _provider.force_flush(FLUSH_TIMEOUT_MS)
