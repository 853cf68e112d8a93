"""The console's queue: refunds that need a person, soonest deadline first, filtered and
paged (keyset on deadline and refund id, so a refund acted on never shifts a page). A
closed refund is in it while reconciliation leaves it to a person (a trial: a rejected
refund whose item the warehouse holds was in `list --escalated` and nowhere in the queue),
and when an order or a customer is looked up, waiting for anyone (`awaiting=any`).

A refund waiting for review is due at its first review deadline under its pinned policy
(`Policy.review_deadline(0)`, the SLA), and overdue since then once past it, however often
it escalated: a trial found the queue sorted by each refund's next timer, so a refund past
its SLA twice (due at its expiry) came after every refund still within it. Any other refund
waiting for a person (an operator) has been due since it started waiting.
The status projection has no deadline column, so the deadlines of the policies in use are
passed in and the database computes each refund's.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from activities.reconciliation_sql import refunds_left_to_a_person
from api.deps import ApiState
from api.listing import asked_by, ended_or_unknown
from client.refund_ids import REFUND_ID_PATTERN
from workflows.money import _THREE_DECIMAL, _ZERO_DECIMAL
from workflows.states import Awaiting, RefundState

PAGE_SIZE = 25
NEEDS_A_PERSON = (Awaiting.REVIEWER.value, Awaiting.OPERATOR.value)
TERMINAL = (RefundState.COMPLETED.value, RefundState.CANCELLED.value)

_LEFT = "s.refund_id IN (SELECT refund_id FROM left_to_a_person)"
"""A refund reconciliation left to a person (activities/reconciliation_sql.py), asked of
the list the query reads once."""

_QUEUE = f"""
WITH policy(label, first_s) AS (
    SELECT * FROM unnest($9::text[], $10::float8[])
), left_to_a_person AS MATERIALIZED ({refunds_left_to_a_person()}
), queued AS (
    SELECT s.refund_id, s.order_id, s.state, s.amount, s.currency, s.awaiting,
           s.escalation_level, s.reason_code, s.channel, s.requested_at, s.updated_at,
           s.view ->> 'requested_by' AS customer, {_LEFT} AS left_to_a_person,
           CASE WHEN s.state = 'pending_review'
                THEN s.requested_at + make_interval(secs => coalesce(p.first_s, 0))
                ELSE s.updated_at END AS due_at,
           s.amount::numeric / power(10, CASE WHEN s.currency = ANY($11::text[]) THEN 0
                WHEN s.currency = ANY($12::text[]) THEN 3 ELSE 2 END) AS major
    FROM refundflow.refund_status s LEFT JOIN policy p ON p.label = s.policy_version
    WHERE ($1::text IS NULL OR s.state = $1)
      AND ($1::text IS NOT NULL OR $4::text IS NOT NULL OR $5::text IS NOT NULL
           OR s.state <> ALL($16::text[]) OR {_LEFT})
      AND ($2::text[] IS NULL OR s.awaiting = ANY($2::text[])
           OR ($18 AND {_LEFT}))
      AND (NOT $3 OR s.escalation_level > 0 OR {_LEFT})
      AND ($4::text IS NULL OR s.order_id = $4)
      AND ($5::text IS NULL OR {asked_by("s", "$5")})
      AND ($6::text IS NULL OR s.channel = $6)
      AND ($17::text IS NULL OR s.currency = $17)
)
SELECT *, due_at < now() AS overdue FROM queued
WHERE ($7::numeric IS NULL OR major >= $7) AND ($8::numeric IS NULL OR major <= $8)
  AND ($13::timestamptz IS NULL OR (due_at, refund_id) > ($13, $14::text))
ORDER BY due_at, refund_id
LIMIT $15
"""


@dataclass(frozen=True)
class Filters:
    state: str | None = None
    awaiting: str = "person"
    """`person` (a reviewer or an operator), `any`, or one Awaiting value."""
    escalated: bool = False
    order: str | None = None
    customer: str | None = None
    channel: str | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    currency: str | None = None
    """Amounts compare in each refund's own currency: this keeps to one (8000 JPY is not
    between 50 and 8000 of anything else)."""

    def awaiting_values(self) -> list[str] | None:
        # A closed refund waits for nobody: "a person", the default, must not hide them all.
        if self.awaiting == "any" or (self.awaiting == "person" and self.state in TERMINAL):
            return None
        return list(NEEDS_A_PERSON) if self.awaiting == "person" else [self.awaiting]


@dataclass(frozen=True)
class QueuePage:
    items: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None
    ended_in_temporal: dict[str, str] | None = field(default_factory=dict)
    """Open refunds of this page whose workflow Temporal ended (the Web UI's Terminate):
    nothing moves them until reconciliation. None: Temporal could not be asked."""


def encode_cursor(row: dict[str, Any]) -> str:
    raw = json.dumps([row["due_at"].isoformat(), row["refund_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str] | None:
    """A cursor this page gave out, or None (a forged or stale one starts at the top)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, refund_id = json.loads(raw)
        if not re.fullmatch(REFUND_ID_PATTERN, refund_id):
            return None
        return datetime.fromisoformat(at), str(refund_id)
    except (ValueError, TypeError, binascii.Error):
        return None


async def _deadlines(api: ApiState, pool: asyncpg.Pool) -> list[list[Any]]:
    """[labels, first]: the review deadline (seconds, the SLA's first step) of each policy
    version a waiting refund is pinned to."""
    labels = await pool.fetch(
        "SELECT DISTINCT policy_version FROM refundflow.refund_status WHERE state = $1",
        RefundState.PENDING_REVIEW.value,
    )
    columns: list[list[Any]] = [[], []]
    for row in labels:
        policy = api.pinned_policy(row["policy_version"])
        if policy is None:
            continue  # its file is gone or changed: due at once, a person must look
        columns[0].append(row["policy_version"])
        columns[1].append(policy.review_deadline(0).total_seconds())
    return columns


async def page(api: ApiState, filters: Filters, cursor: str | None) -> QueuePage:
    pool = (await api.refunds.store()).pool
    after = decode_cursor(cursor) if cursor else None
    rows = await pool.fetch(
        _QUEUE,
        filters.state,
        filters.awaiting_values(),
        filters.escalated,
        filters.order,
        filters.customer,
        filters.channel,
        filters.amount_min,
        filters.amount_max,
        *(await _deadlines(api, pool)),
        sorted(_ZERO_DECIMAL),
        sorted(_THREE_DECIMAL),
        after[0] if after else None,
        after[1] if after else None,
        PAGE_SIZE + 1,
        list(TERMINAL),
        filters.currency,
        filters.awaiting == "person",  # reconciliation's escalations are a person's too
    )
    items = [dict(r) for r in rows[:PAGE_SIZE]]
    more = len(rows) > PAGE_SIZE
    ended = await ended_or_unknown(
        api.refunds.temporal, [r["refund_id"] for r in items if r["state"] not in TERMINAL]
    )
    return QueuePage(items, encode_cursor(items[-1]) if more and items else None, ended)
