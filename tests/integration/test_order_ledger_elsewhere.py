"""Invariant 9 on the real stack, around the ledger: money the provider paid beyond it, or
paid elsewhere, as reconciliation, the report and the payment guard see it (split from
test_order_ledger.py, which keeps the requests through RefundClient)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import aiohttp
import asyncpg
import pytest

from client import render_findings
from client.errors import RefundActionRefused
from client.refund_client import RefundClient
from client.report import build_report
from client.review_context import review_context
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_order_ledger import TV_AND_CABLES, cables
from tests.integration.test_refund_flow import make_request
from workflows.models import ReconcileInput, StatusView
from workflows.states import Awaiting, RefundState

pytestmark = pytest.mark.stack

# --- the same ledger in reconciliation and the report -------------------------------------


async def test_money_around_the_ledger_is_flagged_and_counted_as_duplicate(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    order = await sandbox.order(lines=TV_AND_CABLES)
    first = await refunds_v2.request(cables(order))
    await wait_for_state(refunds_v2, first.refund_id, "completed")
    before = await build_report(db, since)
    assert before.duplicate_refunds == 0

    # Around refundflow: the same cables refunded again (ledger rows written by hand) and
    # the provider paying for it.
    bypass = unique_key("rf_bypass")
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO refundflow.reservations (refund_id, order_id, amount, state, basis,"
            " reason_code) VALUES ($1, $2, 3000, 'consumed', 'lines', 'defective')",
            bypass,
            order["order_id"],
        )
        await conn.execute(
            "INSERT INTO refundflow.reservation_lines (refund_id, order_id, sku, quantity,"
            " amount) VALUES ($1, $2, 'CABLE', 2, 3000)",
            bypass,
            order["order_id"],
        )
        await conn.execute(
            "INSERT INTO sandbox.refunds (provider_refund_id, idempotency_key, request_hash,"
            " payment_reference, order_id, amount, currency, status, metadata)"
            " SELECT 're_around' || substr(md5(random()::text), 1, 8), 'manual', 'x',"
            " payment_reference, order_id, 4000, currency, 'succeeded', '{}'::jsonb"
            " FROM sandbox.refunds WHERE metadata->>'refund_id' = $1",
            first.refund_id,
        )
    report = await refunds_v2.reconcile(ReconcileInput(grace_seconds=0, heal=False))
    found = await (await refunds_v2.store()).findings(run_id=report.run_id, limit=10_000)
    mine = {f.kind: f.details for f in found if f.order_id == order["order_id"]}
    assert mine["units_refunded_twice"]["refunds"] == [first.refund_id, bypass]
    assert mine["provider_money_above_ledger"]["provider_paid"] == 3000 + 4000
    assert mine["provider_money_above_ledger"]["ledger"] == 6000

    # The report counts the refund that refunded the cables again, and the order the
    # provider paid beyond the ledger for.
    after = await build_report(db, since)
    assert after.duplicate_refunds == 2


async def test_money_paid_around_refundflow_stays_flagged_while_a_refused_refund_holds(
    refunds: RefundClient, sandbox: Sandbox, http: aiohttp.ClientSession, faults: SandboxAdmin
) -> None:
    """A trial: 45.00 of an 80.00 order paid, 10.00 refunded at the provider's dashboard (no
    refund id), then a 35.00 refund the provider refused (only 25.00 left there). Its hold
    made the ledger 80.00, above the 55.00 the provider paid, and the finding vanished,
    though 10.00 had gone out around refundflow. A hold accounts only for what the
    provider paid for its own refund."""
    order = await sandbox.order(amount=8000)
    first = await refunds.request(make_request(order, amount=4500))
    await wait_for_state(refunds, first.refund_id, "completed")
    dashboard = {
        "payment_reference": order["payment_reference"],
        "amount": 1000,
        "currency": "USD",
        "metadata": {},
    }
    headers = {"Idempotency-Key": unique_key("dashboard")}
    async with http.post(
        f"{sandbox.base}/payments/v1/refunds", json=dashboard, headers=headers
    ) as made:
        assert made.status == 201, await made.text()
        dashboard_refund = (await made.json())["id"]
    refused = await refunds.request(make_request(order, amount=3500))
    await eventually(
        lambda: refunds.status(refused.refund_id),
        lambda view: view.awaiting is Awaiting.OPERATOR,
    )
    # No reconciliation has run, so no finding: the workflow asks the provider itself.
    with pytest.raises(RefundActionRefused) as fresh:
        await refunds.operator_paid_elsewhere(refused.refund_id, "omar", "store credit SC-77")
    assert (
        f"order {order['order_id']} captured 80.00 USD; 55.00 USD of it is paid or held for"
        " other refunds, 10.00 USD of that paid or payable by the provider for no refund of"
        " refundflow's (made at its dashboard?); 25.00 USD is left, less than this refund's"
        " 35.00 USD"
    ) in str(fresh.value)
    assert (await refunds.status(refused.refund_id)).awaiting is Awaiting.OPERATOR
    report = await refunds.reconcile(ReconcileInput(grace_seconds=0, heal=False))
    found = await (await refunds.store()).findings(run_id=report.run_id, limit=10_000)
    mine = [f for f in found if f.order_id == order["order_id"]]
    assert [f.kind for f in mine] == ["provider_money_above_ledger"], mine
    assert mine[0].details["provider_paid"] == 5500
    assert (mine[0].details["accounted_for"], mine[0].details["ledger"]) == (4500, 8000)
    shown = render_findings.findings(mine)
    # Trial: "ledger 100.00; accounted_for 0.00; provider_paid 100.00" read as nothing
    # above the ledger; what is not accounted for is said.
    assert "ledger 80.00 USD; unaccounted 10.00 USD; accounted_for 45.00 USD" in shown, shown
    # The refused refund's status, where an operator decides, notes the order's finding.
    context = await review_context(refunds, await refunds.status(refused.refund_id))
    assert [f.kind for f in context.open_findings] == ["provider_money_above_ledger"]
    note = render_findings.open_finding(context.open_findings[0])
    assert f"provider_money_above_ledger for order {order['order_id']}" in note
    assert f"anomalies --order {order['order_id']}" in note
    # Paying the refused refund elsewhere would take the order's payouts to 90.00 of 80.00:
    # refused while the finding stands, unless the operator says that money is not this.
    with pytest.raises(RefundActionRefused) as over:
        await refunds.operator_paid_elsewhere(refused.refund_id, "omar", "store credit SC-77")
    said = str(over.value)
    assert f"the provider has paid 55.00 USD of order {order['order_id']}" in said
    assert "this refund's 35.00 USD elsewhere too makes 90.00 USD of the 80.00 USD" in said
    assert "--despite-findings" in said
    assert (await refunds.status(refused.refund_id)).state is RefundState.REFUNDING
    # The override passes the finding, not the workflow's own count: 90.00 is still refused.
    with pytest.raises(RefundActionRefused) as still:
        await refunds.operator_paid_elsewhere(
            refused.refund_id, "omar", "store credit SC-77", despite_findings=True
        )
    assert "25.00 USD is left, less than this refund's 35.00 USD" in str(still.value)
    # The bank returns the dashboard's 10.00: the finding is stale until the next run, the
    # edge still refuses by it, and the override is what a person uses for that.
    await faults.reverse(dashboard_refund)
    await eventually(lambda: _provider_status(http, sandbox, dashboard_refund), "failed".__eq__)
    with pytest.raises(RefundActionRefused) as stale:
        await refunds.operator_paid_elsewhere(refused.refund_id, "omar", "store credit SC-77")
    assert "the provider has paid 55.00 USD" in str(stale.value)  # the finding's, at the edge
    done = await refunds.operator_paid_elsewhere(
        refused.refund_id, "omar", "store credit SC-77", despite_findings=True
    )
    assert done.state is RefundState.COMPLETED
    assert "recorded despite an open provider_money_above_ledger finding" in (
        done.timeline[-2].reason
    ), done.timeline[-2:]
    # Asked again once closed: the refund says it is closed, not the finding's sums (which
    # counted its own money twice, and told the operator to cancel it: a trial).
    with pytest.raises(RefundActionRefused) as closed:
        await refunds.operator_paid_elsewhere(refused.refund_id, "omar", "store credit SC-77")
    assert "provider has paid" not in str(closed.value)
    # How it closed, so the operator knows nobody needs to act (a trial read a bare "closed").
    assert str(closed.value) == (
        f"refused: refund {refused.refund_id} is closed, completed: nothing is left to do on it"
    )


async def _provider_status(
    http: aiohttp.ClientSession, sandbox: Sandbox, provider_refund_id: str
) -> str:
    """The provider's status of one of its refunds (a reversal lands a moment later)."""
    async with http.get(f"{sandbox.base}/payments/v1/refunds/{provider_refund_id}") as got:
        status: str = (await got.json())["status"]
        return status


