"""HEAD wherever GET is served (RFC 9110: a GET's headers, no body). FastAPI's routes take
only the methods they name, so a load balancer's or uptime checker's `HEAD /healthz` got a
405 (a trial). Answered by running the GET, so its status and headers (Content-Length,
ETag, caching) are exactly the GET's; the body is dropped here as well as by the server."""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def serves(app: ASGIApp, scope: Scope, method: str) -> bool:
    """Whether some route of `app` takes `method` at the scope's path."""
    routes = getattr(app, "routes", ())
    return any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)


class HeadAsGet:
    """Run a HEAD as the GET at the same address, answering the headers only. A path with
    no GET is left alone: its 405 says what the path does take."""

    def __init__(self, app: ASGIApp, routes_of: ASGIApp) -> None:
        self.app = app
        self.routes_of = routes_of  # the application whose routes decide (the FastAPI app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        if not serves(self.routes_of, scope, "GET"):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
