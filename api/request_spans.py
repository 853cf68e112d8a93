"""One OpenTelemetry server span per API request, installed only when tracing is on
(client/tracing.py). The span continues a caller's W3C trace context (`traceparent`) when it
sends one, and what the request does through the RefundClient (the order lookup, the
workflow start with its trace header) happens inside it: a refund's trace begins with the
request that asked for it.

Named by the route's template (`POST /v1/refunds/{refund_id}/approve`), never by the path
or query as sent, so no identifier a caller put in a URL lands in a span's name.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_tracer = trace.get_tracer("refundflow.api")


class RequestSpans:
    """Pure ASGI middleware: the span is current while the app handles the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = str(scope["method"])
        with _tracer.start_as_current_span(
            method,
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
        ) as span:

            async def send_noting_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                _name_by_route(span, method, scope)


def _name_by_route(span: trace.Span, method: str, scope: Scope) -> None:
    """The matched route's template, once routing has run (FastAPI puts it in the scope)."""
    route: Any = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        span.set_attribute("http.route", template)
        span.update_name(f"{method} {template}")
