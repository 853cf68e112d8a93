"""The FastAPI application: routes, problems, limits, and one RefundClient (one Temporal
client, one Postgres pool) opened in the app's lifespan and shared by every request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiohttp
import structlog
from fastapi import FastAPI

from api import (
    dev_issuer,
    pages,
    problems,
    routes_actions,
    routes_meta,
    routes_refunds,
    routes_review,
)
from api.access_log import AccessLog
from api.config import ApiConfig
from api.deps import ApiState
from api.head_requests import HeadAsGet
from api.identity import TokenVerifier
from api.limits import BodySizeLimit, RateLimiter
from api.metrics import ApiMetrics, RequestMetrics
from api.request_spans import RequestSpans
from client.heap import freeze_startup_heap
from client.prometheus import MetricsPlan, PrometheusEndpoint, metrics_runtime, plan_metrics
from client.refund_client import RefundClient
from client.settings import Settings
from client.tracing import flush_tracing, start_tracing

log = structlog.get_logger("refundflow.api")
API_VERSION = "1.0.0"


def create_app(config: ApiConfig, settings: Settings) -> FastAPI:
    # A malformed address fails here, before the API listens or connects.
    metrics_plan = plan_metrics(config.metrics_addr, "REFUNDFLOW_API_METRICS_ADDR")
    metrics = ApiMetrics()
    app = FastAPI(
        title="refundflow",
        version=API_VERSION,
        summary="Durable refunds: request, review, track. Every refund is one workflow.",
        lifespan=_lifespan(config, settings, metrics_plan, metrics),
        # FastAPI's own request spans record the query string (a sign-in's code, a tracking
        # link's signature): api/request_spans.py names spans by route only.
        telemetry={"tracing": False},
        docs_url=None,
        redoc_url=None,
        # Starlette's redirect to the address without its slash is absolute, built from the
        # Host header a caller chose (a trial): no redirect; the console's pages send a
        # relative one (api/pages/errors.py), the API a 404 that says so.
        redirect_slashes=False,
    )
    problems.install(app)
    app.include_router(routes_refunds.router)
    app.include_router(routes_review.router)
    app.include_router(routes_actions.router)
    app.include_router(routes_meta.router)
    if config.dev_issuer_home is not None:
        app.include_router(dev_issuer.router(config.dev_issuer_home, config.issuer))
    pages.mount(app, config)  # the console, tracking and report pages (api/pages)
    app.add_middleware(HeadAsGet, routes_of=app)  # HEAD wherever GET is (health checks)
    app.add_middleware(BodySizeLimit, limit=config.max_body_bytes)
    # Counts and times every request (the size limit's 413s too), with its steps and
    # their Server-Timing header.
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(AccessLog)  # X-Request-Id, and the api.request line
    if start_tracing("refundflow-api"):  # only if OTEL_EXPORTER_OTLP_ENDPOINT is set
        app.add_middleware(RequestSpans)  # outermost: every request has its span
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _lifespan(
    config: ApiConfig, settings: Settings, metrics_plan: MetricsPlan | None, metrics: ApiMetrics
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The API's life: connect, serve /metrics, freeze the startup heap once ready; on the
    way out stop the endpoint, close the client and flush traces."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refunds = await RefundClient.connect(settings, runtime=metrics_runtime(metrics_plan))
        app.state.api = ApiState(
            refunds=refunds,
            verifier=TokenVerifier(config),
            limiter=RateLimiter(config.rate_per_minute, config.rate_burst),
            policy_dir=settings.policy_dir,
            metrics=metrics,
        )
        async with aiohttp.ClientSession() as http:
            endpoint = metrics_plan and PrometheusEndpoint(metrics_plan, http, metrics.exposition)
            if endpoint:
                await endpoint.start()
            frozen = freeze_startup_heap()  # ready: full collections skip the startup heap
            log.info(
                "api.ready",
                issuer=config.issuer,
                audience=config.audience,
                startup_objects_frozen=frozen,
            )
            try:
                yield
            finally:
                if endpoint:
                    await endpoint.stop()
                await refunds.close()
                flush_tracing()

    return lifespan


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the Problem schema every error response refers to."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        spec = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = problems.Problem.model_json_schema()
        # Bad input is a problem too, not FastAPI's own validation error body.
        bad_input = problems.problem_responses(problems.Kind.BAD_INPUT)[422]
        not_json = problems.problem_responses(problems.Kind.UNSUPPORTED_MEDIA_TYPE)[415]
        for operations in spec["paths"].values():
            for operation in operations.values():
                if "422" in operation.get("responses", {}):
                    operation["responses"]["422"] = bad_input
                if "requestBody" in operation:  # a body that is not JSON (problems._not_json)
                    operation["responses"]["415"] = not_json
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = spec
    return app.openapi_schema
