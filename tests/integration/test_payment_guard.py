"""An order's capture against money paid elsewhere, on the real stack: the payment guard
(activities/order_payouts.py) sends no provider refund that would take the order above it,
whatever state the refund paid elsewhere is in (its main cases, refused, retried, cancelled
and paid within the capture, are in test_order_ledger.py); and what reconciliation says when
money made around refundflow did take an order above it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial

import aiohttp
import asyncpg

from activities.http_adapters import HttpPaymentProvider, HttpService
from activities.order_ledger import money_around
from activities.order_payouts import GuardedPaymentProvider, PaymentGuard
from activities.pg_store import PostgresRefundStore
from client import render_findings
from client.refund_client import RefundClient
from client.report import build_report
from client.settings import Settings
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_audit_store import batch
from tests.integration.test_order_ledger_elsewhere import _refused_then_paid_elsewhere
from tests.integration.test_order_ledger_store import reservation
from tests.integration.test_refund_flow import make_request
from workflows.models import IssueRefundInput, ReconcileInput, RefundLineRequest
from workflows.states import Awaiting, RefundState


async def test_money_paid_elsewhere_counts_while_its_refund_still_restocks(
    refunds: RefundClient,
    returns_refunds: RefundClient,
    sandbox: Sandbox,
    faults: SandboxAdmin,
    http: aiohttp.ClientSession,
) -> None:
    """A review of the guard: it counted money paid elsewhere only on completed refunds. A
    returned item's refund paid elsewhere stays `refunding` while the warehouse is down
    (its restock retries until it answers), and meanwhile its 45.00 read as nothing paid: a
    40.00 refund went to the provider on top of 40.00 paid at its dashboard, 125.00 out of
    100.00."""
    order = await sandbox.order(
        lines=[{"sku": "LAMP", "unit_price": 4500}, {"sku": "DESK", "unit_price": 5500}]
    )
    lamp = [RefundLineRequest(sku="LAMP", quantity=1)]
    first = await returns_refunds.request(make_request(order, amount=None, lines=lamp))
    await eventually(
        partial(refunds.status, first.refund_id), lambda v: v.awaiting is Awaiting.CUSTOMER
    )
    await faults.set_faults({"payment.refuse": "expired_card"})
    await returns_refunds.item_received(first.refund_id, "warehouse-7")
    await eventually(
        partial(refunds.status, first.refund_id), lambda v: v.awaiting is Awaiting.OPERATOR
    )
    await faults.clear_faults()
    # The warehouse is down for this refund's restock (and up for reconciliation's reads).
    await faults.set_faults({"inventory.fail_first_calls": "100"})
    try:
        await refunds.operator_paid_elsewhere(first.refund_id, "omar", "SEPA TX-9")
        dashboard = {"payment_reference": order["payment_reference"], "amount": 4000,
                     "currency": "USD", "metadata": {}}  # fmt: skip
        headers = {"Idempotency-Key": unique_key("dashboard")}
        async with http.post(
            f"{sandbox.base}/payments/v1/refunds", json=dashboard, headers=headers
        ) as made:
            assert made.status in (200, 201), await made.text()
        later = await refunds.request(make_request(order, amount=4000))
        stopped = await eventually(
            partial(refunds.status, later.refund_id), lambda v: v.awaiting is Awaiting.OPERATOR
        )
        # refundflow's guard refused, not the provider (it never saw this refund).
        [escalated] = [e for e in stopped.timeline if e.event == "escalated"]
        assert escalated.actor == "payment-guard", escalated
        restocking = await refunds.status(first.refund_id)
        [refused] = [e for e in restocking.timeline if e.event == "escalated"]
        assert refused.actor == "payment-provider", refused  # expired_card: the provider
        assert restocking.state is RefundState.REFUNDING, restocking  # still restocking
        assert (stopped.provider_failure or "").startswith(
            f"not sent to the provider: order {order['order_id']} captured 100.00 USD; 85.00"
            f" USD of it is paid or held for other refunds, of that 45.00 USD paid elsewhere"
            f" ({first.refund_id})"
        ), stopped.provider_failure
        provider = await sandbox.refunds(order["order_id"])
        assert [r["amount"] for r in provider if r["status"] != "failed"] == [4000]
        # Paid by the provider too (someone at its dashboard, under its id): reconciliation
        # calls that paid twice, not a refund to heal as paid (the workflow is past paying).
        await sandbox.provider_refund(order, first.refund_id, 4500)
        report = await refunds.reconcile(ReconcileInput(grace_seconds=0))
        found = await (await refunds.store()).findings(run_id=report.run_id, limit=10_000)
        kinds = {(f.kind, f.action) for f in found if f.refund_id == first.refund_id}
        assert kinds == {("paid_elsewhere_and_by_provider", "escalated")}, found
    finally:
        await faults.clear_faults()
    # The warehouse back, the refund paid elsewhere finishes restocking and completes.
    done = await wait_for_state(refunds, first.refund_id, "completed")
    assert done.facts is not None and done.facts.paid_elsewhere, done


async def test_an_order_paid_above_its_capture_is_found_with_what_went_out(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, db: asyncpg.Pool
) -> None:
    """A trial's order had 140.00 out of 100.00 and reconciliation said only "ledger
    100.00; accounted_for 40.00; provider_paid 80.00". Here 45.00 is paid elsewhere, then
    60.00 at the provider's dashboard (the provider allows it: it knows of nothing out):
    105.00 out of 100.00, found as such, escalated, and counted as a duplicate."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    order = await sandbox.order(amount=10000)
    refused = await _refused_then_paid_elsewhere(refunds, faults, order, 4500)
    dashboard = await sandbox.provider_refund(order, "rf_" + "e" * 24, 6000)  # not one of ours
    report = await refunds.reconcile(ReconcileInput(grace_seconds=0))
    found = await (await refunds.store()).findings(run_id=report.run_id, limit=10_000)
    above = [f for f in found if f.order_id == order["order_id"] and f.kind == "paid_above_capture"]
    assert len(above) == 1 and above[0].action == "escalated", found
    assert above[0].details == {
        "captured": 10000, "out": 10500, "provider_paid": 6000, "paid_elsewhere": 4500,
        "paid_elsewhere_refunds": [refused.refund_id], "currency": "USD",
        "provider_refunds": [dashboard["id"]],
    }  # fmt: skip
    shown = render_findings.findings(above)
    assert "out 105.00 USD; captured 100.00 USD; provider_paid 60.00 USD;" in shown, shown
    assert f"paid_elsewhere_refunds {refused.refund_id}" in shown
    assert f"paid_elsewhere 45.00 USD; provider_refunds {dashboard['id']}" in shown, shown
    # `anomalies --refund` of the refund paid elsewhere lists the order's finding naming it.
    named = await (await refunds.store()).findings(refund_id=refused.refund_id, open_only=True)
    assert "paid_above_capture" in {f.kind for f in named}, named
    # Within the capture nothing is found: 45.00 elsewhere and 55.00 at the dashboard.
    roomy = await sandbox.order(amount=10000)
    await _refused_then_paid_elsewhere(refunds, faults, roomy, 4500)
    await sandbox.provider_refund(roomy, "rf_" + "d" * 24, 5500)
    report = await refunds.reconcile(ReconcileInput(grace_seconds=0, heal=False))
    found = await (await refunds.store()).findings(run_id=report.run_id, limit=10_000)
    assert not [
        f for f in found if f.kind == "paid_above_capture" and f.order_id == roomy["order_id"]
    ]
    # The report counts each order once: its dashboard money is above refundflow's ledger.
    # The first order's money out above its capture is the same money, not counted again
    # (a trial read "DUPLICATE REFUNDS: 2" for one order).
    counted = await build_report(db, since)
    assert counted.duplicate_refunds == 2 and counted.duplicate_orders == sorted(
        [order["order_id"], roomy["order_id"]]
    ), counted


