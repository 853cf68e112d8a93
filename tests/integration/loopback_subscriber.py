"""A subscriber service on 127.0.0.1 for the outbox tests: it verifies every delivery with the
README's receiver code, answers what the test tells it to, and records every request."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from aiohttp import web

from activities import subscribers
from tests.unit.test_subscriber_example import readme_receiver
from worker.processes import free_port


@dataclass(frozen=True)
class Seen:
    """One request as the subscriber received it, and what it answered."""

    event_id: str
    refund_id: str
    seq: int
    type: str
    signature: str
    body: bytes
    status: int


class LoopbackSubscriber:
    def __init__(self) -> None:
        self.verify, self.forged = readme_receiver()
        self.port = free_port()
        self.name = f"loopback-{self.port}"
        self.url = f"http://127.0.0.1:{self.port}/events"
        self.secret = ""
        """What the receiver verifies with: the test switches it as a real receiver would."""
        self.answer: Callable[[dict[str, Any]], int] = lambda event: 204
        self.seen: list[Seen] = []
        self.forged_seen = 0
        self.redirect_followed = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get("Refundflow-Signature", "")
        try:
            event = self.verify(self.secret, signature, body)
        except self.forged:
            self.forged_seen += 1
            return web.Response(status=401)
        status = self.answer(event)
        facts = (event["id"], event["refund_id"], event["seq"], event["type"])
        self.seen.append(Seen(*facts, signature=signature, body=body, status=status))
        headers = {"Location": "/elsewhere"} if 300 <= status < 400 else None
        return web.Response(status=status, headers=headers)

    async def elsewhere(self, request: web.Request) -> web.Response:
        self.redirect_followed += 1
        return web.Response(status=200)

    def accepted(self, refund_id: str) -> list[int]:
        """The refund's events this subscriber took (2xx), in the order they came."""
        return [s.seq for s in self.seen if s.refund_id == refund_id and 200 <= s.status < 300]

    def tries(self, event_id: str) -> int:
        return sum(1 for s in self.seen if s.event_id == event_id)

    async def subscribe(
        self, db: asyncpg.Pool, *, max_attempts: int | None = None, max_age: timedelta | None = None
    ) -> str:
        added = await subscribers.add_subscriber(
            db, self.name, self.url, max_attempts=max_attempts, max_age=max_age
        )
        self.secret = added.secret
        return self.name


@contextlib.asynccontextmanager
async def loopback_subscriber(db: asyncpg.Pool) -> AsyncIterator[LoopbackSubscriber]:
    """A started LoopbackSubscriber; removed as a subscriber (if it became one) afterwards."""
    subscriber = LoopbackSubscriber()
    app = web.Application()
    app.router.add_post("/events", subscriber.handle)
    app.router.add_route("*", "/elsewhere", subscriber.elsewhere)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", subscriber.port).start()
    try:
        yield subscriber
    finally:
        await subscribers.deactivate_subscriber(db, subscriber.name)
        await runner.cleanup()


async def deliveries(db: asyncpg.Pool, refund_id: str, subscriber: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT event_id, seq, attempts, delivered_at, parked_at, first_tried_at, last_error"
        " FROM refundflow.deliveries WHERE refund_id = $1 AND subscriber = $2 ORDER BY seq",
        refund_id,
        subscriber,
    )
    return rows
