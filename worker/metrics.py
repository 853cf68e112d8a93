"""The worker's Prometheus endpoint (REFUNDFLOW_METRICS_ADDR, off when empty).

One /metrics (client/prometheus.py) with the SDK's runtime metrics (`temporal_*`: task
slots, schedule-to-start latency, polls, activity and workflow outcomes) and refundflow's
own (`refundflow_*`), computed from Postgres at scrape time (worker/refund_metrics.py).
"""

from __future__ import annotations

import asyncio

import aiohttp
import asyncpg
import structlog
from prometheus_client.core import GaugeMetricFamily

from client.prometheus import MetricsPlan, PrometheusEndpoint, metrics_runtime, plan_metrics
from worker.refund_metrics import collect, exposition

__all__ = ["MetricsEndpoint", "MetricsPlan", "metrics_runtime", "plan_metrics"]

log = structlog.get_logger("refundflow.metrics")
SCRAPE_BUDGET_SECONDS = 5.0
"""A slow database answers the scrape without refundflow's series rather than not at all."""


class MetricsEndpoint(PrometheusEndpoint):
    def __init__(self, plan: MetricsPlan, pool: asyncpg.Pool, http: aiohttp.ClientSession):
        super().__init__(plan, http, self._refund_series)
        self.pool = pool

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