async def test_paid_elsewhere_counts_another_refund_paid_both_elsewhere_and_by_the_provider(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    """A review: 100.00 captured; refund Y's 40.00 recorded as paid elsewhere, then paid by
    the provider too (at its dashboard, with Y's id): 80.00 out. A second refused refund's
    45.00 paid elsewhere would make 125.00: the workflow refuses it, with no finding yet."""
    order = await sandbox.order(amount=10000)
    await faults.set_faults({"payment.refuse": "expired_card"})
    refused = []
    for amount in (4000, 4500):  # not the same amount twice: that goes to a reviewer
        started = await refunds.request(make_request(order, amount=amount))
        refused.append(started.refund_id)
        await eventually(
            partial(refunds.status, started.refund_id),
            lambda view: view.awaiting is Awaiting.OPERATOR,
        )
    await faults.clear_faults()
    first, second = refused
    done = await refunds.operator_paid_elsewhere(first, "omar", "store credit SC-1")
    assert done.state is RefundState.COMPLETED
    await sandbox.provider_refund(order, first, 4000)
    with pytest.raises(RefundActionRefused) as over:
        await refunds.operator_paid_elsewhere(second, "omar", "store credit SC-2")
    assert (
        f"order {order['order_id']} captured 100.00 USD; 80.00 USD of it is paid or held for"
        " other refunds; 20.00 USD is left, less than this refund's 45.00 USD"
    ) in str(over.value)
    assert (await refunds.status(second)).awaiting is Awaiting.OPERATOR


async def test_no_provider_payment_takes_an_order_with_money_paid_elsewhere_above_its_capture(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, http: aiohttp.ClientSession
) -> None:
    """A trial: 100.00 captured; 60.00 recorded as paid elsewhere; 40.00 refunded at the
    provider's dashboard (which allowed it: it knew of 0.00 out); then a 40.00 request was
    auto-approved and paid by the provider: 140.00 out. The provider cannot know of money
    paid outside it, so nothing is sent to it: an operator decides. (45.00 here: 60.00
    would go to a reviewer first.)"""
    order = await sandbox.order(amount=10000)
    first = await _refused_then_paid_elsewhere(refunds, faults, order, 4500)
    dashboard = {"payment_reference": order["payment_reference"], "amount": 4000,
                 "currency": "USD", "metadata": {}}  # fmt: skip
    headers = {"Idempotency-Key": unique_key("dashboard")}
    async with http.post(f"{sandbox.base}/payments/v1/refunds", json=dashboard, headers=headers):
        pass
    later = await refunds.request(make_request(order, amount=4000))
    stopped = await eventually(
        partial(refunds.status, later.refund_id), lambda v: v.awaiting is Awaiting.OPERATOR
    )
    assert (stopped.provider_failure or "").startswith(
        f"not sent to the provider: order {order['order_id']} captured 100.00 USD; 85.00 USD of"
        f" it is paid or held for other refunds, of that 45.00 USD paid elsewhere"
        f" ({first.refund_id}) and 40.00 USD paid or payable by the provider, so this refund's"
        " 40.00 USD would make 125.00 USD"
    ), stopped.provider_failure
    provider = await sandbox.refunds(order["order_id"])
    assert [r["amount"] for r in provider if r["status"] != "failed"] == [4000]  # the dashboard's
    # An operator's retry meets the same count: still nothing sent.
    retried = await refunds.operator_retry(later.refund_id, "omar")
    assert (
        retried.awaiting is Awaiting.OPERATOR and len(await sandbox.refunds(order["order_id"])) == 1
    )
    cancelled = await refunds.operator_cancel(later.refund_id, "omar", "paid at the dashboard")
    assert cancelled.state is RefundState.CANCELLED
    # Within the capture it is paid: 45.00 elsewhere, 10.00 at the dashboard, then 40.00.
    roomy = await sandbox.order(amount=10000)
    await _refused_then_paid_elsewhere(refunds, faults, roomy, 4500)
    await sandbox.provider_refund(roomy, "rf_" + "f" * 24, 1000)  # not one of ours
    paid = await refunds.request(make_request(roomy, amount=4000))
    assert (await wait_for_state(refunds, paid.refund_id, "completed")).provider_failure is None


async def _refused_then_paid_elsewhere(
    refunds: RefundClient, faults: SandboxAdmin, order: dict[str, Any], amount: int
) -> StatusView:
    """A refund of `amount` the provider refuses, then recorded as paid elsewhere."""
    await faults.set_faults({"payment.refuse": "expired_card"})
    refused = await refunds.request(make_request(order, amount=amount))
    await eventually(
        partial(refunds.status, refused.refund_id), lambda v: v.awaiting is Awaiting.OPERATOR
    )
    await faults.clear_faults()
    return await refunds.operator_paid_elsewhere(refused.refund_id, "omar", "SEPA TX-3")