async def test_money_refunded_around_refundflow_sends_the_next_refund_to_a_reviewer(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    """The information gap the mission names: 30.00 refunded at the provider's dashboard,
    whose items refundflow cannot know. Once reconciliation has found it, a request the
    policy would approve alone waits for a reviewer, who is told why; eligibility says
    the same ahead of time. Before any run has found it, the policy alone decides.
    (Reconciliation knows the orders refundflow has refunded: one refund first.)"""
    order = await sandbox.order(amount=10000)
    first = await refunds.request(make_request(order, amount=1000))
    await wait_for_state(refunds, first.refund_id, "completed")
    await sandbox.provider_refund(order, "rf_" + "c" * 24, 3000)  # not one of ours
    before = await refunds.eligibility(make_request(order, amount=2000))
    assert before.outcome == "auto_approved", before
    await refunds.reconcile(ReconcileInput(grace_seconds=0, heal=False))
    asked = make_request(order, amount=2000)
    told = await refunds.eligibility(asked)
    assert told.outcome == "needs_review", told
    said = (
        f"order {order['order_id']} had 30.00 USD refunded by the payment provider that"
        " refundflow's refunds do not account for (at its dashboard?)"
    )
    assert said in (told.auto_approve_refused_because or ""), told
    waiting = await eventually(
        partial(refunds.status, (await refunds.request(asked)).refund_id),
        lambda v: v.awaiting is not Awaiting.NOTHING,
    )
    assert waiting.awaiting is Awaiting.REVIEWER and waiting.state is RefundState.PENDING_REVIEW
    # The staff's policy notes say it (as a sentence: "Order …").
    assert any(said[1:] in note for note in waiting.policy_notes), waiting.policy_notes
    paid = sorted(r["amount"] for r in await sandbox.refunds(order["order_id"]))
    assert paid == [1000, 3000]  # nothing paid without the reviewer


async def test_a_finding_recorded_before_its_details_named_currency_and_cover_still_reads(
    db: asyncpg.Pool,
) -> None:
    """Findings of money above the ledger written before a056248 carry only `provider_paid`
    and `ledger`. Every hold on their order reads them until the next run: read as null,
    they failed the hold (and so the refund's start) instead of sending it to a reviewer."""
    order_id, run_id = unique_key("ord_old"), unique_key("run_old")
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:  # rolled back: other tests' reconciliation runs stay the newest
            await conn.execute(
                "INSERT INTO refundflow.order_ledger VALUES ($1, 'EUR', 5000)", order_id
            )
            await conn.execute(
                "INSERT INTO refundflow.reconciliation_runs VALUES ($1, now(), now(), 0, 1)",
                run_id,
            )
            await conn.execute(
                "INSERT INTO refundflow.findings (run_id, kind, order_id, details, action)"
                " VALUES ($1, 'provider_money_above_ledger', $2, $3, 'escalated')",
                run_id,
                order_id,
                json.dumps({"provider_paid": 3000, "ledger": 1000}),
            )
            [around] = await money_around(conn, order_id)
        finally:
            await tx.rollback()
    assert (around.kind, around.beyond, around.currency) == (
        "provider_money_above_ledger",
        2000,
        "EUR",
    )


async def test_no_payment_above_what_its_refund_holds_is_sent(
    db: asyncpg.Pool, sandbox: Sandbox, settings: Settings
) -> None:
    """Belt and braces under the audit's check of a reset run's approval (test_reviewer_cut):
    a payment is never more than its refund holds on the order, and never made once its
    hold is released; every other refund of the order was decided against that hold."""
    store = PostgresRefundStore(db)
    provider = HttpPaymentProvider(
        HttpService(sandbox.http, settings.payment_provider_url, "payment provider")
    )
    guard = PaymentGuard(db, provider)

    async def own_hold_refusal(pay: IssueRefundInput) -> str | None:
        return (await guard.own_record(pay)).beyond_its_hold(pay)

    held = reservation(unique_key("ord"))  # 30.00 held
    assert (await store.reserve(held)).reserved

    def paying(amount: int) -> IssueRefundInput:
        return IssueRefundInput(
            refund_id=held.refund_id, order_id=held.order_id, payment_reference="pay_1",
            amount=amount, currency="USD", idempotency_key=f"{held.refund_id}:refund",
        )  # fmt: skip

    assert await own_hold_refusal(paying(3000)) is None
    above = await own_hold_refusal(paying(3001))
    assert above is not None and above.startswith(
        f"not sent to the provider: refund {held.refund_id} holds 30.00 USD of order"
        f" {held.order_id}, not the 30.01 USD it would pay"
    ), above
    await db.execute(
        "UPDATE refundflow.reservations SET state = 'released' WHERE refund_id = $1",
        held.refund_id,
    )
    released = await own_hold_refusal(paying(3000))
    assert released is not None and "holds nothing of order" in released, released
    not_held = paying(3000).model_copy(update={"refund_id": unique_key("rf")})
    assert await own_hold_refusal(not_held) is None  # held before reservations were kept


async def test_a_run_behind_its_record_finds_the_records_payment_before_paying(
    db: asyncpg.Pool, sandbox: Sandbox, settings: Settings
) -> None:
    """A review: a run reset to its first task asks for its first attempt (key `…:refund`)
    while its record's later attempt (an operator's retry, key `…:refund:2`) is with the
    provider. On the durable path a first attempt does not look first, and the provider, not
    knowing the key, would pay beside it. A record past the run makes the guard look first:
    the record's payment is found and answered, nothing else is sent."""
    order = await sandbox.order(amount=9000)
    refund_id = unique_key("rf")
    records_payment = await sandbox.provider_refund(order, refund_id, 3000)
    record = batch(refund_id, [1, 2, 3, 4, 5], RefundState.REFUNDING)
    with_provider = record.projection.model_copy(update={"awaiting": Awaiting.PAYMENT_PROVIDER})
    await PostgresRefundStore(db).record_transitions(
        record.model_copy(update={"projection": with_provider})
    )
    provider = HttpPaymentProvider(
        HttpService(sandbox.http, settings.payment_provider_url, "payment provider")
    )
    paying = GuardedPaymentProvider(provider, PaymentGuard(db, provider))
    behind = IssueRefundInput(
        refund_id=refund_id, order_id=order["order_id"],
        payment_reference=order["payment_reference"], amount=3000, currency="USD",
        idempotency_key=f"{refund_id}:refund", recorded_through=3,
    )  # fmt: skip
    answered = await paying.refund(behind)
    assert answered.provider_refund_id == records_payment["id"]
    assert [r["id"] for r in await sandbox.refunds(order["order_id"])] == [records_payment["id"]]
