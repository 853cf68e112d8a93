"""Why the store would withhold an auto-approval the policy gives, as `eligibility` tells it
ahead of time (activities/reserving.py `_withheld` decides it under the order's lock, in the
same order): a spent budget, the same request under another key, a reviewer's cut on the
order, money refunded on the order around refundflow."""

from __future__ import annotations

from collections.abc import Sequence

from workflows.allocation import ledger_request
from workflows.budgets import BudgetUse, budget_of, budget_refusal, customer_key
from workflows.ledger import Hold
from workflows.models import OrderSnapshot, RefundRequest, ResolvedRefund
from workflows.money_around import MoneyAround, money_around_refusal
from workflows.policy import Policy, PolicyDecision
from workflows.second_asks import asked_again, cut_by_a_reviewer


def withheld_by_the_store(
    policy: Policy,
    request: RefundRequest,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
    decision: PolicyDecision,
    budget_use: BudgetUse | None,
    holds: Sequence[Hold],
    around: Sequence[MoneyAround],
) -> str | None:
    """Why the store, under the order's lock, would withhold the auto-approval the policy
    gives (None: it would not): a spent budget (given its use), the same request under
    another key (second_asks.asked_again), a reviewer's cut on the order
    (second_asks.cut_by_a_reviewer), or money refunded on it around refundflow
    (workflows/money_around.py). As activities/reserving.py `_withheld` decides it."""
    if not decision.auto_approve:
        return None
    spent = budget_refusal_of(policy, request, order, decision, budget_use)
    if spent is not None:
        return spent
    inp = ledger_request(policy, request, order, resolved, "eligibility", decision.refund_amount)
    return (
        asked_again(inp, holds)
        or cut_by_a_reviewer(inp, holds)
        or money_around_refusal(request.order_id, around)
    )


def budget_refusal_of(
    policy: Policy,
    request: RefundRequest,
    order: OrderSnapshot,
    decision: PolicyDecision,
    budget_use: BudgetUse | None,
) -> str | None:
    """Which auto-approval budget this refund would go beyond, if the policy alone would
    approve it automatically (None: it fits, or budgets are not checked here)."""
    budget = budget_of(policy)
    if budget is None or budget_use is None or not decision.auto_approve:
        return None
    return budget_refusal(
        decision.refund_amount,
        budget,
        budget_use,
        order_id=order.order_id,
        customer=customer_key(request.requested_by),
        currency=order.currency,
    )
