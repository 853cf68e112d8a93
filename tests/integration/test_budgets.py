"""Auto-approval budgets on the real stack (policy standard-v3, issue 10 item 3): splitting
a refund into requests below the auto-approve limit, on one order or across orders, gets no
more approved automatically than the budgets allow; concurrent requests cannot each fit what
only one fits; the eligibility answer, the reservation and `refundflow status` say why.

Some tests check what the edge, the store and the eligibility answer decide (the reservation
records whether a refund was auto-approved and why not); others what the refund then does
(waits for a reviewer, its status's policy notes say why, the provider pays only the budget).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest
from temporalio.testing import TimeSkipper

from activities.pg_store import PostgresRefundStore
from client import render
from client.errors import InvalidRefundRequest
from client.refund_client import RefundClient
from client.settings import Settings
from tests.conftest import Sandbox, make_client, unique_key
from tests.integration.helpers import run_cli, wait_for_state
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack
from workflows.eligibility import EligibilityAnswer, ledger_request
from workflows.models import (
    AutoApproveBudget,
    OrderLine,
    OrderSnapshot,
    RefundRequest,
    ReserveInput,
    ResolvedRefund,
    StatusView,
)
from workflows.money import format_minor
from workflows.policy import parse_policy

pytestmark = pytest.mark.stack

# Nothing final-sale: under v3 an amount-only changed_mind request never reaches a gift
# card's value (the order ledger), so the split is replayed on goods it may reach.
JACKET_AND_PEN = [
    {"sku": "JACKET", "quantity": 1, "unit_price": 20000, "category": "general"},
    {"sku": "PEN", "quantity": 1, "unit_price": 100, "category": "general"},
]
SPLIT = (5000, 4999, 4998, 4997, 106)  # the scenario 2: 201.00 in five requests
CONCURRENT = (4000, 4001, 4002, 4003, 4004)
"""Five requests on one order at once: any two fit its 100.00 budget, no three do. (Not five
times 40.00: the same amount for the same reason waits for a reviewer as asked again.)"""


@pytest.fixture(scope="module")
def refunds_v3(
    skipper: TimeSkipper, settings: Settings, http: aiohttp.ClientSession
) -> RefundClient:
    """RefundClient pinned to standard-v3, the first policy with budgets."""
    return make_client(skipper, settings, http, "standard-v3")


def order_budget(order_id: str, used: str) -> str:
    return (
        f"auto-approval budget for order {order_id} is 100.00 USD and {used} of it is used:"
        " a reviewer decides"
    )


def customer_budget(customer: str, used: str) -> str:
    return (
        f"auto-approval budget for customer {customer} is 200.00 USD over 30 days and {used}"
        " of it is used: a reviewer decides"
    )


def note(reason: str) -> str:
    """The reason as the status's policy notes say it (the auto-approve outcome)."""
    return reason[:1].upper() + reason[1:] + " (role support or above)."


def changed_mind(order: dict[str, Any], amount: int, customer: str) -> RefundRequest:
    return make_request(order, amount=amount, reason_code="changed_mind", requested_by=customer)


async def recorded(db: asyncpg.Pool, refund_ids: list[str]) -> list[tuple[bool, str | None]]:
    """(auto_approved, auto_approve_refused) of each refund's reservation, in order."""
    rows = await db.fetch(
        "SELECT refund_id, auto_approved, auto_approve_refused FROM refundflow.reservations"
        " WHERE refund_id = ANY($1::text[])",
        refund_ids,
    )
    found = {r["refund_id"]: (r["auto_approved"], r["auto_approve_refused"]) for r in rows}
    return [found[refund_id] for refund_id in refund_ids]


async def paid(sandbox: Sandbox, order_id: str) -> int:
    return sum(r["amount"] for r in await sandbox.refunds(order_id) if r["status"] != "failed")


@dataclass
class Split:
    order: dict[str, Any]
    customer: str
    requests: list[RefundRequest]
    answers: list[EligibilityAnswer]
    """What eligibility answered right before each request."""
    statuses: list[StatusView]


