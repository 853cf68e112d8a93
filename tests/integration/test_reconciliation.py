"""Reconciliation finds where the provider, inventory and refundflow disagree; heals what is
safe through the workflow, escalates the rest, and keeps the findings."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import asyncpg
import pytest

from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, run_cli, wait_for_state
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack
from workflows.models import ReconcileInput

pytestmark = pytest.mark.stack


def findings_for(report: dict[str, Any], refund_id: str) -> set[tuple[str, str]]:
    return {(f["kind"], f["action"]) for f in report["details"] if f["refund_id"] == refund_id}


async def reconcile_cli(stack: DevStack) -> dict[str, Any]:
    code, out, err = await run_cli(stack.env(), "reconcile", "--grace", "0", "--json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


async def test_provider_paid_but_refund_still_waiting_is_healed_through_the_workflow(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, stack: DevStack
) -> None:
    # The provider settles at once but its webhook is lost; the first poll is 30 s away.
    await faults.set_faults(
        {"payment.pending_rate": "1", "payment.settle_after_ms": "0", "payment.webhooks": "false"}
    )
    order = await sandbox.order(amount=4000)
    status = await refunds.request(make_request(order))
    await eventually(
        lambda: sandbox.refunds(order["order_id"]),
        lambda ledger: bool(ledger) and ledger[0]["status"] == "succeeded",
    )
    report = await reconcile_cli(stack)
    assert findings_for(report, status.refund_id) == {("provider_refunded_not_completed", "healed")}
    done = await wait_for_state(refunds, status.refund_id, "completed")
    assert "settled via reconciliation" in done.timeline[-1].reason
    assert len(await sandbox.refunds(order["order_id"])) == 1

    # Healed: the next run finds nothing more for it.
    again = await refunds.reconcile(ReconcileInput(grace_seconds=0))
    details = await (await refunds.store()).findings(run_id=again.run_id, limit=10_000)
    assert not [f for f in details if f.refund_id == status.refund_id]


async def test_drift_that_cannot_be_healed_is_escalated_and_kept(
    refunds: RefundClient, sandbox: Sandbox, db: asyncpg.Pool, stack: DevStack
) -> None:
    paid_twice = make_request(await sandbox.order(amount=8000), amount=3000)
    never_paid = make_request(await sandbox.order(amount=3000))
    ids = []
    for request in (paid_twice, never_paid):
        status = await refunds.request(request)
        await wait_for_state(refunds, status.refund_id, "completed")
        ids.append(status.refund_id)
    twice_id, never_id = ids
    # Drift in the provider's books: a second refund for one refund, and a refund that the
    # provider now reports as failed although refundflow completed it.
    await db.execute(
        "INSERT INTO sandbox.refunds (provider_refund_id, idempotency_key, request_hash,"
        " payment_reference, order_id, amount, currency, status, metadata)"
        " SELECT 're_drift' || substr(md5(random()::text), 1, 8), 'manual', 'x',"
        " payment_reference, order_id, 1000, currency, 'succeeded', metadata"
        " FROM sandbox.refunds WHERE metadata->>'refund_id' = $1",
        twice_id,
    )
    await db.execute(
        "UPDATE sandbox.refunds SET status = 'failed' WHERE metadata->>'refund_id' = $1",
        never_id,
    )
    report = await reconcile_cli(stack)
    assert findings_for(report, twice_id) == {
        ("duplicate_provider_refunds", "escalated"),
        ("amount_mismatch", "escalated"),
    }
    assert findings_for(report, never_id) == {("completed_without_provider_refund", "escalated")}

    code, out, err = await run_cli(stack.env(), "anomalies", "--kind", "amount_mismatch", "--json")
    assert code == 0, err
    mismatch = [f for f in json.loads(out) if f["refund_id"] == twice_id]
    assert mismatch and mismatch[0]["details"] == {"refund_amount": 3000, "provider_amount": 4000}


async def test_restock_drift_is_found(
    returns_refunds: RefundClient, sandbox: Sandbox, db: asyncpg.Pool, stack: DevStack
) -> None:
    lines = [{"sku": "LAMP-3", "quantity": 1, "unit_price": 2000, "category": "home"}]
    statuses = []
    for _ in range(2):
        order = await sandbox.order(lines=lines)
        status = await returns_refunds.request(
            make_request(order, amount=None, lines=[{"sku": "LAMP-3", "quantity": 1}])
        )
        await eventually(
            partial(returns_refunds.status, status.refund_id),
            lambda s: s.awaiting.value == "customer",
        )
        await returns_refunds.item_received(status.refund_id)
        await wait_for_state(returns_refunds, status.refund_id, "completed")
        statuses.append(status.refund_id)
    lost, doubled = statuses
    await db.execute("DELETE FROM sandbox.stock_movements WHERE reference = $1", lost)
    await db.execute(
        "INSERT INTO sandbox.stock_movements (movement_id, idempotency_key, request_hash, sku,"
        " quantity, reference) VALUES ('mv_drift', 'manual-key', 'x', 'LAMP-3', 1, $1)",
        doubled,
    )
    report = await reconcile_cli(stack)
    assert findings_for(report, lost) == {("restock_missing", "escalated")}
    assert findings_for(report, doubled) == {("restock_duplicated", "escalated")}
