"""The notification outbox in Postgres: events written with the audit, subscribers, and what
was delivered to whom. Delivery itself is the dispatcher's job (activities.dispatcher)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import asyncpg

from workflows import wording
from workflows.events import EventFacts, Notification, SubscriberEvent
from workflows.models import Notice
from workflows.read_models import AddedSubscriber, OutboxEvent, Subscriber

NOTIFY_CHANNEL = "refundflow_outbox"
"""Postgres NOTIFY channel: wakes the dispatcher as soon as events are written."""


def event_id(refund_id: str, seq: int) -> str:
    return f"{refund_id}:{seq}"


def event_payload(refund_id: str, notice: Notice) -> dict[str, Any]:
    """What every subscriber receives (workflows.events.SubscriberEvent): the facts and the
    customer's notification, rendered from those facts by the same templates as the tracking
    page and the support reply."""
    facts = notice.facts
    event = SubscriberEvent(
        id=event_id(refund_id, notice.seq),
        type=f"refund.{facts.state.value}",
        refund_id=refund_id,
        order_id=facts.order_id,
        seq=notice.seq,
        event=notice.event,
        occurred_at=notice.at,
        state=facts.state,
        cancel_reason=facts.cancel_reason,
        amount=facts.amount,
        currency=facts.currency,
        locale=facts.locale,
        eta=facts.eta,
        eta_earliest=facts.eta_earliest,
        facts=EventFacts.model_validate(facts.model_dump()),
        notification=Notification.model_validate(wording.notification(facts)),
    )
    return event.model_dump(mode="json")


async def write_events(conn: asyncpg.Connection, refund_id: str, notices: list[Notice]) -> int:
    """Inside the audit transaction: each event once (a retried activity re-sends them), and
    one delivery per active subscriber. Returns how many events are new."""
    if not notices:
        return 0
    payloads = [event_payload(refund_id, n) for n in notices]
    new = await conn.fetchval(
        """
        WITH new AS (
            INSERT INTO refundflow.outbox (event_id, refund_id, seq, type, occurred_at, payload)
            SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[],
                $5::timestamptz[], $6::jsonb[])
            ON CONFLICT (event_id) DO NOTHING
            RETURNING event_id, refund_id, seq
        ), fanned AS (  -- runs although unread: Postgres always completes a WITH insert
            INSERT INTO refundflow.deliveries (event_id, subscriber, refund_id, seq)
            SELECT new.event_id, s.name, new.refund_id, new.seq
            FROM new CROSS JOIN refundflow.subscribers s WHERE s.active
        )
        SELECT count(*) FROM new
        """,
        [p["id"] for p in payloads],
        [refund_id] * len(payloads),
        [n.seq for n in notices],
        [p["type"] for p in payloads],
        [n.at for n in notices],
        [json.dumps(p) for p in payloads],
    )
    if new:
        await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    return int(new)


async def events_for(pool: asyncpg.Pool, refund_id: str) -> list[OutboxEvent]:
    """A refund's events in order, each with its delivery to every subscriber."""
    rows = await pool.fetch(
        """
        SELECT o.event_id, o.seq, o.type, o.occurred_at, o.payload::text AS payload,
            coalesce(json_agg(json_build_object(
                'subscriber', d.subscriber, 'attempts', d.attempts,
                'delivered_at', d.delivered_at, 'next_try_at', d.next_try_at,
                'last_error', d.last_error) ORDER BY d.subscriber)
                FILTER (WHERE d.subscriber IS NOT NULL), '[]')::text AS deliveries
        FROM refundflow.outbox o
        LEFT JOIN refundflow.deliveries d ON d.event_id = o.event_id
        WHERE o.refund_id = $1
        GROUP BY o.event_id ORDER BY o.seq
        """,
        refund_id,
    )
    return [
        OutboxEvent.model_validate(
            {
                **dict(r),
                "payload": json.loads(r["payload"]),
                "deliveries": json.loads(r["deliveries"]),
            }
        )
        for r in rows
    ]


async def add_subscriber(pool: asyncpg.Pool, name: str, url: str) -> AddedSubscriber:
    """Subscribe `url` to events from now on, with a new signing secret (shown once).
    Adding an existing name again points it at `url`, rotates its secret and resumes it."""
    row = await pool.fetchrow(
        "INSERT INTO refundflow.subscribers (name, url, secret) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, secret = EXCLUDED.secret,"
        " active = true RETURNING name, url, secret, active, created_at",
        name,
        url,
        "whsec_" + secrets.token_hex(24),
    )
    return AddedSubscriber.model_validate(dict(row))


async def ensure_configured_subscriber(
    pool: asyncpg.Pool, name: str, url: str, secret: str | None
) -> None:
    """A subscriber the deployment configures (the customer channel): its url and, when
    configured, its secret follow the configuration; otherwise the stored secret is kept,
    so restarting a worker never changes it. An operator's removal is respected."""
    await pool.execute(
        "INSERT INTO refundflow.subscribers (name, url, secret) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url,"
        " secret = CASE WHEN $4 THEN EXCLUDED.secret ELSE subscribers.secret END",
        name,
        url,
        secret or "whsec_" + secrets.token_hex(24),
        bool(secret),
    )


async def list_subscribers(pool: asyncpg.Pool) -> list[Subscriber]:
    """Subscribers with their backlog; secrets are never listed."""
    rows = await pool.fetch(
        """
        SELECT s.name, s.url, s.active, s.created_at,
            count(d.event_id) FILTER (WHERE d.delivered_at IS NULL) AS pending,
            count(d.event_id) FILTER (WHERE d.delivered_at IS NOT NULL) AS delivered
        FROM refundflow.subscribers s
        LEFT JOIN refundflow.deliveries d ON d.subscriber = s.name
        GROUP BY s.name ORDER BY s.name
        """
    )
    return [Subscriber.model_validate(dict(r)) for r in rows]


async def deactivate_subscriber(pool: asyncpg.Pool, name: str) -> bool:
    """Stop deliveries to `name`; what it had not received yet is dropped, not kept for later
    (subscribers receive events from the moment they are added)."""
    async with pool.acquire() as conn, conn.transaction():
        result = await conn.execute(
            "UPDATE refundflow.subscribers SET active = false WHERE name = $1", name
        )
        await conn.execute(
            "DELETE FROM refundflow.deliveries WHERE subscriber = $1 AND delivered_at IS NULL",
            name,
        )
    return bool(result.endswith(" 1"))
