"""One dispatcher delivers at a time, and leadership is checked every idle wait: when the
leader's lock connection dies (pg_terminate_backend), it stops delivering, a standby takes
over, nothing is delivered twice, and the old leader stands by until it leads again.

Two real dispatchers on a database of their own (the stack's worker leads on its own
database: advisory locks are per database), delivering to a real HTTP subscriber on
127.0.0.1 that tells them apart by their User-Agent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from activities import outbox, subscribers
from activities.delivery_sql import LOCK_ID
from activities.dispatcher import OutboxDispatcher
from activities.pg_store import create_pool
from client.settings import Settings
from tests.integration.helpers import eventually, fresh_database
from worker.processes import free_port
from workflows.models import MessageFacts, Notice
from workflows.states import RefundState

pytestmark = pytest.mark.stack


class Receiver:
    """Records who sent each event, when it arrives; answers after `delay` seconds, so that
    deliveries are in flight when the lock dies."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.got: list[tuple[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((request.headers["Refundflow-Event-Id"], request.headers["User-Agent"]))
        await asyncio.sleep(self.delay)
        return web.Response(status=204)

    def senders(self, event_ids: list[str]) -> set[str]:
        return {sender for event, sender in self.got if event in event_ids}


@contextlib.asynccontextmanager
async def receiving(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]], port: int | None = None
) -> AsyncIterator[str]:
    """`handle` serving POST /events on 127.0.0.1 (on `port`, else a free one): its URL."""
    port = port or free_port()
    app = web.Application()
    app.router.add_post("/events", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/events"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def subscribed(
    settings: Settings, name: str, receiver: Receiver
) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    """A database of its own (a pool on it, and its URL), migrated as the worker does, with
    `receiver` serving and subscribed as `name`-test."""
    async with receiving(receiver.handle) as events_url:
        async with fresh_database(settings.require_database_url(), name) as url:
            db = await create_pool(url)
            try:
                await subscribers.add_subscriber(db, f"{name}-test", events_url)
                yield db, url
            finally:
                await db.close()


@contextlib.asynccontextmanager
async def dispatcher(
    url: str, name: str, idle_wait_s: float, kind: type[OutboxDispatcher] = OutboxDispatcher,
    **extra: Any,
) -> AsyncIterator[OutboxDispatcher]:  # fmt: skip
    """A dispatcher (of `kind`) running as the worker runs it, on a pool of its own."""
    pool = await create_pool(url, migrate=False)
    stop = asyncio.Event()
    async with aiohttp.ClientSession(headers={"User-Agent": name}) as session:
        running = kind(pool, session, idle_wait_s=idle_wait_s, **extra)
        task = asyncio.create_task(running.run(stop))
        try:
            yield running
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            await pool.close()


async def enqueue(db: asyncpg.Pool, batch: str, refunds: int) -> list[str]:
    """One event for each of `refunds` refunds, written as the store writes them."""
    ids = []
    async with db.acquire() as conn:
        for i in range(refunds):
            refund_id = f"rf_{batch}{i:02d}".ljust(27, "0")
            facts = MessageFacts(
                refund_id=refund_id,
                order_id=f"ord_{batch}{i}",
                state=RefundState.PENDING_REVIEW,
                amount=1000,
                currency="USD",
            )
            notice = Notice(seq=1, event="requested", at=datetime.now(UTC), facts=facts)
            async with conn.transaction():
                await outbox.write_events(conn, refund_id, [notice])
            ids.append(outbox.event_id(refund_id, 1))
    return ids


async def all_delivered(db: asyncpg.Pool, ids: list[str]) -> bool:
    pending = await db.fetchval(
        "SELECT count(*) FROM refundflow.deliveries WHERE event_id = ANY($1)"
        " AND delivered_at IS NULL",
        ids,
    )
    return bool(pending == 0)


async def lock_holder(db: asyncpg.Pool) -> int | None:
    """The backend holding the dispatchers' lock on this database."""
    pid: int | None = await db.fetchval(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 0"
        " AND objid = $1 AND objsubid = 1"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        LOCK_ID,
    )
    return pid


async def test_a_leader_whose_lock_connection_dies_stops_and_a_standby_takes_over(
    settings: Settings,
) -> None:
    receiver = Receiver()
    async with subscribed(settings, "leader", receiver) as (db, url):
        await takeover(db, url, receiver)


async def takeover(db: asyncpg.Pool, url: str, receiver: Receiver) -> None:
    async with dispatcher(url, "dispatcher-a", idle_wait_s=1.0) as a:
        await eventually(lambda: asyncio.sleep(0, a.is_leader), bool)
        async with dispatcher(url, "dispatcher-b", idle_wait_s=0.2) as b:
            first = await enqueue(db, "a", 6)
            await eventually(lambda: all_delivered(db, first), bool)
            assert receiver.senders(first) == {"dispatcher-a"} and not b.is_leader

            # The kill, with deliveries in flight: A has at most 8 at once, so some of
            # these 16 are still to be claimed when its lock connection dies.
            receiver.delay = 0.5
            second = await enqueue(db, "b", 16)
            await eventually(lambda: asyncio.sleep(0, receiver.senders(second)), bool)
            assert a.is_leader and not b.is_leader
            holder = await lock_holder(db)  # A's lock connection, then
            assert holder is not None
            assert await db.fetchval("SELECT pg_terminate_backend($1)", holder)
            await eventually(lambda: asyncio.sleep(0, b.is_leader and not a.is_leader), bool)
            await eventually(lambda: all_delivered(db, second), bool, timeout=60)

            receiver.delay = 0.0
            third = await enqueue(db, "c", 6)
            await eventually(lambda: all_delivered(db, third), bool)
            assert receiver.senders(third) == {"dispatcher-b"}  # A stopped delivering
            assert not a.is_leader and await lock_holder(db) not in (None, holder)
        # B stops (and lets go of the lock): A, standing by, leads again.
        await eventually(lambda: asyncio.sleep(0, a.is_leader), bool)
        fourth = await enqueue(db, "d", 6)
        await eventually(lambda: all_delivered(db, fourth), bool)
        assert receiver.senders(fourth) == {"dispatcher-a"}
    sent = Counter(event for event, _ in receiver.got)
    assert sorted(sent) == sorted(first + second + third + fourth)
    assert set(sent.values()) == {1}, sent  # no event was delivered twice
