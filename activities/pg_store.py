"""Postgres store: the append-only audit trail, the status projection and the order ledger
(reservations: taken in activities/reserving.py, read and followed in
activities/order_ledger.py; the rule in workflows/ledger.py)."""

from __future__ import annotations

import json
from dataclasses import astuple
from pathlib import Path

import asyncpg

from activities import audit_chain, budgets, order_ledger, reserving
from activities.audit_chain import AuditContent, utc
from activities.audit_retries import check_same_entries
from activities.fair_pool import create_fair_pool
from activities.migrate import apply_migrations
from activities.order_ledger import LedgerRead
from activities.outbox import FINDINGS_RUN as DISPATCHER_RUN
from activities.outbox import write_events
from activities.projection import project_status
from activities.reconciliation_sql import acknowledgement_of, left_to_a_person, open_now
from workflows.budgets import BudgetUse, customer_key
from workflows.ledger import Hold
from workflows.models import (
    RecordTransitionsInput,
    ReserveInput,
    ReserveResult,
    StatusProjection,
    StatusView,
    ValueShare,
)
from workflows.money_around import MoneyAround
from workflows.read_models import (
    AuditEntry,
    ClosedRequest,
    CustomerHistory,
    Finding,
    ListedRefund,
    OrderLedger,
)

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA = "refundflow"

# Open: what the newest finished reconciliation run found and did not heal (a refund changed
# within that run's grace is left to the next run, which finds it again if it still stands),
# or a subscriber event the dispatcher parked ($6) that is still parked.
LISTED_FINDINGS_SQL = f"""
WITH listed AS (
    SELECT f.*, CASE
        WHEN f.run_id = $6 THEN EXISTS (SELECT 1 FROM refundflow.deliveries d
            WHERE d.event_id = f.details->>'event_id'
              AND d.subscriber = f.details->>'subscriber' AND d.parked_at IS NOT NULL)
        ELSE {open_now("f")}
    END AS open
    FROM refundflow.findings f
    WHERE ($1::text IS NULL OR f.run_id = $1) AND ($2::text IS NULL OR f.kind = $2)
      AND ($3::text IS NULL OR f.refund_id = $3
           -- an order's finding that names the refund (a trial: `anomalies --refund` missed
           -- the order paid above its capture by the refund paid elsewhere)
           OR (f.order_id = (SELECT order_id FROM refundflow.refund_status WHERE refund_id = $3)
               AND f.details->'paid_elsewhere_refunds' ? $3))
      AND ($7::text IS NULL OR f.order_id = $7)
)
SELECT finding_id, run_id, l.kind, refund_id, order_id, l.details::text AS details, action,
    created_at, open, k.acknowledged_by, k.reason AS acknowledged_reason, k.acknowledged_at,
    (SELECT min(g.created_at) FROM refundflow.findings g
        WHERE g.kind = l.kind AND g.refund_id IS NOT DISTINCT FROM l.refund_id
          AND g.order_id IS NOT DISTINCT FROM l.order_id
          -- one parked event is not another of the same refund (a trial: seq 2-4 read as
          -- first found when seq 1 was)
          AND g.details->>'event_id' IS NOT DISTINCT FROM l.details->>'event_id'
          AND g.details->>'subscriber' IS NOT DISTINCT FROM l.details->>'subscriber'
        ) AS first_found_at
FROM listed l LEFT JOIN refundflow.finding_acknowledgements k ON {acknowledgement_of("l", "k")}
WHERE open OR NOT $4
ORDER BY finding_id DESC LIMIT $5
"""


async def create_pool(
    database_url: str, *, migrate: bool = True, max_size: int = 10
) -> asyncpg.Pool:
    """A pool on the app's database, serving its callers in turn (activities/fair_pool.py);
    with `migrate`, its tables brought up to date first (the worker's way: clients leave
    migrating to the worker and `refundflow migrate`)."""
    pool = await create_fair_pool(database_url, min_size=1, max_size=max_size)
    if migrate:
        await migrate_store(pool)
    return pool


async def migrate_store(pool: asyncpg.Pool) -> list[str]:
    """Apply the store's migrations not yet applied; their names, in order."""
    async with pool.acquire() as conn:
        return await apply_migrations(conn, MIGRATIONS, SCHEMA)


class PostgresRefundStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record_transitions(self, batch: RecordTransitionsInput) -> int:
        """Record a batch of the workflow's journal in one transaction: its audit entries
        (once: a retried activity re-sends them), their events, the status projection and the
        reservation that follows it. Returns how many audit entries are new."""
        last_seq = max(entry.seq for entry in batch.entries)
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await _append_audit(conn, batch)
            # Notifications: in this same transaction, so a recorded transition always has
            # its event and an event never exists without its transition.
            await write_events(conn, batch.refund_id, batch.notices)
            await project_status(conn, batch.projection, batch.view, last_seq)
            events = (entry.event for entry in batch.entries)
            await order_ledger.follow_refund(conn, batch.projection, events)
        return inserted

    async def reserve(self, request: ReserveInput) -> ReserveResult:
        """Hold the refund's money and lines against the order (invariants 2 and 9), under
        the order's row lock, so concurrent requests for one order are decided one at a
        time: the ledger's final word. A refund the policy would auto-approve is checked
        against the auto-approval budgets too; beyond one it is still held, and the result
        says why a reviewer decides. Idempotent per refund: the first answer stands (read
        without the locks when the edge already holds it: `reserving.held_already`)."""
        async with self._pool.acquire() as conn:
            return await reserving.reserve(conn, request)

    async def check_held_for(self, request: ReserveInput) -> None:
        """HeldForAnotherRequest when the refund's hold was made for another request."""
        async with self._pool.acquire() as conn:
            await reserving.held_already(conn, request)

    async def hold(self, request: ReserveInput) -> tuple[ReserveResult, bool]:
        """As `reserve`, and whether the refund held before this call: what the edge tells
        a request that raced another for the same refund (answered as asked before).
        HeldForAnotherRequest when the refund holds for another request (its key reused)."""
        async with self._pool.acquire() as conn, conn.transaction():
            return await reserving.hold(conn, request)

    async def holds(self, order_id: str, but: str) -> list[Hold]:
        """What every other refund of the order holds (not `but`'s own): what the edge and
        `eligibility` check a request against before anything starts."""
        return await order_ledger.holds(self._pool, order_id, but)

    async def budget_use(
        self, order_id: str, requested_by: str, currency: str, window_days: int, but: str
    ) -> BudgetUse:
        """Auto-approved money already counted against the budgets, on the order and for
        the requester (refund `but` not counted): what `eligibility` checks, ahead of time."""
        customer = customer_key(requested_by)
        return await budgets.budget_use(self._pool, order_id, customer, currency, window_days, but)

    async def customer_history(self, refund_id: str, window_days: int) -> CustomerHistory | None:
        """The requester's other refunds over the last `window_days`, for reviewers."""
        return await budgets.customer_history(self._pool, refund_id, window_days)

    async def money_around(self, order_id: str) -> list[MoneyAround]:
        """Open findings of money refunded on the order around refundflow."""
        return await order_ledger.money_around(self._pool, order_id)

    async def order_ledger(self, order_id: str) -> OrderLedger | None:
        """The order's ledger per line, for people (None: nothing reserved on it yet)."""
        return await order_ledger.order_ledger(self._pool, order_id)

    async def refundable(self, order_id: str, captured_amount: int, refund_id: str) -> int:
        """What can still be refunded on an order, not counting `refund_id`'s own hold."""
        held = await self._pool.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM refundflow.reservations"
            " WHERE order_id = $1 AND state <> 'released' AND refund_id <> $2",
            order_id,
            refund_id,
        )
        return int(captured_amount - held)

    async def state_and_holds(self, order_id: str, refund_id: str) -> LedgerRead:
        """The refund's last recorded state (None: none; kept long after Temporal's
        retention), what every other refund of its order holds and the order's capture as
        first recorded, in one read: what the edge asks before it reserves."""
        return await order_ledger.state_and_holds(self._pool, order_id, refund_id)

    async def held_split(self, refund_id: str) -> list[ValueShare]:
        """What an amount-only refund's reservation holds of each line: its split as first
        held (a retry's answer stands, whatever the holds are now)."""
        rows = await self._pool.fetch(
            "SELECT sku, amount FROM refundflow.reservation_lines WHERE refund_id = $1"
            " AND quantity = 0 AND amount > 0 ORDER BY sku",
            refund_id,
        )
        return [ValueShare(sku=r["sku"], amount=r["amount"]) for r in rows]

    async def open_status(self, projection: StatusProjection, view: StatusView) -> None:
        """A refund just started (not waited for): its opening status, until its workflow
        records its first entries. As of seq 0, so any batch of theirs replaces it and
        this never replaces theirs, whichever lands first."""
        await project_status(self._pool, projection, view, 0)

    async def status_view(self, refund_id: str) -> StatusView | None:
        """The refund's status as the workflow recorded it with its last transitions (exact
        at every point where the refund waits); None when no row has one."""
        view = await self._pool.fetchval(
            "SELECT view FROM refundflow.refund_status WHERE refund_id = $1", refund_id
        )
        return StatusView.model_validate_json(view) if view is not None else None

    async def list_status(
        self,
        *,
        state: str | None = None,
        order_id: str | None = None,
        escalated: bool = False,
        limit: int = 100,
    ) -> list[ListedRefund]:
        rows = await self._pool.fetch(
            f"""
            SELECT refund_id, order_id, state, amount, currency, awaiting, escalation_level,
                   policy_version, reason_code, channel, requested_at, updated_at
            FROM refundflow.refund_status s
            WHERE ($1::text IS NULL OR state = $1)
              AND ($2::text IS NULL OR order_id = $2)
              AND (NOT $3 OR s.escalation_level > 0 OR {left_to_a_person("s")})
            ORDER BY updated_at DESC
            LIMIT $4
            """,
            state,
            order_id,
            escalated,
            limit,
        )
        return [ListedRefund.model_validate(dict(r)) for r in rows]

    async def findings(
        self,
        *,
        run_id: str | None = None,
        kind: str | None = None,
        refund_id: str | None = None,
        open_only: bool = False,
        limit: int = 100,
        order_id: str | None = None,
    ) -> list[Finding]:
        rows = await self._pool.fetch(
            LISTED_FINDINGS_SQL, run_id, kind, refund_id, open_only, limit, DISPATCHER_RUN, order_id
        )
        return [
            Finding.model_validate({**dict(r), "details": json.loads(r["details"])}) for r in rows
        ]

    async def closed_requests(self, order_id: str, but: str) -> list[ClosedRequest]:
        """The order's other refunds that closed without paying, newest first, each with
        who closed it and the reason recorded then (the last entry of its audit)."""
        rows = await self._pool.fetch(
            """
            SELECT s.refund_id, s.amount, s.currency, s.reason_code,
                   s.view->>'cancel_reason' AS cancel_reason, a.at AS closed_at,
                   a.actor AS closed_by, a.reason AS said
            FROM refundflow.refund_status s
            JOIN LATERAL (SELECT at, actor, reason FROM refundflow.audit
                          WHERE refund_id = s.refund_id ORDER BY seq DESC LIMIT 1) a ON true
            WHERE s.order_id = $1 AND s.refund_id <> $2 AND s.state = 'cancelled'
            ORDER BY a.at DESC LIMIT 20
            """,
            order_id,
            but,
        )
        return [ClosedRequest.model_validate(dict(r)) for r in rows]

    async def audit_trail(self, refund_id: str) -> list[AuditEntry]:
        rows = await self._pool.fetch(
            "SELECT refund_id, seq, event, from_state, to_state, at, actor, source, reason,"
            " escalation_level, policy_version, issuer, recorded_at"
            " FROM refundflow.audit WHERE refund_id = $1 ORDER BY seq",
            refund_id,
        )
        return [AuditEntry.model_validate(dict(r)) for r in rows]

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool


