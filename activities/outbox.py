"""The notification outbox in Postgres: events written with the audit, and what was delivered
to whom. Delivery itself is the dispatcher's job (activities.dispatcher), which also states
the ordering promise; subscribers are managed in activities.subscribers.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from workflows import vocabulary, wording
from workflows.events import EventFacts, Notification, SubscriberEvent
from workflows.facts import NO_ETA
from workflows.models import Notice
from workflows.read_models import OutboxEvent

NOTIFY_CHANNEL = "refundflow_outbox"
"""Postgres NOTIFY channel: wakes the dispatcher as soon as events are written."""
PARKED_KIND = "subscriber_event_parked"
"""The finding recorded when a delivery is parked (`refundflow anomalies`)."""
FINDINGS_RUN = vocabulary.DISPATCHER_RUN
"""The standing run the dispatcher's findings belong to (migration 0007)."""
SITUATION_TYPES = {
    "escalated": "refund.escalated",
    "provider_requires_action": "refund.action_required",
    "provider_reversed": "refund.reversed",
}


def event_id(refund_id: str, seq: int) -> str:
    return f"{refund_id}:{seq}"


def event_payload(refund_id: str, notice: Notice) -> dict[str, Any]:
    """What every subscriber receives (workflows.events.SubscriberEvent): the facts and the
    customer's notification, rendered from those facts by the same templates as the tracking
    page and the support reply."""
    facts = notice.facts
    # Subscribers' schema v1 knows a review's and a payment's ETA; a returned item's
    # deadline is told in the notification's words only.
    timed = facts if facts.eta_kind != "return" else facts.model_copy(update=NO_ETA)
    event = SubscriberEvent(
        id=event_id(refund_id, notice.seq),
        # A notice that is not a state change (an escalation or payment failure, the
        # provider waiting for the customer) has a type of its own.
        type=SITUATION_TYPES.get(notice.event, f"refund.{facts.state.value}"),
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
        eta=timed.eta,
        eta_earliest=timed.eta_earliest,
        facts=EventFacts.model_validate(timed.model_dump()),
        notification=Notification.model_validate(wording.notification(facts)),
    )
    return event.model_dump(mode="json")


async def write_events(conn: asyncpg.Connection, refund_id: str, notices: list[Notice]) -> int:
    """Inside the audit transaction: each event once (a retried activity re-sends them), and
    one delivery per active subscriber. Returns how many events are new."""
    if not notices:
        return 0
    payloads = [event_payload(refund_id, n) for n in notices]
    # The NOTIFY in the same statement (sent at commit, as NOTIFY is): one round trip less.
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
        SELECT count(*), CASE WHEN count(*) > 0 THEN pg_notify($7, '') END FROM new
        """,
        [p["id"] for p in payloads],
        [refund_id] * len(payloads),
        [n.seq for n in notices],
        [p["type"] for p in payloads],
        [n.at for n in notices],
        [json.dumps(p) for p in payloads],
        NOTIFY_CHANNEL,
    )
    return int(new)


async def events_for(pool: asyncpg.Pool, refund_id: str) -> list[OutboxEvent]:
    """A refund's events in order, each with its delivery to every subscriber."""
    rows = await pool.fetch(
        """
        SELECT o.event_id, o.seq, o.type, o.occurred_at, o.payload::text AS payload,
            coalesce(json_agg(json_build_object(
                'subscriber', d.subscriber, 'attempts', d.attempts,
                'delivered_at', d.delivered_at, 'next_try_at', d.next_try_at,
                'last_error', d.last_error, 'parked_at', d.parked_at) ORDER BY d.subscriber)
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
