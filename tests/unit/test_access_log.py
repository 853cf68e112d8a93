"""The API's request id reaches the answer and the log for an error nobody foresaw too (a
review: the app's outermost handler answered it outside the access log, with no id), and
probes are logged only when they fail."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI
from starlette.types import Message

from api import problems
from api.access_log import AccessLog


def app_with_a_bug() -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(AccessLog)
    return app


async def call(app: FastAPI, path: str, request_id: bytes = b"") -> list[Message]:
    headers = [(b"x-request-id", request_id)] if request_id else []
    scope: dict[str, Any] = {
        "type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
        "root_path": "", "query_string": b"", "headers": headers, "http_version": "1.1",
        "scheme": "http", "server": ("api", 80), "client": ("caller", 1),
    }  # fmt: skip
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_an_unexpected_error_is_answered_and_logged_under_its_request_id() -> None:
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logged:
        sent = await call(app_with_a_bug(), "/boom", b"ticket-9")
    start = sent[0]
    assert start["status"] == 503
    assert (b"x-request-id", b"ticket-9") in start["headers"]
    assert b"unexpected error; nothing more is said here" in sent[1]["body"]
    said = {e["event"]: e for e in logged}
    assert said["api.unexpected"]["request_id"] == "ticket-9"
    assert said["api.request"]["status"] == 503 and said["api.request"]["problem"] == "unavailable"


async def test_a_probe_is_logged_only_when_it_fails() -> None:
    with structlog.testing.capture_logs() as logged:
        sent = await call(app_with_a_bug(), "/healthz")
    assert sent[0]["status"] == 200
    assert [e["event"] for e in logged] == []
