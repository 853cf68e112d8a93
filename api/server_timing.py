"""A `Server-Timing` header (W3C) on answers to staff and services that took named steps:
how long the request spent on the order, the ledger, the hold, Temporal's start
(client/timings.py). Browsers' developer tools show it; the bench reads it to split an
acknowledgement into its parts; a service chasing a slow answer sees which part was slow
without our logs. Not on customers' answers, nor on ones no route produced (the size
limit's 413, an unexpected 500: answered outside this middleware). Every request's steps,
customers' too, also go to the API's Prometheus histogram `refundflow_api_step_duration_
seconds{step}`: which part of the answers got slow, over time, on a dashboard.

Step names are fixed words and durations: nothing about the refund, the order or who asked.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import ApiMetrics
from client.timings import collecting, server_timing


class ServerTiming:
    """Pure ASGI middleware: collects the steps the app takes for a request and adds them
    to the response's headers when it starts (the steps of an ordinary answer are all done
    by then; a streamed body's later work is not counted)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with collecting() as collected:

            async def with_timing(message: Message) -> None:
                steps = collected.steps
                if message["type"] == "http.response.start" and collected.shown and steps:
                    headers = list(message.get("headers", []))
                    headers.append((b"server-timing", server_timing(steps).encode("latin-1")))
                    message = {**message, "headers": headers}
                await send(message)

            try:
                await self.app(scope, receive, with_timing)
            finally:
                for name, ms in collected.steps:
                    self.metrics.steps.labels(name).observe(ms / 1000)
