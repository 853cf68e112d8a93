"""Eligibility: the self-service answer a storefront shows before a customer submits.

It runs the code the refund itself runs: `resolve_request` (the client's check of the
request against the order, before anything starts), `policy.evaluate` (what the workflow
decides at start, on the same pinned policy text), the order ledger's rule (workflows/ledger:
units already held or refunded by another refund, final-sale value out of reach) and the
over-refund rule the workflow's reservation enforces. So "eligible, auto-approved, 108.00
USD" here is what the refund then does. Pure: the caller supplies the order, what is still
refundable on it, what other refunds hold of it, and the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from workflows.ledger import Claim, Hold, claim, reserve_input
from workflows.models import (
    OrderSnapshot,
    PinnedPolicy,
    RefundRequest,
    ReserveInput,
    ResolvedRefund,
)
from workflows.money import format_minor
from workflows.policy import (
    SELLER_FAULT_REASONS,
    FeeLine,
    Policy,
    RuleOutcome,
    evaluate,
    parse_policy,
)
from workflows.validation import RefundInputError, resolve_request

Outcome = Literal["auto_approved", "needs_review", "not_eligible"]

REQUEST_RULE = "request"
"""The request does not fit the order (unknown line, too many units, ...): refused at once."""
REFUNDABLE_RULE = "refundable"
"""Other refunds already hold too much of the order: refused at once."""
LEDGER_RULE = "ledger"
"""Units asked for are held or refunded by another refund of the order, or an amount is more
than the lines within its reach still have: refused at once."""


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
    held_by: list[str] = []
    """The refunds holding (or having refunded) what this request asks for, when the
    order ledger refuses it."""

    @property
    def refused_at_request(self) -> bool:
        """The refund would be refused before it starts (nothing recorded)."""
        return any(
            r.rule_id in (REQUEST_RULE, REFUNDABLE_RULE, LEDGER_RULE) and not r.passed
            for r in self.rules
        )


def check_eligibility(
    pinned: PinnedPolicy,
    request: RefundRequest,
    order: OrderSnapshot,
    remaining: int,
    now: datetime,
    holds: Sequence[Hold] = (),
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

    return answer_for_resolved(pinned, request, order, resolved, remaining, now, holds)


def answer_for_resolved(
    pinned: PinnedPolicy,
    request: RefundRequest,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
    remaining: int,
    now: datetime,
    holds: Sequence[Hold] = (),
) -> EligibilityAnswer:
    """The answer for a request already resolved against its order (RefundClient.request
    has done that; it need not be done twice)."""
    money = order.currency
    common = _common(pinned, order, remaining)
    policy = parse_policy(pinned.document)
    decision = evaluate(policy, order, resolved, request.reason_code, now)
    within = decision.refund_amount <= remaining
    ledger = _ledger_claim(policy, request, order, resolved, decision.refund_amount, holds)
    rules = [
        *decision.outcomes,
        _ledger_rule(ledger),
        RuleOutcome(
            rule_id=REFUNDABLE_RULE,
            passed=within,
            message=(
                f"Up to {format_minor(max(remaining, 0), money)} of this order is still refundable."
            ),
        ),
    ]
    eligible = decision.eligible and within and ledger.refused_because is None
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
        held_by=ledger.held_by,
        **common,
    )


def ledger_request(
    policy: Policy,
    request: RefundRequest,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
    refund_id: str,
    amount: int,
) -> ReserveInput:
    """The reservation this request makes, as the edge and the workflow build it: the
    refund amount after fees, its lines, and what the pinned policy says of final sale."""
    return reserve_input(
        refund_id,
        order,
        resolved,
        amount,
        request.reason_code,
        final_sale_categories=policy.eligibility.final_sale_categories,
        seller_fault=request.reason_code in SELLER_FAULT_REASONS,
    )


def _ledger_claim(
    policy: Policy,
    request: RefundRequest,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
    refund_amount: int,
    holds: Sequence[Hold],
) -> Claim:
    """What the request would hold of the order's lines, or why not (the refund id does
    not matter here: `holds` are the other refunds' already)."""
    if refund_amount <= 0:
        return Claim()  # nothing would be paid: the policy's own rules say why
    inp = ledger_request(policy, request, order, resolved, "eligibility", refund_amount)
    return claim(inp, holds)


def _ledger_rule(ledger: Claim) -> RuleOutcome:
    return RuleOutcome(
        rule_id=LEDGER_RULE,
        passed=ledger.refused_because is None,
        message=_sentence(
            ledger.refused_because
            or "Nothing asked for is held or refunded by another refund of this order"
        ),
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _common(pinned: PinnedPolicy, order: OrderSnapshot, remaining: int) -> dict[str, Any]:
    """The fields every answer has, eligible or not."""
    return {
        "order_id": order.order_id,
        "currency": order.currency,
        "max_refundable": max(remaining, 0),
        "policy_version": pinned.label,
    }
