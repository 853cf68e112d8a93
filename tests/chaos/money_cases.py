"""Chaos cases for invariant 9 (money guarded per order, not per request; issue 10): the same
return asked for from three channels at once, and a refund split into many requests below the
auto-approve limit. Every refund a request starts declares its end as usual; a request the
order ledger refuses starts nothing, so the case itself asserts each such refusal (its exact
words, naming the refund that holds what it asked for) and that it left no trace.

The order system answers slowly in both (`orders.latency_ms`): a request looks its order up
before it reaches the ledger, so requests issued together arrive at the order's lock (and the
customer's) together, as when every channel's call is held up by the same slow lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from client.errors import InvalidRefundRequest, RefundActionRefused, RefundflowError
from client.refund_ids import refund_id_for
from tests.chaos.ends import COMPLETED
from tests.chaos.harness import Chaos, settle
from tests.chaos.proofs import wait_for
from workflows.models import StatusView
from workflows.policy import parse_policy
from workflows.states import Awaiting, RefundState

ORDER_LATENCY = {"orders.latency_ms": "300"}
CABLE_PRICE = 1500
TV_AND_CABLES = [
    {"sku": "TV-55", "quantity": 1, "unit_price": 30000, "category": "electronics"},
    {"sku": "CABLE", "quantity": 2, "unit_price": CABLE_PRICE, "category": "general"},
]
CABLES = [{"sku": "CABLE", "quantity": 2}]
# Each channel with its own key and reason, one of them not the seller's fault.
THREE_CHANNELS = (("web", "damaged"), ("app", "defective"), ("support", "changed_mind"))
# Not the seller's fault: the order ledger keeps these off final-sale value.
NO_FAULT = ("changed_mind", "late_delivery", "not_as_described")
Refused = list[tuple[str, InvalidRefundRequest]]


async def _ask_together(
    chaos: Chaos, order: dict[str, Any], asks: list[dict[str, Any]]
) -> tuple[list[StatusView], Refused]:
    """Issue `asks` at once, each declared to complete if it starts a refund: the refunds
    started, and (key, refusal) for those the ledger refused; any other error is raised."""
    answers = await asyncio.gather(
        *(chaos.request(order, expect=COMPLETED, **ask) for ask in asks), return_exceptions=True
    )
    started: list[StatusView] = []
    refused: Refused = []
    for ask, answer in zip(asks, answers, strict=True):
        if isinstance(answer, StatusView):
            started.append(answer)
        elif isinstance(answer, InvalidRefundRequest):
            refused.append((ask["refund_key"], answer))
        else:
            raise answer
    return started, refused


async def _left_no_trace(chaos: Chaos, order_id: str, refused: Refused) -> None:
    """A refused request started nothing: no reservation, no audit entry, no provider call."""
    ids = [refund_id_for(order_id, key) for key, _ in refused]
    traces = await chaos.db.fetchval(
        "SELECT (SELECT count(*) FROM refundflow.reservations WHERE refund_id = ANY($1::text[]))"
        " + (SELECT count(*) FROM refundflow.audit WHERE refund_id = ANY($1::text[]))",
        ids,
    )
    assert traces == 0, f"refused requests {ids} left {traces} rows behind"
    for refund_id in ids:
        calls = await chaos.calls(refund_id)
        assert not calls, f"{refund_id} was refused, yet the provider saw {calls}"


async def _provider_paid(chaos: Chaos, order_id: str) -> int:
    """What the payment provider has refunded on the order (its own records, failures not)."""
    url = f"{chaos.stack.sandbox_url}/payments/v1/refunds"
    async with chaos.http.get(url, params={"order_id": order_id}) as response:
        assert response.status == 200, await response.text()
        refunds = (await response.json())["data"]
    return sum(r["amount"] for r in refunds if r["status"] != "failed")


async def same_return_from_three_channels(chaos: Chaos) -> None:
    """The same two cables from web, app and support at once, each with its own key and
    reason: one refund pays them; the other two are refused naming it, and so is the same
    return asked again from all three once it is paid. The provider pays their value once."""
    await chaos.faults.set_faults(ORDER_LATENCY)
    order = await chaos.order(lines=TV_AND_CABLES)
    order_id = order["order_id"]

    def asks(wave: str) -> list[dict[str, Any]]:
        return [
            {"refund_key": f"{channel}-{wave}-{uuid.uuid4().hex[:8]}", "channel": channel,
             "reason_code": reason, "amount": None, "lines": CABLES}
            for channel, reason in THREE_CHANNELS
        ]  # fmt: skip

    started, refused = await _ask_together(chaos, order, asks("first"))
    got = ([s.refund_id for s in started], [str(error) for _, error in refused])
    assert len(started) == 1 and len(refused) == 2, f"three channels: started, refused {got}"
    winner = started[0].refund_id
    held = f"2 x CABLE of order {order_id} are already held or refunded by {winner}; 0 of 2 left"
    assert [str(error) for _, error in refused] == [held] * 2, refused
    await _left_no_trace(chaos, order_id, refused)
    assert (await settle(chaos, winner)).state is RefundState.COMPLETED

    started, again = await _ask_together(chaos, order, asks("again"))
    got = ([s.refund_id for s in started], [str(error) for _, error in again])
    assert got == ([], [held] * 3), f"asked again once paid: started, refused {got}"
    await _left_no_trace(chaos, order_id, again)
    cables = 2 * CABLE_PRICE
    paid = await _provider_paid(chaos, order_id)
    assert paid == cables, f"the provider paid {paid} for cables worth {cables}"
    ledger = await chaos.refunds.order_ledger(order_id)
    assert ledger is not None, f"order {order_id} has no ledger"
    cable = next(x for x in ledger.lines if x.sku == "CABLE")
    refunded = (cable.refunded_quantity, cable.refunded_amount, cable.refunds)
    assert refunded == (2, cables, [winner]), f"the ledger's cables: {cable}"


async def _split_one_order(
    chaos: Chaos, order: dict[str, Any], customer: str, small: int, burst: int, asks: int
) -> tuple[list[StatusView], Refused]:
    """`asks` amount-only requests of `small` for no-fault reasons: `burst` of them at once,
    then the rest one after another."""
    fields = [
        {"refund_key": f"split-{uuid.uuid4().hex[:12]}", "amount": small,
         "reason_code": NO_FAULT[n % len(NO_FAULT)], "channel": "app", "requested_by": customer}
        for n in range(asks)
    ]  # fmt: skip
    started, refused = await _ask_together(chaos, order, fields[:burst])
    for ask in fields[burst:]:
        more, no = await _ask_together(chaos, order, [ask])
        started, refused = started + more, refused + no
    return started, refused


async def _waiting_for_a_reviewer(chaos: Chaos, refund_id: str) -> None:
    """Held back for a reviewer by a budget (the status says which), nothing paid yet."""

    async def waiting() -> bool:
        status = await chaos.status(refund_id)
        return status.awaiting is Awaiting.REVIEWER

    await wait_for(f"{refund_id} to wait for a reviewer", waiting)
    status = await chaos.status(refund_id)
    assert status.state is RefundState.PENDING_REVIEW, status
    assert any("auto-approval budget" in note.lower() for note in status.policy_notes), status
    assert not await chaos.calls(refund_id), f"{refund_id} waits, yet the provider was called"


async def _auto_approved(chaos: Chaos, refund_ids: list[str]) -> dict[str, tuple[str, int]]:
    """Refund id -> (order, money) of the refunds the ledger records as auto-approved."""
    rows = await chaos.db.fetch(
        "SELECT refund_id, order_id, amount FROM refundflow.reservations"
        " WHERE refund_id = ANY($1::text[]) AND auto_approved AND state <> 'released'",
        refund_ids,
    )
    return {r["refund_id"]: (r["order_id"], r["amount"]) for r in rows}


async def splitting_below_the_auto_approve_limit(chaos: Chaos) -> None:
    """One customer splits refunds into requests below the auto-approve limit, at once and in
    turn, on more orders than the customer budget covers, for more than the orders' non-final
    lines are worth. Auto-approved money stays within both budgets (exactly what they allow);
    the rest waits for a reviewer and is paid once a different person approves it; the
    requests beyond the lines are refused, so no final-sale value is paid for no fault.

    Why approve rather than declare "waiting for a reviewer" as the end: approved, every
    refund of the case goes through the harness's money checks (one provider refund each,
    audit, outbox, lookup before sending), reviewer-approved money is shown not to reach the
    gift card either (the ledger, not the budget, keeps it off), and no run leaves refunds
    open on the stack. The wait itself is asserted before the approval."""
    try:
        await _split_and_check(chaos)
    finally:
        await _approve_what_still_waits(chaos)


async def _approve_what_still_waits(chaos: Chaos) -> None:
    """After a failed check, approve what still waits for a reviewer: else the harness waits
    minutes for each to reach an end and reports that instead of the failure."""
    for refund_id in sorted(chaos.refund_ids):
        with contextlib.suppress(RefundflowError):
            if (await chaos.refunds.status(refund_id)).awaiting is Awaiting.REVIEWER:
                await chaos.refunds.approve(refund_id, "reviewer-cleanup", role="finance")


async def _split_and_check(chaos: Chaos) -> None:
    policy = parse_policy(chaos.refunds.policy.document)
    budgets = policy.budgets
    assert budgets is not None, "the policy in force has no auto-approval budgets"
    per_order, per_customer = budgets.auto_approve_per_order, budgets.auto_approve_per_customer
    assert per_order and per_customer, f"the case needs both budgets: {budgets}"
    small = policy.approval.auto_approve_limit * 3 // 5  # auto-approved on its own
    fits = per_order // small  # auto-approvable requests per order
    final_sale = sorted(policy.eligibility.final_sale_categories)[0]
    lines = [
        {"sku": "JACKET", "quantity": 1, "unit_price": (fits + 1) * small, "category": "general"},
        {"sku": "GIFT", "quantity": 1, "unit_price": 20000, "category": final_sale},
    ]
    await chaos.faults.set_faults(ORDER_LATENCY)
    customer = f"cust-split-{uuid.uuid4().hex[:12]}"  # its budget must not span runs
    orders = [
        await chaos.order(lines=lines, customer_id=customer)
        for _ in range(per_customer // per_order + 1)
    ]
    results = await asyncio.gather(
        *(_split_one_order(chaos, o, customer, small, fits, fits + 2) for o in orders)
    )
    for order, (started, refused) in zip(orders, results, strict=True):
        # The jacket's value in requests starts refunds; one more asks for the gift card's.
        assert (len(started), len(refused)) == (fits + 1, 1), (order["order_id"], refused)
        reason = str(refused[0][1])
        words = f"only 0.00 USD of order {order['order_id']} is still refundable for"
        assert reason.startswith(words) and "final-sale lines (GIFT)" in reason, reason
        await _left_no_trace(chaos, order["order_id"], refused)
    ids = [s.refund_id for started, _ in results for s in started]
    auto = await _auto_approved(chaos, ids)
    # Judged one at a time under the order's and the customer's locks, a request is withheld
    # only when it does not fit: so exactly this many, however the requests interleave.
    allowed = min(per_customer // small, len(orders) * fits)
    assert len(auto) == allowed, f"{len(auto)} auto-approved, the budgets allow {allowed}"
    for order in orders:
        on_order = sum(money for o, money in auto.values() if o == order["order_id"])
        assert on_order <= per_order, f"{order['order_id']}: {on_order} auto-approved"
    await _reviewers_approve(chaos, [i for i in ids if i not in auto], customer)
    for refund_id in ids:
        assert (await settle(chaos, refund_id)).state is RefundState.COMPLETED, refund_id
    assert await _auto_approved(chaos, ids) == auto, "a reviewer's approval counted as auto"
    for order in orders:
        jacket = order["lines"][0]["unit_price"]
        paid = await _provider_paid(chaos, order["order_id"])
        assert paid == jacket, f"{order['order_id']}: paid {paid}, the jacket is worth {jacket}"


async def _reviewers_approve(chaos: Chaos, waiting: list[str], customer: str) -> None:
    """Each refund a budget held back waits for a reviewer, unpaid; its customer may not
    approve it; another person does."""
    for refund_id in waiting:
        await _waiting_for_a_reviewer(chaos, refund_id)
    try:
        await chaos.refunds.approve(waiting[0], customer.upper(), role="finance")
        raise AssertionError(f"{waiting[0]}: approved by its own requester")
    except RefundActionRefused as err:
        assert "requested this refund" in str(err), err
    for refund_id in waiting:
        role = (await chaos.status(refund_id)).approval_by or "support"
        await chaos.refunds.approve(refund_id, f"reviewer-{uuid.uuid4().hex[:8]}", role=role)
