"""The sandbox systems' persistence and rules, in Postgres (schema `sandbox`)."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from activities.fair_pool import SessionConnection
from activities.migrate import apply_migrations
from sandbox import records, reversals
from sandbox.faults import PaymentFaults, roll
from workflows.events import SubscriberEvent

MIGRATIONS = Path(__file__).parent / "migrations"


class SandboxError(Exception):
    """An error the sandbox answers with: HTTP status, machine code, human message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _key_reused() -> SandboxError:
    return SandboxError(
        409, "idempotency_key_reused", "this idempotency key was used with different parameters"
    )


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _request_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class SandboxStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, database_url: str) -> SandboxStore:
        # Connections go back without asyncpg's reset round trip, as the app's do: the
        # sandbox stands in for systems that are not ours, and should cost the bench little.
        pool = await asyncpg.create_pool(
            database_url, min_size=1, max_size=10, connection_class=SessionConnection
        )
        async with pool.acquire() as conn:
            await apply_migrations(conn, MIGRATIONS, "sandbox")
        return cls(pool)

    # --- order system -------------------------------------------------------------------

    async def create_order(
        self,
        *,
        currency: str,
        lines: list[dict[str, Any]],
        delivered_days_ago: int | None,
        payment_rail: str = "card",
        customer_id: str | None = None,
    ) -> dict[str, Any]:
        """A paid order of `customer_id` (one is made up when not given: every order has a
        customer, as in a real order system)."""
        order_id = _new_id("ord")
        payment_reference = _new_id("pay")
        captured = sum(int(line["unit_price"]) * int(line["quantity"]) for line in lines)
        delivered_at = (
            datetime.now(UTC) - timedelta(days=delivered_days_ago)
            if delivered_days_ago is not None
            else None
        )
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO sandbox.orders (order_id, currency, lines, captured_amount,"
                " payment_reference, delivered_at, payment_rail, customer_id)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                order_id,
                currency,
                json.dumps(lines),
                captured,
                payment_reference,
                delivered_at,
                payment_rail,
                customer_id or _new_id("cust"),
            )
            await conn.execute(
                "INSERT INTO sandbox.payments (payment_reference, order_id, currency,"
                " captured_amount) VALUES ($1, $2, $3, $4)",
                payment_reference,
                order_id,
                currency,
                captured,
            )
        order = await self.get_order(order_id)
        assert order is not None
        return order

    async def get_order(self, order_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow("SELECT * FROM sandbox.orders WHERE order_id = $1", order_id)
        if row is None:
            return None
        return {
            "order_id": row["order_id"],
            "currency": row["currency"],
            "lines": json.loads(row["lines"]),
            "captured_amount": row["captured_amount"],
            "payment_reference": row["payment_reference"],
            "delivered_at": records.iso(row["delivered_at"]),
            "payment_rail": row["payment_rail"],
            "customer_id": row["customer_id"],
        }

    # --- payment provider ---------------------------------------------------------------

    async def create_refund(
        self,
        idempotency_key: str,
        payment_reference: str,
        amount: int,
        currency: str,
        metadata: dict[str, Any],
        faults: PaymentFaults,
    ) -> tuple[dict[str, Any], bool]:
        """Refund against a payment. Returns (refund, created_now).

        Same key (within the retention period) and same parameters: the original refund again.
        Same key, other parameters: 409. Cumulative refunds (pending or succeeded) may never
        exceed the captured amount: 422. Faults may refuse it for good (402) or make it
        `pending`, to be settled later.
        """
        request_hash = _request_hash(
            {"payment_reference": payment_reference, "amount": amount, "currency": currency}
        )
        async with self.pool.acquire() as conn, conn.transaction():
            # Lock the payment first: concurrent refunds on one payment run one at a time,
            # so both the key check and the limit check see every committed refund.
            payment = await conn.fetchrow(
                "SELECT * FROM sandbox.payments WHERE payment_reference = $1 FOR UPDATE",
                payment_reference,
            )
            existing = await conn.fetchrow(
                "SELECT * FROM sandbox.refunds WHERE idempotency_key = $1"
                " AND created_at > now() - make_interval(secs => $2)"
                " ORDER BY created_at DESC LIMIT 1",
                idempotency_key,
                faults.idempotency_retention_s,
            )
            if existing is not None:
                if existing["request_hash"] != request_hash:
                    raise _key_reused()
                return records.refund_row(existing), False
            if payment is None:
                raise SandboxError(404, "payment_not_found", f"no payment {payment_reference}")
            _check_refundable(payment, amount, currency, faults)
            row = await _insert_refund(
                conn, idempotency_key, request_hash, payment, amount, currency, metadata, faults
            )
            return records.refund_row(row), True

    async def get_refund(self, provider_refund_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM sandbox.refunds WHERE provider_refund_id = $1", provider_refund_id
        )
        return None if row is None else records.refund_row(row)

    async def settle_due_refunds(self, send_webhooks: bool, faults: PaymentFaults) -> int:
        """Settle pending refunds whose time has come, and reverse the paid ones due to be
        reversed; queue a webhook for each."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT * FROM sandbox.refunds WHERE status IN ('pending', 'requires_action')"
                " AND settle_at <= now()"
                " ORDER BY settle_at LIMIT 100 FOR UPDATE SKIP LOCKED"
            )
            for row in rows:
                ends = row["settle_to"]
                failed = ends in ("failed", "canceled")  # no money moved: give it back
                settled = await conn.fetchrow(
                    "UPDATE sandbox.refunds SET status = $2, failure_code = $3"
                    " WHERE provider_refund_id = $1 RETURNING *",
                    row["provider_refund_id"],
                    ends,
                    {"failed": "lost_or_stolen_card", "canceled": "expired_action"}.get(ends),
                )
                if failed:
                    await records.give_back(conn, row)
                await reversals.maybe_schedule(conn, settled, faults)
                if send_webhooks:
                    await reversals.queue_webhook(
                        conn, f"refund.{ends}", records.refund_row(settled)
                    )
            return len(rows) + await reversals.reverse_due(conn, send_webhooks)

    async def due_webhooks(self) -> list[tuple[str, str, int]]:
        rows = await self.pool.fetch(
            "SELECT event_id, payload::text AS body, attempts FROM sandbox.webhook_events"
            " WHERE delivered_at IS NULL AND next_try_at <= now() AND attempts < 20"
            " ORDER BY created_at LIMIT 50"
        )
        return [(r["event_id"], r["body"], r["attempts"]) for r in rows]

    async def mark_webhook(self, event_id: str, delivered: bool, attempts: int) -> None:
        # Exponential backoff, capped at a minute, for receivers that are down.
        await self.pool.execute(
            "UPDATE sandbox.webhook_events SET attempts = $2::int,"
            " delivered_at = CASE WHEN $3 THEN now() END,"
            " next_try_at = now() + make_interval(secs => least(60, 0.2 * power(2, $2::int)))"
            " WHERE event_id = $1",
            event_id,
            attempts,
            delivered,
        )

    async def list_refunds(
        self,
        *,
        order_id: str | None = None,
        refund_id: str | None = None,
        after: str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """The ledger, oldest first; `refund_id` searches the caller's metadata, `after`
        pages by provider refund id."""
        rows = await self.pool.fetch(
            "SELECT * FROM sandbox.refunds WHERE ($1::text IS NULL OR order_id = $1)"
            " AND ($2::text IS NULL OR metadata->>'refund_id' = $2)"
            " AND ($3::text IS NULL OR provider_refund_id > $3)"
            " ORDER BY provider_refund_id LIMIT $4",
            order_id,
            refund_id,
            after,
            limit,
        )
        return [records.refund_row(r) for r in rows]

    # --- inventory ----------------------------------------------------------------------

    async def restock(
        self, idempotency_key: str, sku: str, quantity: int, reference: str
    ) -> tuple[dict[str, Any], bool]:
        request_hash = _request_hash({"sku": sku, "quantity": quantity, "reference": reference})
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO sandbox.stock_movements (movement_id, idempotency_key, request_hash,"
                " sku, quantity, reference) VALUES ($1, $2, $3, $4, $5, $6)"
                " ON CONFLICT (idempotency_key) DO NOTHING RETURNING *",
                _new_id("mv"),
                idempotency_key,
                request_hash,
                sku,
                quantity,
                reference,
            )
            created = row is not None
            if row is None:
                row = await conn.fetchrow(
                    "SELECT * FROM sandbox.stock_movements WHERE idempotency_key = $1",
                    idempotency_key,
                )
                if row["request_hash"] != request_hash:
                    raise _key_reused()
        return records.movement_row(row), created

    async def list_movements(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch("SELECT * FROM sandbox.stock_movements ORDER BY created_at")
        return [records.movement_row(r) for r in rows]

    # --- customer inbox -----------------------------------------------------------------

    async def receive_notification(self, event: SubscriberEvent) -> bool:
        """Store what the customer was told; False if this event id had arrived before."""
        note = event.notification
        first = await self.pool.fetchval(
            "INSERT INTO sandbox.notifications (event_id, refund_id, seq, type, locale,"
            " subject, body, tracking_url) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT (event_id) DO UPDATE SET copies = notifications.copies + 1,"
            " last_received_at = now() RETURNING copies = 1",
            event.id,
            event.refund_id,
            event.seq,
            event.type,
            note.locale,
            note.subject,
            note.body,
            note.tracking_url,
        )
        return bool(first)

    async def notifications(self, refund_id: str | None) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT * FROM sandbox.notifications WHERE ($1::text IS NULL OR refund_id = $1)"
            " ORDER BY refund_id, seq",
            refund_id,
        )
        return [
            {k: records.iso(v) if isinstance(v, datetime) else v for k, v in r.items()}
            for r in rows
        ]


def _check_refundable(
    payment: asyncpg.Record, amount: int, currency: str, faults: PaymentFaults
) -> None:
    """Raise the provider's error for a refund of a known payment that it will not make."""
    if currency != payment["currency"]:
        raise SandboxError(
            400, "currency_mismatch", f"payment was captured in {payment['currency']}"
        )
    if faults.refuse:
        raise SandboxError(
            402, faults.refuse, f"the card network refused the refund: {faults.refuse}"
        )
    remaining = payment["captured_amount"] - payment["refunded_amount"]
    if amount > remaining:
        raise SandboxError(
            422,
            "amount_exceeds_captured",
            f"refund of {amount} exceeds the {remaining} still refundable",
        )


async def _insert_refund(
    conn: asyncpg.Connection,
    idempotency_key: str,
    request_hash: str,
    payment: asyncpg.Record,
    amount: int,
    currency: str,
    metadata: dict[str, Any],
    faults: PaymentFaults,
) -> asyncpg.Record:
    """Record the refund, pending or succeeded as the faults roll, and hold its amount."""
    pending = roll(faults.pending_rate)
    waiting = "requires_action" if pending and roll(faults.requires_action_rate) else "pending"
    row = await conn.fetchrow(
        "INSERT INTO sandbox.refunds (provider_refund_id, idempotency_key, request_hash,"
        " payment_reference, order_id, amount, currency, status, metadata, settle_at,"
        " settle_to) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
        " CASE WHEN $8 <> 'succeeded' THEN now() + make_interval(secs => $10) END, $11)"
        " RETURNING *",
        _new_id("re"),
        idempotency_key,
        request_hash,
        payment["payment_reference"],
        payment["order_id"],
        amount,
        currency,
        waiting if pending else "succeeded",
        json.dumps(metadata),
        faults.settle_after_ms / 1000,
        records.settles_to(pending, faults),
    )
    await reversals.maybe_schedule(conn, row, faults)
    # Pending refunds hold their amount: a failed settlement gives it back.
    await conn.execute(
        "UPDATE sandbox.payments SET refunded_amount = refunded_amount + $2"
        " WHERE payment_reference = $1",
        payment["payment_reference"],
        amount,
    )
    return row
