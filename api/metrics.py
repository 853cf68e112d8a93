"""The API's Prometheus series (issue 14 item 3): requests by route template and status,
request latency, refunds requested by channel; served with the SDK's `temporal_*` client
series on REFUNDFLOW_API_METRICS_ADDR (client/prometheus.py), off when empty.

A port of its own, never the public one: Prometheus scrapes it inside the network, and
the series (route counts, error rates) are nobody's business outside, so it needs no token
and the public port has no /metrics for anyone to guess at.
Counted in process: each API replica answers for its own requests, and Prometheus sums.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from client.timings import Collected, collecting, server_timing

UNMATCHED = "unmatched"
"""The route label of requests no route matched: scanners' paths must not become series."""


class ApiMetrics:
    """One registry per app (tests build several apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "refundflow_api_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "refundflow_api_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.steps = Histogram(
            "refundflow_api_step_duration_seconds",
            "Time requests spent in each named step (Server-Timing's: auth, order, ledger,"
            " hold, start, opening, projection), by step; customers' requests too",
            ["step"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
            registry=self.registry,
        )
        self.refunds_requested = Counter(
            "refundflow_api_refunds_requested",
            "Refunds started through the API (not a repeated Idempotency-Key), by channel",
            ["channel"],
            registry=self.registry,
        )

    async def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request under its route's template
    (/refunds/{refund_id}, never the id), once the response has started; and the named
    steps the app took for it (client/timings.py): each into the steps histogram, and into
    a `Server-Timing` header (W3C) when the caller may see them (staff and services, not
    customers: which steps a refusal took, or how long a lock was waited for, is not
    theirs to read). Browsers' developer tools show the header; the bench reads it to split
    an acknowledgement into its parts. Step names are fixed words and durations: nothing
    about the refund, the order or who asked. Answers no route produced (the size limit's
    413) took no steps; an unexpected 500 is answered outside this middleware."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_before = scope.get("root_path", "")
        status = 500  # an exception before any response: what the server answers
        with collecting() as collected:

            async def record_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message = _with_server_timing(message, collected)
                await send(message)

            try:
                await self.app(scope, receive, record_status)
            finally:
                route = route_label(scope, root_before)
                method = scope["method"]
                self.metrics.requests.labels(method, route, str(status)).inc()
                elapsed = time.perf_counter() - started
                self.metrics.latency.labels(method, route).observe(elapsed)
                for name, ms in collected.steps:
                    self.metrics.steps.labels(name).observe(ms / 1000)


def route_label(scope: Scope, root_before: str) -> str:
    """The route's template, never the path itself (ids stay out of labels). A mount (the
    pages' /static files) has no route object, only the root path it matched: it counted
    as unmatched, beside the requests that matched nothing (a trial)."""
    route = getattr(scope.get("route"), "path", None)
    if route:
        return str(route)
    mounted = scope.get("root_path", "")
    if mounted and mounted != root_before:
        return f"{mounted}/{{path}}"
    return UNMATCHED


def _with_server_timing(start: Message, collected: Collected) -> Message:
    """The response's start with a Server-Timing header, when there are steps to show."""
    if not (collected.shown and collected.steps):
        return start
    timing = server_timing(collected.steps).encode("latin-1")
    return {**start, "headers": [*start.get("headers", []), (b"server-timing", timing)]}
