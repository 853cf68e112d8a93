"""A reviewer's "approve less" stands: asking again for the declined rest of an order is not
paid by the policy alone (second_asks.cut_by_a_reviewer; a trial: approved 50.00 of 90.00,
then 40.00 asked again under another key was auto-approved and paid, 90.00 in all)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from client.errors import RefundActionRefused
from client.refund_client import RefundClient
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_budgets import note
from tests.integration.test_refund_flow import make_request
from tests.integration.test_reset_after_completion import reset_to_first_task

pytestmark = pytest.mark.stack
CHECKED = "photos of the damage"


async def test_the_rest_a_reviewer_declined_is_not_paid_without_a_reviewer(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    customer = unique_key("cust")
    order = await sandbox.order(amount=9000, customer_id=customer)
    first = await refunds.request(make_request(order, amount=9000, requested_by=customer))
    assert first.awaiting.value == "reviewer"  # above the auto-approval limit
    await refunds.approve(first.refund_id, "alice", amount=5000)
    await wait_for_state(refunds, first.refund_id, "completed")

    # The rest, under another key and for another reason, within the auto-approval limit.
    rest = make_request(order, amount=4000, requested_by=customer, reason_code="changed_mind")
    told = await refunds.eligibility(rest)
    cut = (
        f"refund {first.refund_id} of order {order['order_id']} was approved by a reviewer"
        " for less than it asked: a reviewer decides any further refund of the order"
    )
    assert (told.outcome, told.auto_approve_refused_because) == ("needs_review", cut)
    assert told.summary.endswith(f"approves it. The {cut}."), told.summary
    second = await refunds.request(rest)
    assert (second.state.value, second.awaiting.value) == ("pending_review", "reviewer")
    assert note(cut) in second.policy_notes, second.policy_notes
    # The customer is told what `track` says: a decision due by a date (a trial: the
    # notice said only "received", with no date, for a refund the store sent to review).
    [requested] = await eventually(
        lambda: refunds.events(second.refund_id), lambda told: len(told) == 1
    )
    facts = requested.payload["facts"]
    assert second.eta is not None and facts["eta_kind"] == "review", facts
    assert datetime.fromisoformat(facts["eta"]) == second.eta, facts
    paid = [r for r in await sandbox.refunds(order["order_id"]) if r["status"] == "succeeded"]
    assert sum(r["amount"] for r in paid) == 5000

    # A reviewer may still grant it: the money is free on the order, the decision theirs.
    await refunds.approve(second.refund_id, "alice")
    await wait_for_state(refunds, second.refund_id, "completed")


async def test_after_a_reviewer_cut_a_refund_of_lines_the_other_lines_wait_for_a_reviewer(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    """A trial: a TV refund approved for 12.00 of 255.00, then a cable of the same order and
    an amount were paid by the policy alone. Cut by lines, as by amount: a person decides."""
    lines = [
        {"sku": "TV-55", "quantity": 1, "unit_price": 30000, "category": "electronics"},
        {"sku": "CABLE", "quantity": 2, "unit_price": 1500, "category": "general"},
    ]
    customer = unique_key("cust")
    order = await sandbox.order(lines=lines, customer_id=customer)
    tv = [{"sku": "TV-55", "quantity": 1}]
    first = await refunds.request(make_request(order, amount=None, lines=tv, requested_by=customer))
    assert first.awaiting.value == "reviewer"
    await refunds.approve(first.refund_id, "li", amount=1200, role="lead")
    await wait_for_state(refunds, first.refund_id, "completed")

    cable = [{"sku": "CABLE", "quantity": 1}]
    for asked in (
        make_request(order, amount=None, lines=cable, requested_by=customer),
        make_request(order, amount=1000, requested_by=customer, reason_code="late_delivery"),
    ):
        later = await refunds.request(asked)
        assert (later.state.value, later.awaiting.value) == ("pending_review", "reviewer")
        assert any("approved by a reviewer for less" in n for n in later.policy_notes)
    paid = [r for r in await sandbox.refunds(order["order_id"]) if r["status"] == "succeeded"]
    assert sum(r["amount"] for r in paid) == 1200


async def test_a_cut_stands_while_its_payment_is_still_pending(
    refunds: RefundClient, sandbox: Sandbox, faults: Any
) -> None:
    """A trial: 50.00 of 90.00 approved, the provider's answer pending; 40.00 asked again
    meanwhile was auto-approved and paid. The cut counts from the approval, not the payment."""
    await faults.set_faults({"payment.pending_rate": "1", "payment.settle_after_ms": "60000"})
    customer = unique_key("cust")
    order = await sandbox.order(amount=20000, customer_id=customer)
    first = await refunds.request(make_request(order, amount=9000, requested_by=customer))
    await refunds.approve(first.refund_id, "alice", amount=5000)
    await wait_for_state(refunds, first.refund_id, "refunding")
    rest = make_request(order, amount=4000, requested_by=customer, reason_code="changed_mind")
    assert (await refunds.eligibility(rest)).outcome == "needs_review"
    second = await refunds.request(rest)
    assert (second.state.value, second.awaiting.value) == ("pending_review", "reviewer")
    assert [r["amount"] for r in await sandbox.refunds(order["order_id"])] == [5000]


async def test_the_rest_is_free_on_the_order_from_the_approval_while_the_payment_waits(
    refunds: RefundClient, sandbox: Sandbox, faults: Any
) -> None:
    """A trial: 150.00 asked, 50.00 approved, the provider refusing: while the refund waited
    for an operator, `eligibility` and requests still counted 150.00 held on the order."""
    await faults.set_faults({"payment.refuse": "expired_card"})
    try:
        order = await sandbox.order(amount=20000)
        first = await refunds.request(make_request(order, amount=15000))
        await refunds.approve(first.refund_id, "alice", amount=5000)
        waiting = await eventually(
            lambda: refunds.status(first.refund_id), lambda v: v.awaiting.value == "operator"
        )
        [approved] = [e for e in waiting.timeline if e.event == "approve"]
        assert approved.reason.startswith("approved 50.00 USD (of the 150.00 USD payable)")
    finally:
        await faults.clear_faults()
    told = await refunds.eligibility(make_request(order, amount=15000))
    assert told.outcome == "needs_review", told  # 200.00 - 50.00 leaves room for 150.00
    ledger = await refunds.order_ledger(order["order_id"])
    assert ledger is not None and ledger.held == 5000, ledger
    # Paid later, the hold stays what it pays, and still reads as cut by a reviewer.
    await refunds.operator_retry(first.refund_id, "omar")
    await wait_for_state(refunds, first.refund_id, "completed")
    ledger = await refunds.order_ledger(order["order_id"])
    assert ledger is not None and ledger.refunded == 5000, ledger
    later = await refunds.request(make_request(order, amount=1000, reason_code="changed_mind"))
    assert (later.state.value, later.awaiting.value) == ("pending_review", "reviewer")


async def test_two_approvers_cutting_in_turn_hold_what_the_second_approved(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    """The cut follows each approval (a review's probe): 2000.00 asked, the first of two
    approvers 1500.00, the second 1200.00; the order holds 1200.00 and 1200.00 is paid."""
    order = await sandbox.order(amount=200000)
    first = await refunds.request(make_request(order, amount=200000))
    await refunds.approve(first.refund_id, "fang", amount=150000, role="finance", evidence=CHECKED)
    ledger = await refunds.order_ledger(order["order_id"])
    assert ledger is not None and ledger.held == 150000, ledger
    await refunds.approve(first.refund_id, "mei", amount=120000, role="finance", evidence=CHECKED)
    await wait_for_state(refunds, first.refund_id, "completed")
    ledger = await refunds.order_ledger(order["order_id"])
    assert ledger is not None and (ledger.held, ledger.refunded) == (0, 120000), ledger
    paid = [r["amount"] for r in await sandbox.refunds(order["order_id"])]
    assert paid == [120000]


async def test_a_cut_first_approval_then_a_rejection_frees_the_whole_order(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(amount=200000)
    first = await refunds.request(make_request(order, amount=200000))
    await refunds.approve(first.refund_id, "fang", amount=150000, role="finance", evidence=CHECKED)
    await refunds.reject(first.refund_id, "mei", "not as described after all")
    await wait_for_state(refunds, first.refund_id, "cancelled")
    ledger = await refunds.order_ledger(order["order_id"])
    assert ledger is not None and (ledger.held, ledger.refunded) == (0, 0), ledger


async def test_a_reset_run_approved_again_for_another_amount_records_and_pays_nothing(
    returns_refunds: RefundClient, sandbox: Sandbox
) -> None:
    """A review and a trial: alice approved 40.00 of 100.00 (the hold cut to 40.00, and
    another refund then held the other 60.00); the refund was reset in Temporal to its
    first task and alice approved again, in full. The record took it as her first approval
    (the same event by the same person), every view said 100.00, and 100.00 was paid: 160.00
    out of 100.00 on the order's ledger. Now the approval is refused, as another person's
    is, and nothing of it is written or paid."""
    refunds = returns_refunds
    order = await sandbox.order(amount=10000)
    cut = (await refunds.request(make_request(order, amount=10000))).refund_id
    await refunds.approve(cut, "alice", amount=4000)
    rest = (await refunds.request(make_request(order, amount=6000))).refund_id
    await refunds.approve(rest, "bob")
    await reset_to_first_task(refunds, cut)
    await eventually(
        lambda: refunds.status(cut, live=True), lambda s: s.awaiting.value == "reviewer"
    )
    with pytest.raises(RefundActionRefused, match="refused: nothing was recorded: refund"):
        await refunds.approve(cut, "alice")  # in full this time
    recorded = await refunds.status(cut)
    assert (recorded.state.value, recorded.amount) == ("approved", 4000)
    [approval] = [e for e in await refunds.audit(cut) if e.event == "approve"]
    assert approval.reason.startswith("approved 40.00 USD")
    await refunds.item_received(rest, "warehouse-7")
    await wait_for_state(refunds, rest, "completed")
    assert [r["amount"] for r in await sandbox.refunds(order["order_id"])] == [6000]
    ledger = await refunds.order_ledger(order["order_id"])
    assert ledger is not None and (ledger.held, ledger.refunded) == (4000, 6000), ledger


async def test_a_reset_runs_first_of_two_approvals_for_another_amount_is_not_taken_as_hers(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    """A review: fang's first of two approvals was for 1500.00 of 2000.00; reset, she
    approved 2000.00 and the record took it as her recorded one (the same event by the same
    person); the second approver then approved 2000.00. Now the record keeps both words,
    the clash is escalated, and nothing is paid above the 1500.00 held."""
    order = await sandbox.order(amount=200000)
    cut = (await refunds.request(make_request(order, amount=200000))).refund_id
    await refunds.approve(cut, "fang", amount=150000, role="finance", evidence=CHECKED)
    await reset_to_first_task(refunds, cut)
    await eventually(
        lambda: refunds.status(cut, live=True), lambda s: s.awaiting.value == "reviewer"
    )
    await refunds.approve(cut, "fang", role="finance", evidence=CHECKED)  # in full
    audit = await eventually(
        lambda: refunds.audit(cut), lambda trail: any(e.event == "escalated" for e in trail)
    )
    firsts = [e.reason for e in audit if e.event == "first_approval"]
    assert firsts[0].startswith("approved 1500.00 USD"), firsts
    assert any(f.startswith("approved 2000.00 USD") for f in firsts[1:]), firsts
    assert await sandbox.refunds(order["order_id"]) == []
    ledger = await refunds.order_ledger(order["order_id"])
    assert ledger is not None and (ledger.held, ledger.refunded) == (150000, 0), ledger