_INSERT_AUDIT = """
    INSERT INTO refundflow.audit (refund_id, seq, event, from_state, to_state, at,
        actor, source, reason, escalation_level, policy_version, issuer, prev_hash, row_hash)
    SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[],
        $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::int[], $11::text[],
        $12::text[], $13::text[], $14::text[])
    ON CONFLICT (refund_id, seq) DO NOTHING
    RETURNING seq
"""


def _audit_rows(batch: RecordTransitionsInput) -> list[AuditContent]:
    """The batch's entries as audit rows, under the policy version the refund pinned."""
    policy_version = batch.projection.policy_version
    return [
        AuditContent(
            refund_id=batch.refund_id,
            seq=e.seq,
            event=e.event,
            from_state=e.from_state.value if e.from_state else None,
            to_state=e.state.value,
            at=utc(e.at),  # stored as hashed, whatever zone the entry was given in
            actor=e.actor,
            source=e.source,
            reason=e.reason,
            escalation_level=e.escalation_level,
            policy_version=policy_version,
            issuer=e.issuer,
        )
        for e in batch.entries
    ]


async def _append_audit(conn: asyncpg.Connection, batch: RecordTransitionsInput) -> int:
    """Insert the batch's audit entries, each chained to the one before (audit_chain.link);
    how many are new. A retried activity re-sends entries already stored, which must then be
    the same entries; they are skipped (ON CONFLICT DO NOTHING as well, belt and braces)."""
    new = await audit_chain.link(conn, _audit_rows(batch))
    rows = [(*astuple(r.content), r.prev_hash, r.row_hash) for r in new]
    inserted = (
        await conn.fetch(_INSERT_AUDIT, *[list(column) for column in zip(*rows, strict=True)])
        if rows
        else []
    )
    if len(inserted) < len(batch.entries):
        await check_same_entries(conn, batch, {r["seq"] for r in inserted})
    return len(inserted)
