"""Eligibility: the self-service answer a storefront shows before a customer submits.

It runs the code the refund itself runs: `resolve_request` (the client's check of the
request against the order, before anything starts), `policy.evaluate` (what the workflow
decides at start, on the same pinned policy text) and the over-refund rule the workflow's
reservation enforces. So "eligible, auto-approved, 108.00 USD" here is what the refund then
does. Pure: the caller supplies the order, what is still refundable on it, and the time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from workflows.models import OrderSnapshot, PinnedPolicy, RefundRequest, ResolvedRefund
from workflows.money import format_minor
from workflows.policy import FeeLine, RuleOutcome, evaluate, parse_policy
from workflows.validation import RefundInputError, resolve_request

Outcome = Literal["auto_approved", "needs_review", "not_eligible"]

REQUEST_RULE = "request"
"""The request does not fit the order (unknown line, too many units, ...): refused at once."""
REFUNDABLE_RULE = "refundable"
"""Other refunds already hold too much of the order: refused at once."""


class EligibilityAnswer(BaseModel):
    model_config = ConfigDict(frozen=True)

    eligible: bool
    outcome: Outcome
    order_id: str
    currency: str
    requested_amount: int
    """Value of what was asked for (minor units); 0 when the request does not fit the order."""
    fee: int
    fees: list[FeeLine]
    refund_amount: int
    """What the refund would pay: the requested value less fees (0 when not eligible)."""
    max_refundable: int
    """What is still refundable on the order now, after refunds already requested."""
    evidence_required: bool
    auto_approve: bool
    approval_by: str | None
    """The least senior staff role that may approve it, when a reviewer must."""
    policy_version: str
    rules: list[RuleOutcome]
    """Every rule applied, passed or not, with its plain-language reason."""
    summary: str

    @property
    def refused_at_request(self) -> bool:
        """The refund would be refused before it starts (nothing recorded)."""
        return any(
            r.rule_id in (REQUEST_RULE, REFUNDABLE_RULE) and not r.passed for r in self.rules
        )


def check_eligibility(
    pinned: PinnedPolicy,
    request: RefundRequest,
    order: OrderSnapshot,
    remaining: int,
    now: datetime,
) -> EligibilityAnswer:
    common = _common(pinned, order, remaining)
    try:
        resolved = resolve_request(request, order)
    except RefundInputError as err:
        rule = RuleOutcome(rule_id=REQUEST_RULE, passed=False, message=f"{err}.")
        return EligibilityAnswer(
            eligible=False,
            outcome="not_eligible",
            requested_amount=0,
            fee=0,
            fees=[],
            refund_amount=0,
            evidence_required=False,
            auto_approve=False,
            approval_by=None,
            rules=[rule],
            summary=f"Not eligible: {err}.",
            **common,
        )

    return answer_for_resolved(pinned, request, order, resolved, remaining, now)


def answer_for_resolved(
    pinned: PinnedPolicy,
    request: RefundRequest,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
    remaining: int,
    now: datetime,
) -> EligibilityAnswer:
    """The answer for a request already resolved against its order (RefundClient.request
    has done that; it need not be done twice)."""
    money = order.currency
    common = _common(pinned, order, remaining)
    decision = evaluate(parse_policy(pinned.document), order, resolved, request.reason_code, now)
    within = decision.refund_amount <= remaining
    rules = [
        *decision.outcomes,
        RuleOutcome(
            rule_id=REFUNDABLE_RULE,
            passed=within,
            message=(
                f"Up to {format_minor(max(remaining, 0), money)} of this order is still refundable."
            ),
        ),
    ]
    eligible = decision.eligible and within
    outcome: Outcome = (
        "not_eligible"
        if not eligible
        else "auto_approved"
        if decision.auto_approve
        else "needs_review"
    )
    refund = format_minor(decision.refund_amount, money)
    if outcome == "auto_approved":
        summary = f"Eligible: {refund} is refunded automatically, no review needed."
    elif outcome == "needs_review":
        who = f" (role {decision.approval_by} or above)" if decision.approval_by else ""
        summary = f"Eligible: {refund}, once a reviewer{who} approves it."
    else:
        summary = "Not eligible: " + " ".join(r.message for r in rules if not r.passed)
    return EligibilityAnswer(
        eligible=eligible,
        outcome=outcome,
        requested_amount=resolved.amount,
        fee=decision.fee,
        fees=decision.fees,
        refund_amount=decision.refund_amount if eligible else 0,
        evidence_required=decision.evidence_required,
        auto_approve=decision.auto_approve and eligible,
        approval_by=decision.approval_by if eligible else None,
        rules=rules,
        summary=summary,
        **common,
    )


def _common(pinned: PinnedPolicy, order: OrderSnapshot, remaining: int) -> dict[str, Any]:
    """The fields every answer has, eligible or not."""
    return {
        "order_id": order.order_id,
        "currency": order.currency,
        "max_refundable": max(remaining, 0),
        "policy_version": pinned.label,
    }
