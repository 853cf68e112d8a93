"""Notifications as events: at least once, retried with backoff, deduplicated by event id,
in order per refund, and signed so that subscribers can tell forgeries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from activities import subscribers
from activities.signing import sign
from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_outbox_leadership import receiving
from tests.integration.test_refund_flow import make_request
from tests.unit.test_subscriber_example import readme_receiver
from worker.main import CUSTOMER_CHANNEL
from worker.processes import free_port

pytestmark = pytest.mark.stack
CUSTOMER = "customer-notifications"


async def customer_deliveries(db: asyncpg.Pool, refund_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT seq, attempts, delivered_at, last_error FROM refundflow.deliveries"
        " WHERE refund_id = $1 AND subscriber = $2 ORDER BY seq",
        refund_id,
        CUSTOMER,
    )
    return rows


async def test_failing_channel_is_retried_in_order_then_delivered_once(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool, faults: SandboxAdmin
) -> None:
    await faults.set_faults({"notifications.error_rate": "1"})
    order = await sandbox.order(amount=2000)
    status = await refunds_v2.request(make_request(order))
    await wait_for_state(refunds_v2, status.refund_id, "completed")
    stuck = await eventually(
        lambda: customer_deliveries(db, status.refund_id),
        lambda rows: len(rows) == 4 and rows[0]["attempts"] >= 2,
    )
    # The first event keeps failing, so the later ones wait behind it: order per refund.
    assert all(r["delivered_at"] is None for r in stuck)
    # The status alone: the customer channel's answer may echo the signed tracking link,
    # so it is not kept (other subscribers' answers are: tests/unit/test_delivery_errors.py).
    assert stuck[0]["last_error"] == "HTTP 503"
    assert all(r["attempts"] == 0 for r in stuck[1:])
    # `subscribers list` says why the channel is failing now.
    (channel,) = [s for s in await subscribers.list_subscribers(db) if s.name == CUSTOMER_CHANNEL]
    assert channel.last_error == stuck[0]["last_error"] and channel.parked == 0
    assert channel.last_error_attempts is not None and channel.last_error_attempts >= 2
    assert await sandbox.inbox(status.refund_id) == []

    await faults.clear_faults()
    done = await eventually(
        lambda: customer_deliveries(db, status.refund_id),
        lambda rows: all(r["delivered_at"] for r in rows),
    )
    assert done[0]["attempts"] >= 3 and done[0]["last_error"] is None
    received = await sandbox.inbox(status.refund_id)
    assert [r["seq"] for r in received] == [r["seq"] for r in done]
    assert all(r["copies"] == 1 for r in received)


async def test_lost_acknowledgements_are_redelivered_and_deduplicated(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool, faults: SandboxAdmin
) -> None:
    # The inbox stores the notification, then the answer is lost: the dispatcher must retry.
    await faults.set_faults({"notifications.lose_response_rate": "1"})
    order = await sandbox.order(amount=2000)
    status = await refunds_v2.request(make_request(order))
    await eventually(
        lambda: sandbox.inbox(status.refund_id),
        lambda rows: len(rows) == 1 and rows[0]["copies"] >= 2,
    )
    await faults.clear_faults()
    await eventually(
        lambda: customer_deliveries(db, status.refund_id),
        lambda rows: len(rows) == 4 and all(r["delivered_at"] for r in rows),
    )
    received = await sandbox.inbox(status.refund_id)
    # At least once on the wire, exactly once in what the customer has: one row per event.
    assert len({r["event_id"] for r in received}) == len(received) == 4
    assert received[0]["copies"] >= 2


class RecordingSubscriber:
    """A subscriber service built on the README's receiver example; it refuses the first
    delivery of every event (to force retries) and records what it accepted, in order."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.verify, self.forged = readme_receiver()
        self.accepted: list[dict[str, Any]] = []
        self.refused_once: set[str] = set()
        self.forged_seen = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = self.verify(self.secret, request.headers.get("Refundflow-Signature"), body)
        except self.forged:
            self.forged_seen += 1
            return web.Response(status=401)
        assert request.headers["Refundflow-Event-Id"] == event["id"]
        if event["id"] not in self.refused_once:
            self.refused_once.add(event["id"])
            return web.Response(status=500)
        self.accepted.append(event)
        return web.Response(status=204)


@pytest.fixture
async def subscriber(db: asyncpg.Pool) -> AsyncIterator[RecordingSubscriber]:
    port = free_port()
    name = f"test-sub-{port}"
    created = await subscribers.add_subscriber(db, name, f"http://127.0.0.1:{port}/events")
    receiver = RecordingSubscriber(created.secret)
    receiver.url = created.url
    async with receiving(receiver.handle, port):
        try:
            yield receiver
        finally:
            await subscribers.deactivate_subscriber(db, name)


