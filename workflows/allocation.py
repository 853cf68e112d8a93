"""The reservation a request makes (`ledger_request`, as the edge and the workflow build it),
and an amount-only refund's split over the order's lines, made once where it is asked: the
ledger's allocation of its value over what each line still has (workflows.ledger), given the
other refunds' holds read a moment ago. Its fees are taken on that split (workflows.rules)
and the store holds exactly that split under the order's lock, or refuses when another
refund took from its lines meanwhile. So a line another refund already holds, such as a
returned TV, bears none of a later amount-only refund's restocking fee (a trial: 4.09 USD
of a 30.00 USD refund was kept back as the TV's fee while the ledger took the 30.00 from the
cables)."""

from __future__ import annotations

from collections.abc import Sequence

from workflows.budgets import budget_of
from workflows.ledger import Hold, claim, reserve_input
from workflows.models import (
    OrderSnapshot,
    RefundRequest,
    ReserveInput,
    ResolvedRefund,
    ValueShare,
)
from workflows.policy import SELLER_FAULT_REASONS, Policy


def allocated(
    policy: Policy,
    request: RefundRequest,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
    holds: Sequence[Hold],
) -> ResolvedRefund:
    """`resolved` with its allocation, for an amount-only request on an order with lines
    that the ledger can take; as it is otherwise (the ledger's refusal then says why)."""
    if resolved.lines or not order.lines or resolved.allocation is not None:
        return resolved
    split = claim(ledger_request(policy, request, order, resolved, "split", resolved.amount), holds)
    if split.refused_because is not None or not split.lines:
        return resolved
    shares = [ValueShare(sku=line.sku, amount=line.amount) for line in split.lines]
    return resolved.model_copy(update={"allocation": shares})


def ledger_request(
    policy: Policy,
    request: RefundRequest,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
    refund_id: str,
    amount: int,
    auto_approve: bool = False,
) -> ReserveInput:
    """The reservation this request makes, as the edge and the workflow build it: the
    refund amount after fees, its lines, what the pinned policy says of final sale, who
    asked, and its auto-approval budgets. `auto_approve`: the policy alone would approve
    it automatically; the store then checks the budgets under the lock and records
    whether it was (ReserveResult.auto_approve_refused_because says why not)."""
    return reserve_input(
        refund_id,
        order,
        resolved,
        amount,
        request.reason_code,
        final_sale_categories=policy.eligibility.final_sale_categories,
        seller_fault=request.reason_code in SELLER_FAULT_REASONS,
        requested_by=request.requested_by,
        auto_approve=auto_approve,
        budget=budget_of(policy),
    )
