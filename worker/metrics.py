"""The worker's Prometheus endpoint (REFUNDFLOW_METRICS_ADDR, off when empty).

One /metrics with both kinds of series a dashboard needs:
- the SDK's runtime metrics (`temporal_*`: task slots, schedule-to-start latency, polls,
  activity and workflow outcomes), exported by the Temporal Runtime the worker's client
  uses, on a loopback port of its own that this endpoint reads and passes on;
- refundflow's own (`refundflow_*`), computed from Postgres at scrape time
  (worker/refund_metrics.py).

One address to scrape, and the SDK's exporter never listens beyond loopback.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
import asyncpg
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from client.settings import ConfigurationError
from worker.processes import free_port
from worker.refund_metrics import collect, exposition

log = structlog.get_logger("refundflow.metrics")
SCRAPE_BUDGET_SECONDS = 5.0
"""A slow database answers the scrape without refundflow's series rather than not at all."""


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


def plan_metrics(addr: str) -> MetricsPlan | None:
    """None when REFUNDFLOW_METRICS_ADDR is empty; ConfigurationError when it is malformed."""
    if not addr:
        return None
    host, _, port = addr.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise ConfigurationError(f"REFUNDFLOW_METRICS_ADDR must be host:port, got {addr!r}")
    host = host.strip("[]") or "0.0.0.0"  # [::1]:9464 names an IPv6 address
    return MetricsPlan(host, int(port), f"127.0.0.1:{free_port()}")


def metrics_runtime(plan: MetricsPlan | None) -> Runtime | None:
    """A Temporal Runtime exporting the SDK's metrics, for Client.connect (one per process)."""
    if plan is None:
        return None
    prometheus = PrometheusConfig(
        bind_address=plan.sdk_address, histogram_bucket_overrides=_LATENCY_BUCKETS
    )
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


class MetricsEndpoint:
    def __init__(self, plan: MetricsPlan, pool: asyncpg.Pool, http: aiohttp.ClientSession):
        self.plan = plan
        self.pool = pool
        self.http = http
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self) -> None:
        """Listen; a taken port is logged, not fatal: refunds matter more than their metrics
        (and a worker restarted while its predecessor still drains must come up)."""
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
        body = await self._sdk_series() + await self._refund_series()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _sdk_series(self) -> bytes:
        url = f"http://{self.plan.sdk_address}/metrics"
        try:
            async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as answer:
                return await answer.read()
        except (aiohttp.ClientError, TimeoutError) as err:
            log.warning("sdk_metrics_unavailable", error=str(err))
            return b""

    async def _refund_series(self) -> bytes:
        up = GaugeMetricFamily(
            "refundflow_metrics_database_up",
            "1 if refundflow's series could be read from Postgres for this scrape",
        )
        try:
            metrics = await asyncio.wait_for(collect(self.pool), SCRAPE_BUDGET_SECONDS)
        except (asyncpg.PostgresError, OSError, TimeoutError) as err:
            log.warning("refund_metrics_unavailable", error=str(err))
            up.add_metric([], 0)
            return exposition([up])
        up.add_metric([], 1)
        return exposition([*metrics, up])