async def split_five_ways(refunds_v3: RefundClient, sandbox: Sandbox) -> Split:
    """The issue's scenario 2 under v3: five amount-only changed_mind requests on one order,
    each below the auto-approve limit (50.00), together 201.00."""
    customer = unique_key("cust")
    order = await sandbox.order(lines=JACKET_AND_PEN, customer_id=customer)
    split = Split(order, customer, [], [], [])
    for amount in SPLIT:
        request = changed_mind(order, amount, customer)
        split.requests.append(request)
        split.answers.append(await refunds_v3.eligibility(request))
        split.statuses.append(await refunds_v3.request(request))
    return split


# --- per order ------------------------------------------------------------------------------


async def test_splitting_on_one_order_is_auto_approved_only_up_to_the_order_budget(
    refunds_v3: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    split = await split_five_ways(refunds_v3, sandbox)
    order_id = split.order["order_id"]
    withheld = order_budget(order_id, "99.99 USD")
    assert [a.outcome for a in split.answers] == ["auto_approved"] * 2 + ["needs_review"] * 3
    assert [a.auto_approve_refused_because for a in split.answers] == [None] * 2 + [withheld] * 3
    assert split.answers[2].summary.endswith(
        f"The auto-approval budget for order {order_id} is 100.00 USD and 99.99 USD of it is used."
    )
    refund_ids = [s.refund_id for s in split.statuses]
    assert await recorded(db, refund_ids) == [(True, None)] * 2 + [(False, withheld)] * 3

    # What the workflow's own reservation gets back (the edge reserved first: the first
    # answer stands), whatever it asks.
    store = PostgresRefundStore(db)
    policy = parse_policy(refunds_v3.policy.document)
    snapshot = OrderSnapshot(
        order_id=order_id,
        currency="USD",
        lines=[OrderLine.model_validate(line) for line in JACKET_AND_PEN],
        captured_amount=20100,
        payment_reference=split.order["payment_reference"],
    )
    for request, status, asked in zip(split.requests, split.statuses, SPLIT, strict=True):
        resolved = ResolvedRefund(amount=asked, currency="USD")
        again = ledger_request(
            policy, request, snapshot, resolved, status.refund_id, asked, auto_approve=True
        )
        result = await store.reserve(again)
        assert result.reserved
        expected = None if asked in SPLIT[:2] else withheld
        assert result.auto_approve_refused_because == expected

    # Reviewers see the customer's other refunds: four, 199.94 USD, 99.99 USD of it auto.
    history = await refunds_v3.customer_history(refund_ids[-1])
    assert history is not None and history.customer == split.customer
    assert [(t.refunds, t.amount, t.auto_approved) for t in history.totals] == [(4, 19994, 9999)]
    shown = render.status(split.statuses[-1], None, history)
    assert (
        f"  requester  {split.customer}: 4 other refunds in the last 30 days, 199.94 USD"
        " (99.99 USD auto-approved)"
    ) in shown.splitlines()


async def test_beyond_the_order_budget_a_reviewer_decides_and_the_status_says_why(
    refunds_v3: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    split = await split_five_ways(refunds_v3, sandbox)
    order_id = split.order["order_id"]
    withheld = order_budget(order_id, "99.99 USD")
    for auto in split.statuses[:2]:
        await wait_for_state(refunds_v3, auto.refund_id, "completed")
    for waiting in split.statuses[2:]:
        assert (waiting.state.value, waiting.awaiting.value) == ("pending_review", "reviewer")
        assert waiting.approval_by == "support"
        assert note(withheld) in waiting.policy_notes
    assert await paid(sandbox, order_id) == 9999  # 201.00 asked, the budget paid

    # A reviewer approves one: paid, and still not counted as auto-approved.
    third = split.statuses[2].refund_id
    await refunds_v3.approve(third, "alice", role="support")
    await wait_for_state(refunds_v3, third, "completed")
    assert await paid(sandbox, order_id) == 9999 + 4998
    assert await recorded(db, [third]) == [(False, withheld)]


# --- per customer -----------------------------------------------------------------------------


async def spend_customer_budget(
    refunds_v3: RefundClient, sandbox: Sandbox, customer: str
) -> list[StatusView]:
    """Two orders, 50.00 and 49.99 refunded on each: 199.98 of the customer's 200.00 is
    used, and each order's 100.00 nearly. (Not 50.00 twice: the same amount for the same
    reason on one order under another key waits for a reviewer as the same request.)"""
    started = []
    for _ in range(2):
        order = await sandbox.order(lines=JACKET_AND_PEN, customer_id=customer)
        for amount in (5000, 4999):
            started.append(await refunds_v3.request(changed_mind(order, amount, customer)))
    return started


async def test_the_customer_budget_holds_across_orders(
    refunds_v3: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    customer = unique_key("cust")
    spent = await spend_customer_budget(refunds_v3, sandbox, customer)
    assert await recorded(db, [s.refund_id for s in spent]) == [(True, None)] * 4

    # A third order, nothing refunded on it yet: the order's budget would allow 10.00, the
    # customer's does not (the budgets fold case; the id itself is the order's, exactly).
    third = await sandbox.order(lines=JACKET_AND_PEN, customer_id=customer)
    withheld = customer_budget(customer, "199.98 USD")
    # Not under the customer's id in another case: a refund is its order's customer's.
    with pytest.raises(InvalidRefundRequest, match=f"is {customer}'s: a refund on it is for"):
        await refunds_v3.request(changed_mind(third, 1000, customer.upper()))
    ask = changed_mind(third, 1000, customer)
    answer = await refunds_v3.eligibility(ask)
    assert answer.outcome == "needs_review" and answer.auto_approve_refused_because == withheld
    status = await refunds_v3.request(ask)
    assert await recorded(db, [status.refund_id]) == [(False, withheld)]

    # Another customer, on their own order, is not held back by this one's budget.
    theirs = await sandbox.order(lines=JACKET_AND_PEN)
    other = await refunds_v3.request(changed_mind(theirs, 1100, theirs["customer_id"]))
    assert await recorded(db, [other.refund_id]) == [(True, None)]


async def test_beyond_the_customer_budget_a_reviewer_decides(
    refunds_v3: RefundClient, sandbox: Sandbox
) -> None:
    customer = unique_key("cust")
    await spend_customer_budget(refunds_v3, sandbox, customer)
    third = await sandbox.order(lines=JACKET_AND_PEN, customer_id=customer)
    status = await refunds_v3.request(changed_mind(third, 1000, customer))
    assert (status.state.value, status.awaiting.value) == ("pending_review", "reviewer")
    assert note(customer_budget(customer, "199.98 USD")) in status.policy_notes
    assert await paid(sandbox, third["order_id"]) == 0


# --- concurrent requests -------------------------------------------------------------------


def reservation(
    order_id: str, customer: str, budget: AutoApproveBudget, amount: int = 1000
) -> ReserveInput:
    """An auto-approvable 10.00 reservation on an order without lines (the total decides)."""
    return ReserveInput(
        refund_id=unique_key("rf"),
        order_id=order_id,
        amount=amount,
        currency="USD",
        captured_amount=100_000,
        reason_code="changed_mind",
        seller_fault=False,
        requested_by=customer,
        auto_approve=True,
        budget=budget,
    )


async def test_concurrent_reservations_auto_approve_at_most_the_order_budget(
    db: asyncpg.Pool,
) -> None:
    store = PostgresRefundStore(db)
    order_id = unique_key("ord")
    budget = AutoApproveBudget(per_order=10000, per_customer=None)
    # Twenty amounts from 9.81 to 10.00: any ten fit the 100.00, no eleven do. (All alike,
    # the second would wait for a reviewer as the first asked again: second_asks.asked_again.)
    amounts = range(981, 1001)
    asks = [reservation(order_id, unique_key("cust"), budget, amount) for amount in amounts]
    results = await asyncio.gather(*(store.reserve(a) for a in asks))
    assert all(r.reserved for r in results)  # beyond the budget still held, for a reviewer
    assert sum(1 for r in results if r.auto_approve_refused_because is None) == 10
    auto = await db.fetchval(
        "SELECT sum(amount) FROM refundflow.reservations WHERE order_id = $1 AND auto_approved",
        order_id,
    )
    assert 10 * 981 <= auto <= 10000
    # Retried, every reservation gets its first answer again.
    again = await asyncio.gather(*(store.reserve(a) for a in asks))
    assert [r.auto_approve_refused_because for r in again] == [
        r.auto_approve_refused_because for r in results
    ]


async def test_concurrent_reservations_of_one_customer_on_many_orders_stay_within_budget(
    db: asyncpg.Pool,
) -> None:
    """Twenty orders, twenty order locks: only the customer's lock serialises these."""
    store = PostgresRefundStore(db)
    customer = unique_key("cust")
    budget = AutoApproveBudget(per_order=None, per_customer=5000, window_days=30)
    asks = [reservation(unique_key("ord"), customer, budget) for _ in range(20)]
    results = await asyncio.gather(*(store.reserve(a) for a in asks))
    assert all(r.reserved for r in results)
    assert sum(1 for r in results if r.auto_approve_refused_because is None) == 5
    auto = await db.fetchval(
        "SELECT sum(amount) FROM refundflow.reservations WHERE requested_by = $1 AND auto_approved",
        customer,
    )
    assert auto == 5000


async def test_a_released_reservation_no_longer_counts(db: asyncpg.Pool) -> None:
    store = PostgresRefundStore(db)
    order_id, customer = unique_key("ord"), unique_key("cust")
    budget = AutoApproveBudget(per_order=1000, per_customer=None)
    first = reservation(order_id, customer, budget)
    assert (await store.reserve(first)).auto_approve_refused_because is None
    second = await store.reserve(reservation(order_id, customer, budget, 999))
    assert second.auto_approve_refused_because == (
        f"auto-approval budget for order {order_id} is 10.00 USD and 10.00 USD of it is used:"
        " a reviewer decides"
    )
    # As when the first refund is cancelled (order_ledger.follow_refund).
    await db.execute(
        "UPDATE refundflow.reservations SET state = 'released' WHERE refund_id = $1",
        first.refund_id,
    )
    third = await store.reserve(reservation(order_id, customer, budget, 998))
    assert third.reserved and third.auto_approve_refused_because is None


async def test_concurrent_requests_on_one_order_are_auto_approved_up_to_the_budget(
    refunds_v3: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(lines=JACKET_AND_PEN)
    asks = [changed_mind(order, amount, order["customer_id"]) for amount in CONCURRENT]
    started = await asyncio.gather(*(refunds_v3.request(a) for a in asks))
    decided = await recorded(db, [s.refund_id for s in started])
    assert sorted(auto for auto, _ in decided) == [False] * 3 + [True] * 2
    # Under the order's lock the first two fit, whichever they are; the rest meet their sum.
    used = sum(amount for amount, (auto, _) in zip(CONCURRENT, decided, strict=True) if auto)
    withheld = order_budget(order["order_id"], format_minor(used, "USD"))
    assert sorted(str(why) for _, why in decided) == ["None"] * 2 + [withheld] * 3


async def test_concurrent_requests_beyond_the_budget_wait_for_a_reviewer(
    refunds_v3: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(lines=JACKET_AND_PEN)
    asks = [changed_mind(order, amount, order["customer_id"]) for amount in CONCURRENT]
    started = await asyncio.gather(*(refunds_v3.request(a) for a in asks))
    states = sorted(s.state.value for s in started)
    assert states.count("pending_review") == 3
    auto_paid = 0
    for status in started:
        if status.state.value != "pending_review":
            await wait_for_state(refunds_v3, status.refund_id, "completed")
            auto_paid += status.amount
    assert await paid(sandbox, order["order_id"]) == auto_paid > 8000


# --- what staff see -------------------------------------------------------------------------


async def test_status_shows_staff_the_customers_recent_refunds(
    refunds_v3: RefundClient, sandbox: Sandbox, stack: DevStack
) -> None:
    customer = unique_key("cust")
    order = await sandbox.order(lines=JACKET_AND_PEN, customer_id=customer)
    first = await refunds_v3.request(changed_mind(order, 1500, customer))
    second = await refunds_v3.request(changed_mind(order, 2500, customer))
    await wait_for_state(refunds_v3, first.refund_id, "completed")

    code, out, err = await run_cli(stack.env(), "status", second.refund_id, "--json")
    assert code == 0, err
    history = json.loads(out)["customer_history"]
    assert history == {
        "customer": customer,
        "window_days": 30,
        "totals": [{"currency": "USD", "refunds": 1, "amount": 1500, "auto_approved": 1500}],
    }
    code, out, err = await run_cli(stack.env(), "status", second.refund_id)
    assert code == 0, err
    assert (
        f"  requester  {customer}: 1 other refund in the last 30 days, 15.00 USD"
        " (15.00 USD auto-approved)"
    ) in out.splitlines()
