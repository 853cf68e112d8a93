"""Chaos harness: a private stack whose processes we kill and restart, and the checks of
the invariants (numbered in ARCHITECTURE.md) that every chaos case must leave intact: 1-6."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from activities.http_adapters import HttpOrderSystem, HttpService
from activities.pg_store import create_pool
from client.connections import connect_temporal
from client.errors import RefundflowError
from client.policy_source import load_policy
from client.refund_client import RefundClient
from client.settings import PROJECT_ROOT, Settings
from sandbox.admin_client import SandboxAdmin
from worker.devstack import DevStack, StackConfig
from workflows.models import RefundRequest, StatusView

SETTLE_TIMEOUT = 120.0
"""How long a refund may take to reach an end (or an operator) under faults."""


@dataclass
class Chaos:
    """Everything a case needs; `orders` and `refund_ids` collect what the run touched."""

    stack: DevStack
    refunds: RefundClient
    returns: RefundClient
    faults: SandboxAdmin
    db: asyncpg.Pool
    http: aiohttp.ClientSession
    orders: dict[str, int] = field(default_factory=dict)
    refund_ids: set[str] = field(default_factory=set)

    def new_run(self) -> None:
        self.orders.clear()
        self.refund_ids.clear()

    async def order(self, **spec: Any) -> dict[str, Any]:
        spec.setdefault("currency", "USD")
        spec.setdefault("delivered_days_ago", 2)
        async with self.http.post(
            f"{self.stack.sandbox_url}/orders/v1/orders", json=spec
        ) as response:
            assert response.status == 201, await response.text()
            order: dict[str, Any] = await response.json()
        self.orders[order["order_id"]] = order["captured_amount"]
        return order

    async def request(
        self, order: dict[str, Any], *, client: RefundClient | None = None, **fields: Any
    ) -> StatusView:
        values: dict[str, Any] = {
            "refund_key": f"chaos-{uuid.uuid4().hex[:12]}",
            "order_id": order["order_id"],
            "amount": order["captured_amount"],
            "reason_code": "damaged",
            "channel": "api",
            "requested_by": "chaos",
        }
        values.update(fields)
        request = RefundRequest.model_validate(values)
        # A service retries a request that failed on a transient error; so do we.
        for attempt in range(30):
            try:
                status = await (client or self.refunds).request(request)
                break
            except RefundflowError as err:
                if "refused" in str(err) or attempt == 29:
                    raise
                await asyncio.sleep(0.5)
        self.refund_ids.add(status.refund_id)
        return status

    async def committed(self, order_id: str) -> int:
        """Provider refunds committed for an order, read from the provider's own books."""
        count: int = await self.db.fetchval(
            "SELECT count(*) FROM sandbox.refunds WHERE order_id = $1", order_id
        )
        return count


async def start_chaos() -> tuple[Chaos, Path]:
    home = Path(tempfile.mkdtemp(prefix="refundflow-chaos-"))
    config = StackConfig.for_tests(home)
    config.time_skipping = False
    config.temporal_persistent = True  # so the server can be restarted mid-refund
    stack = DevStack(config)
    await asyncio.to_thread(stack.start, lambda line: None)
    settings = Settings.from_env(stack.env())
    http = aiohttp.ClientSession()
    temporal = await connect_temporal(settings)
    orders = HttpOrderSystem(HttpService(http, settings.orders_url, "order system"))

    def client(policy: str) -> RefundClient:
        return RefundClient(
            temporal,
            orders,
            task_queue=settings.task_queue,
            policy=load_policy(PROJECT_ROOT / "policies", policy),
            database_url=settings.database_url,
        )

    chaos = Chaos(
        stack=stack,
        refunds=client("standard-v1"),
        returns=client("returns-v1"),
        faults=SandboxAdmin(HttpService(http, stack.sandbox_url, "sandbox")),
        db=await create_pool(settings.require_database_url()),
        http=http,
    )
    return chaos, home


async def stop_chaos(chaos: Chaos, home: Path) -> None:
    await chaos.refunds.close()
    await chaos.returns.close()
    await chaos.db.close()
    await chaos.http.close()
    await asyncio.to_thread(chaos.stack.stop)
    shutil.rmtree(home, ignore_errors=True)


def _settled(status: StatusView) -> bool:
    if status.state.value in ("completed", "cancelled"):
        return True
    # Not finished, but a person has been told, with the reason: allowed by the invariant.
    return (
        status.awaiting.value == "operator"
        and status.escalation_level > 0
        and bool(status.provider_failure)
    )


