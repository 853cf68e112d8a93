"""A process's Prometheus endpoint: the SDK's runtime metrics plus the process's own series.

Shared by the worker (worker/metrics.py: refundflow's series from Postgres) and the API
(api/metrics.py: requests, latency, refunds requested). Each has one /metrics with both
kinds of series a dashboard needs:
- the SDK's runtime metrics (`temporal_*`: task slots, schedule-to-start latency, polls,
  client RPCs), exported by the Temporal Runtime the process's client uses, on a loopback
  port of its own that this endpoint reads and passes on;
- the process's own (`refundflow_*`), from `own_series` at scrape time.

One address to scrape per process, and the SDK's exporter never listens beyond loopback.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from client.connections import core_logging
from client.settings import ConfigurationError

log = structlog.get_logger("refundflow.metrics")

# The SDK's default buckets (in ms) jump from 100 to 500: the alert's 200 ms threshold
# needs a boundary of its own to be read without interpolating across that gap.
_LATENCY_MS = (5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0, 10000.0, 60000.0)
_LATENCY_BUCKETS = {
    name: _LATENCY_MS
    for name in (
        "temporal_workflow_task_schedule_to_start_latency",
        "temporal_activity_schedule_to_start_latency",
    )
}


@dataclass(frozen=True)
class MetricsPlan:
    """Where the endpoint listens and where the SDK's exporter does."""

    host: str
    port: int
    sdk_address: str


def plan_metrics(addr: str, variable: str = "REFUNDFLOW_METRICS_ADDR") -> MetricsPlan | None:
    """None when `addr` is empty; ConfigurationError (naming `variable`) when malformed."""
    if not addr:
        return None
    host, _, port = addr.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise ConfigurationError(f"{variable} must be host:port, got {addr!r}")
    host = host.strip("[]") or "0.0.0.0"  # [::1]:9464 names an IPv6 address
    return MetricsPlan(host, int(port), f"127.0.0.1:{_loopback_port()}")


def _loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def metrics_runtime(plan: MetricsPlan | None) -> Runtime | None:
    """A Temporal Runtime exporting the SDK's metrics, for Client.connect (one per process)."""
    if plan is None:
        return None
    prometheus = PrometheusConfig(
        bind_address=plan.sdk_address, histogram_bucket_overrides=_LATENCY_BUCKETS
    )
    # This runtime replaces the default one for the client: it forwards the core's log
    # lines as the default does, or they reach stderr as coloured text.
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus, logging=core_logging()))


class PrometheusEndpoint:
    """/metrics on the plan's address: the SDK's series, then `own_series()`'s."""

    def __init__(
        self,
        plan: MetricsPlan,
        http: aiohttp.ClientSession,
        own_series: Callable[[], Awaitable[bytes]],
    ):
        self.plan = plan
        self.http = http
        self._own_series = own_series
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self) -> None:
        """Listen; a taken port is logged, not fatal: refunds matter more than their metrics
        (and a process restarted while its predecessor still drains must come up)."""
        await self._runner.setup()
        address = f"{self.plan.host}:{self.plan.port}"
        try:
            await web.TCPSite(self._runner, self.plan.host, self.plan.port).start()
        except OSError as err:
            log.warning("metrics_unavailable", address=address, error=str(err))
            return
        log.info("metrics_listening", address=address)

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await self._sdk_series() + await self._own_series()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _sdk_series(self) -> bytes:
        url = f"http://{self.plan.sdk_address}/metrics"
        try:
            async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as answer:
                return await answer.read()
        except (aiohttp.ClientError, TimeoutError) as err:
            log.warning("sdk_metrics_unavailable", error=str(err))
            return b""