async def test_webhook_subscriber_gets_signed_events_in_order_per_refund(
    refunds_v2: RefundClient, sandbox: Sandbox, subscriber: RecordingSubscriber, http: Any
) -> None:
    statuses = [
        await refunds_v2.request(make_request(await sandbox.order(amount=1000 + i)))
        for i in range(3)
    ]
    ids = {s.refund_id for s in statuses}

    def per_refund() -> dict[str, list[int]]:
        seqs: dict[str, list[int]] = {i: [] for i in ids}
        for event in subscriber.accepted:
            if event["refund_id"] in ids:
                seqs[event["refund_id"]].append(event["seq"])
        return seqs

    async def probe() -> dict[str, list[int]]:
        return per_refund()

    seqs = await eventually(probe, lambda s: all(len(v) == 4 for v in s.values()), timeout=60)
    for refund_seqs in seqs.values():
        assert refund_seqs == sorted(refund_seqs)  # never out of order, despite the retries
        assert len(set(refund_seqs)) == 4
    types = [e["type"] for e in subscriber.accepted if e["refund_id"] == statuses[0].refund_id]
    assert types == ["refund.pending_review", "refund.approved", "refund.refunding",
                     "refund.completed"]  # fmt: skip

    # A forgery (right shape, wrong key) is refused by the example receiver.
    event = subscriber.accepted[0]
    body = json.dumps(event)
    async with http.post(
        subscriber.url,
        data=body,
        headers={"Refundflow-Signature": sign("not-the-secret", body)},
    ) as response:
        assert response.status == 401
    assert subscriber.forged_seen == 1


async def test_configured_channel_keeps_its_secret_and_removal_drops_the_backlog(
    db: asyncpg.Pool,
) -> None:
    name = f"configured-{free_port()}"

    async def stored() -> asyncpg.Record:
        return await db.fetchrow(
            "SELECT url, secret, active FROM refundflow.subscribers WHERE name = $1", name
        )

    await subscribers.ensure_configured_subscriber(db, name, "http://127.0.0.1:9/a", None)
    first = await stored()
    # A worker restart (same configuration, no secret configured) keeps the secret.
    await subscribers.ensure_configured_subscriber(db, name, "http://127.0.0.1:9/b", None)
    again = await stored()
    assert again["secret"] == first["secret"] and again["url"] == "http://127.0.0.1:9/b"
    await subscribers.ensure_configured_subscriber(db, name, "http://127.0.0.1:9/b", "whsec_set")
    assert (await stored())["secret"] == "whsec_set"

    # Removal: stays removed across restarts, and its undelivered backlog is dropped.
    await db.execute(
        "INSERT INTO refundflow.outbox (event_id, refund_id, seq, type, occurred_at, payload)"
        " VALUES ($1, 'rf_backlog', 1, 'refund.pending_review', now(), '{}')"
        " ON CONFLICT DO NOTHING",
        f"{name}:1",
    )
    await db.execute(
        "INSERT INTO refundflow.outbox (event_id, refund_id, seq, type, occurred_at, payload)"
        " VALUES ($1, 'rf_backlog', 2, 'refund.approved', now(), '{}') ON CONFLICT DO NOTHING",
        f"{name}:2",
    )
    await db.execute(
        "INSERT INTO refundflow.deliveries (event_id, subscriber, refund_id, seq)"
        " VALUES ($1, $2, 'rf_backlog', 1)",
        f"{name}:1",
        name,
    )
    # And one it gave up on (parked): counted apart, as `subscribers remove` says it.
    await db.execute(
        "INSERT INTO refundflow.deliveries (event_id, subscriber, refund_id, seq, parked_at)"
        " VALUES ($1, $2, 'rf_backlog', 2, now())",
        f"{name}:2",
        name,
    )
    removal = await subscribers.deactivate_subscriber(db, name)
    assert removal == subscribers.Removal(removed_now=True, dropped_pending=1, dropped_parked=1)
    await subscribers.ensure_configured_subscriber(db, name, "http://127.0.0.1:9/b", None)
    assert (await stored())["active"] is False
    pending = await db.fetchval(
        "SELECT count(*) FROM refundflow.deliveries WHERE subscriber = $1", name
    )
    assert pending == 0


async def test_a_hanging_subscriber_does_not_hold_up_the_customer_channel(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    started: list[str] = []
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        started.append(request.headers["Refundflow-Event-Id"])
        await release.wait()  # never answers while the test looks
        return web.Response(status=204)

    port = free_port()
    name = f"hanging-{port}"
    app = web.Application()
    app.router.add_post("/events", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await subscribers.add_subscriber(db, name, f"http://127.0.0.1:{port}/events")
    try:
        first = await refunds_v2.request(make_request(await sandbox.order(amount=1500)))
        # The dispatcher opens the new subscriber's lane within its idle wait: from then on a
        # delivery to it hangs, unanswered, while the refunds below are told to customers.
        await eventually(lambda: asyncio.sleep(0, started), bool)
        assert started[0].startswith(first.refund_id)
        statuses = [
            await refunds_v2.request(make_request(await sandbox.order(amount=1501 + i)))
            for i in range(2)
        ]
        for status in [first, *statuses]:
            await eventually(
                partial(customer_deliveries, db, status.refund_id),
                lambda rows: len(rows) == 4 and all(r["delivered_at"] for r in rows),
            )
        assert not release.is_set()  # the hanging subscriber never answered meanwhile
    finally:
        release.set()
        await subscribers.deactivate_subscriber(db, name)
        await runner.cleanup()