async def settle(chaos: Chaos, refund_id: str, timeout: float = SETTLE_TIMEOUT) -> StatusView:
    deadline = time.monotonic() + timeout
    last: StatusView | str = "never answered"
    while time.monotonic() < deadline:
        try:
            last = await chaos.refunds.status(refund_id)
            if _settled(last):
                return last
        except RefundflowError as err:  # Temporal restarting, worker being replaced, ...
            last = str(err)
        await asyncio.sleep(0.2)
    raise AssertionError(f"{refund_id} did not settle in {timeout:.0f} s: {last}")


async def violations(chaos: Chaos) -> list[str]:
    """Invariants 1-5 over everything this run touched; an empty list means all held."""
    found: list[str] = []
    statuses: dict[str, StatusView] = {}
    for refund_id in sorted(chaos.refund_ids):
        try:
            statuses[refund_id] = await settle(chaos, refund_id)
        except AssertionError as err:
            found.append(str(err))
    ids = list(chaos.refund_ids)
    ledger = await chaos.db.fetch(
        "SELECT metadata->>'refund_id' AS refund_id, order_id, amount, status"
        " FROM sandbox.refunds WHERE metadata->>'refund_id' = ANY($1::text[])",
        ids,
    )
    for refund_id, status in statuses.items():
        mine = [r for r in ledger if r["refund_id"] == refund_id]
        live = [r for r in mine if r["status"] != "failed"]
        if len(live) > 1:
            found.append(f"{refund_id}: {len(live)} provider refunds (invariant 1)")
        if status.state.value == "completed":
            paid = [r for r in live if r["status"] == "succeeded"]
            if len(paid) != 1 or paid[0]["amount"] != status.amount:
                found.append(f"{refund_id}: completed but provider has {[dict(r) for r in mine]}")
        if status.state.value == "cancelled" and live:
            found.append(f"{refund_id}: cancelled but money moved: {[dict(r) for r in live]}")
        if status.state.value != "completed" and any(r["status"] == "succeeded" for r in live):
            found.append(f"{refund_id}: the provider paid but the refund is {status.state.value}")
        failure = status.provider_failure or ""
        if "amount_exceeds_captured" in failure or "idempotency_key_reused" in failure:
            # The provider's own guard had to stop us: refundflow's guard failed.
            found.append(f"{refund_id}: provider refused a repeat or an over-refund: {failure}")
    # Invariant 2 on both sides: what refundflow holds, and what the provider paid out.
    per_order = {
        "reserved": "SELECT coalesce(sum(amount), 0) FROM refundflow.reservations"
        " WHERE order_id = $1 AND state <> 'released'",
        "refunded": "SELECT coalesce(sum(amount), 0) FROM sandbox.refunds"
        " WHERE order_id = $1 AND status <> 'failed'",
    }
    for order_id, captured in chaos.orders.items():
        for what, query in per_order.items():
            total = await chaos.db.fetchval(query, order_id)
            if total > captured:
                found.append(f"order {order_id}: {what} {total} > captured {captured} (inv. 2)")
    restocked_twice = await chaos.db.fetch(
        "SELECT reference, sku, count(*) AS n FROM sandbox.stock_movements"
        " WHERE reference = ANY($1::text[]) GROUP BY reference, sku HAVING count(*) > 1",
        ids,
    )
    found += [
        f"{r['reference']}: {r['sku']} restocked {r['n']} times (inv. 4)" for r in restocked_twice
    ]
    for refund_id, status in statuses.items():
        expected = list(range(1, len(status.timeline) + 1))
        deadline = time.monotonic() + 15  # the last transition is written just after it happens
        while True:
            seqs = [
                r["seq"]
                for r in await chaos.db.fetch(
                    "SELECT seq FROM refundflow.audit WHERE refund_id = $1 ORDER BY seq", refund_id
                )
            ]
            if seqs == expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        if seqs != expected:
            found.append(
                f"{refund_id}: audit {seqs} vs {len(status.timeline)} transitions (inv. 5)"
            )
        # Invariant 6: each state change is in the outbox exactly once (event ids are unique
        # by construction, so "once" means: no change missing, nothing that is not a change).
        changes = [e.seq for e in status.timeline if e.from_state != e.state]
        events = [
            r["seq"]
            for r in await chaos.db.fetch(
                "SELECT seq FROM refundflow.outbox WHERE refund_id = $1 ORDER BY seq", refund_id
            )
        ]
        if events != changes:
            found.append(f"{refund_id}: outbox events {events} vs state changes {changes} (inv. 6)")
        # ... and every one reaches the customer, whatever crashed or restarted meanwhile.
        deadline = time.monotonic() + 30
        while True:
            undelivered = await chaos.db.fetchval(
                "SELECT count(*) FROM refundflow.deliveries WHERE refund_id = $1"
                " AND subscriber = 'customer-notifications' AND delivered_at IS NULL",
                refund_id,
            )
            if not undelivered or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        if undelivered:
            found.append(f"{refund_id}: {undelivered} notifications never delivered (inv. 6)")
    return found
