"""One log line per API request, and a request id that ties it to the caller.

A trial (an integrator): a 401, a 422 or a refusal left no trace in the API's log, and no id
came back to quote to support. Every answer now carries `X-Request-Id`: the caller's own,
when it sent a plain one (a gateway's, a service's), else a new one; every log line written
while the request is handled carries it as `request_id` (structlog's context variables), and
the request ends with `api.request`: method, the route's template (never the path or query
as sent: a tracking link's signature, a sign-in's code), status, duration, and for an error
its problem type (`bad-input`, `refused`…), never its words, which may name a customer.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import route_label
from api.problems import unexpected

log = structlog.get_logger("refundflow.api")

HEADER = b"x-request-id"
_PLAIN_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
"""An id a caller sent is kept only if it is short and plain: it goes into every log line."""
_PROBLEM_TYPE = "urn:refundflow:problem:"
QUIET = frozenset({"/healthz", "/readyz", "/static/{path}"})
"""Probes and the pages' files: logged only when they fail (a prober asks every few
seconds; a page brings its CSS and script)."""


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-Id when it is plain, else a new one."""
    sent = next((v for k, v in scope["headers"] if k == HEADER), b"")
    return sent.decode() if _PLAIN_ID.fullmatch(sent) else uuid.uuid4().hex


class AccessLog:
    """Pure ASGI middleware (outermost but for tracing): the id, the line, the header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        started = time.perf_counter()
        root_before = scope.get("root_path", "")
        answered = _Answer()

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered.started, answered.status = True, message["status"]
                answered.problem = _is_problem(message)
                headers = [*message.get("headers", []), (HEADER, request_id.encode())]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and answered.problem is True:
                answered.problem = _problem_type(message.get("body", b""))
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, tagged)
            except Exception:
                if answered.started:  # the answer began: nothing else can be sent
                    raise
                # Answered here, not by the app's outermost handler, which runs outside
                # this middleware: its line and answer had no request id (a review).
                log.exception("api.unexpected", route=route_label(scope, root_before))
                await unexpected(scope["path"])(scope, receive, tagged)
            finally:
                route, problem = route_label(scope, root_before), answered.problem
                if route not in QUIET or answered.status >= 400:
                    log.info(
                        "api.request",
                        method=scope["method"],
                        route=route,
                        status=answered.status,
                        ms=round((time.perf_counter() - started) * 1000, 1),
                        **({"problem": problem} if isinstance(problem, str) else {}),
                    )


@dataclass
class _Answer:
    status: int = 500  # an exception before any answer
    started: bool = False
    problem: str | bool = False
    """True while a problem's body is awaited; then its type's name."""


def _is_problem(start: Message) -> bool:
    content_type: bytes = dict(start.get("headers", [])).get(b"content-type", b"")
    return content_type.startswith(b"application/problem+json")


def _problem_type(body: bytes) -> str:
    """The problem's type without its prefix (`bad-input`); "unreadable" if the body is not
    one whole JSON problem (problems are small: one body message)."""
    try:
        kind = json.loads(body).get("type", "")
    except (ValueError, AttributeError):
        return "unreadable"
    return str(kind).removeprefix(_PROBLEM_TYPE) or "unreadable"
