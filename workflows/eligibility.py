"""Eligibility: the self-service answer a storefront shows before a customer submits.

It runs the code the refund itself runs: `resolve_request` (the client's check of the
request against the order, before anything starts), `policy.evaluate` (what the workflow
decides at start, on the same pinned policy text), the order ledger's rule (workflows/ledger:
units already held or refunded by another refund, final-sale value out of reach) and the
over-refund rule the workflow's reservation enforces. So "eligible, auto-approved, 108.00
USD" here is what the refund then does. Pure: the caller supplies the order, what is still
refundable on it, what other refunds hold of it, the auto-approved money already counted
against the policy's budgets (workflows/budgets), and the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from workflows.allocation import allocated
from workflows.allocation import ledger_request as ledger_request
from workflows.budgets import (
    BudgetUse,
    withhold_auto_approval,
)
from workflows.ledger import Claim, Hold, claim, reach, told_with_holds
from workflows.models import (
    OrderSnapshot,
    PinnedPolicy,
    RefundRequest,
    ResolvedRefund,
)
from workflows.money import format_minor
from workflows.money_around import MoneyAround
from workflows.policy import (
    FeeLine,
    Policy,
    PolicyDecision,
    RuleOutcome,
    evaluate,
    policy_for,
)
from workflows.rules import FEE_RULE
from workflows.validation import RefundInputError, resolve_request
from workflows.withheld import withheld_by_the_store

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
    """Kept back, per line. None is named for an amount the order's lines cannot take (not
    eligible): which lines would bear a fee is then unknown."""
    refund_amount: int
    """What the refund would pay: the requested value less fees (0 when not eligible)."""
    max_refundable: int
    """What a request like this one could still get on the order now: the order total less
    what other refunds hold, and, on an order with lines, no more than they still have
    (units refunded for less than their value count whole; for an amount-only request not
    the seller's fault, no final-sale lines). The figure the `refundable` rule states."""
    evidence_required: bool
    auto_approve: bool
    approval_by: str | None
    """The least senior staff role that may approve it, when a reviewer must."""
    policy_version: str
    rules: list[RuleOutcome]
    """Every rule applied, passed or not, with its plain-language reason."""
    summary: str
    item_return_days: int | None = None
    """For a policy that pays once the returned item is back: the days the customer has to
    send it after the approval (the summary says so too)."""
    held_by: list[str] = []
    """The refunds holding (or having refunded) what this request asks for, when the
    order ledger refuses it."""
    auto_approve_refused_because: str | None = None
    """The auto-approval budget that is used up, when the policy alone would approve this
    refund automatically: it waits for a reviewer instead (outcome needs_review)."""
    two_approvers: bool = False
    """Two different reviewers must approve it (four eyes), as the policy says for the amount."""
    already_made: str | None = None
    """The refund this very request (same order and key) already made: `request` answers
    with it, whatever became of it. The answer above leaves out that refund's own hold,
    unless it was paid: then it is for asking again (client.edge.judge_eligibility)."""
    already_made_state: str | None = None
    """That refund's state when asked (pending_review, ..., completed, cancelled)."""

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
    budget_use: BudgetUse | None = None,
    *,
    around: Sequence[MoneyAround] = (),
) -> EligibilityAnswer:
    """The answer for `request` as it stands now; with `budget_use`, the auto-approved money
    already counted against the policy's budgets (None: budgets are not checked); `around`:
    open findings of money refunded on the order around refundflow."""
    common = _common(pinned, order, remaining)
    try:
        resolved = resolve_request(request, order)
    except RefundInputError as err:
        said = told_with_holds(err, holds)
        rule = RuleOutcome(rule_id=REQUEST_RULE, passed=False, message=f"{said}.")
        common["max_refundable"] = _reach_by_amount(pinned, request, order, remaining, holds)
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
            summary=f"Not eligible: {said}.",
            **common,
        )

    resolved = allocated(
        policy_for(pinned.document, order.currency), request, order, resolved, holds
    )
    return answer_for_resolved(
        pinned, request, order, resolved, remaining, now, holds, budget_use, around=around
    )


def answer_for_resolved(
    pinned: PinnedPolicy,
    request: RefundRequest,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
    remaining: int,
    now: datetime,
    holds: Sequence[Hold] = (),
    budget_use: BudgetUse | None = None,
    *,
    around: Sequence[MoneyAround] | None = None,
) -> EligibilityAnswer:
    """The answer for a request already resolved against its order (RefundClient.request
    has done that; it need not be done twice). Without `around` the auto-approval is the
    policy's alone (the edge leaves withholding it to the store, under the lock); with it,
    the answer says what the store would (`_withheld`)."""
    money, common = order.currency, _common(pinned, order, remaining)
    policy = policy_for(pinned.document, order.currency)
    decision = evaluate(policy, order, resolved, request.reason_code, now)
    withheld = (
        withheld_by_the_store(policy, request, order, resolved, decision, budget_use, holds, around)
        if around is not None
        else None
    )
    if withheld is not None:
        decision = withhold_auto_approval(policy, decision, withheld, money)
    within = decision.refund_amount <= remaining
    ledger = _ledger_claim(policy, request, order, resolved, decision.refund_amount, holds)
    refundable, reachable_now = _refundable_rule(
        policy, request, order, resolved, remaining, holds, within, ledger
    )
    common["max_refundable"] = reachable_now
    eligible = decision.eligible and within and ledger.refused_because is None
    # An amount more than the lines have left has no split: its fee would be guessed on the
    # whole order (a trial saw a fee on a TV already refunded), so none is named.
    unsplit = not eligible and not resolved.lines and bool(order.lines) and not resolved.allocation
    told = [o for o in decision.outcomes if not (unsplit and o.rule_id == FEE_RULE)]
    rules = [*told, _ledger_rule(ledger, by_lines=bool(resolved.lines)), refundable]
    outcome = _outcome(eligible, decision.auto_approve)
    return_days = _return_days(policy, request.reason_code) if eligible else None
    said = _summary(outcome, decision, rules, money, withheld if eligible else None, return_days)
    return EligibilityAnswer(
        eligible=eligible,
        outcome=outcome,
        requested_amount=resolved.amount,
        fee=0 if unsplit else decision.fee,
        fees=[] if unsplit else decision.fees,
        refund_amount=decision.refund_amount if eligible else 0,
        evidence_required=decision.evidence_required,
        auto_approve=decision.auto_approve and eligible,
        approval_by=decision.approval_by if eligible else None,
        two_approvers=decision.four_eyes and eligible,
        rules=rules,
        summary=said + item_first(return_days),
        item_return_days=return_days,
        held_by=ledger.held_by,
        auto_approve_refused_because=withheld if eligible else None,
        **common,
    )


def _outcome(eligible: bool, auto_approve: bool) -> Outcome:
    if not eligible:
        return "not_eligible"
    return "auto_approved" if auto_approve else "needs_review"


def _return_days(policy: Policy, reason: str) -> int | None:
    if not policy.refund.awaits_item(reason):
        return None
    return policy.refund.item_return_window_days


def item_first(return_days: int | None) -> str:
    """A policy that pays once the returned item is back says so up front: a trial's
    storefront read "refunded automatically, no review needed", then the refund asked the
    customer to send the item back within 14 days."""
    if return_days is None:
        return ""
    return (
        " The money is paid once the returned item reaches us: send it within"
        f" {return_days} days of the approval."
    )


def _summary(
    outcome: Outcome,
    decision: PolicyDecision,
    rules: list[RuleOutcome],
    money: str,
    budget_says: str | None,
    return_days: int | None = None,
) -> str:
    """The answer in one sentence (what the storefront shows first). `return_days`: paid once
    the returned item is back, so not "refunded" automatically (a review)."""
    refund = format_minor(decision.refund_amount, money)
    if outcome == "auto_approved" and return_days:
        return f"Eligible: {refund} is approved automatically, no review needed."
    if outcome == "auto_approved":
        return f"Eligible: {refund} is refunded automatically, no review needed."
    if outcome == "needs_review":
        who = f" (role {decision.approval_by} or above)" if decision.approval_by else ""
        why = f" The {budget_says.removesuffix(': a reviewer decides')}." if budget_says else ""
        if decision.four_eyes:
            return f"Eligible: {refund}, once two different reviewers{who} approve it.{why}"
        return f"Eligible: {refund}, once a reviewer{who} approves it.{why}"
    failed = {r.rule_id: r.message for r in rules if not r.passed}
    if LEDGER_RULE in failed:
        failed.pop(REFUNDABLE_RULE, None)  # the ledger's refusal names the same limit, exactly
    return "Not eligible: " + " ".join(failed.values())


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


def _refundable_rule(
    policy: Policy,
    request: RefundRequest,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
    remaining: int,
    holds: Sequence[Hold],
    within: bool,
    ledger: Claim,
) -> tuple[RuleOutcome, int]:
    """One statement of what can still be refunded now and why, with that figure: the order
    total less what other refunds hold, and for an amount-only request what its reason may
    reach (final-sale lines only when the seller is at fault), so no second, larger figure
    contradicts it. Failed when the refund is more than the order has left, or when the
    ledger refuses a request that its reason's reach binds."""
    money = order.currency
    inp = ledger_request(policy, request, order, resolved, "eligibility", 1)
    reachable, excluded = reach(inp, holds)
    now = max(min(remaining, reachable), 0)
    why = []
    if excluded and reachable < remaining:
        why.append(
            f"for {request.reason_code}, final-sale lines ({', '.join(excluded)}) are refunded"
            " only when the seller is at fault"
        )
    if reachable < remaining and not excluded:
        why.append(
            "units held or refunded for less than their value (a fee kept back, a lower"
            " amount approved) count whole"
        )
    held = order.captured_amount - remaining
    if held > 0:
        holders = sorted({h.refund_id for h in holds if h.amount > 0})
        by = f" ({', '.join(holders)})" if holders else ""
        why.append(f"other refunds hold or have refunded {format_minor(held, money)}{by}")
    if not why:
        why.append("nothing of it is held or refunded yet")
    paid = (
        f" ({format_minor(order.captured_amount, money)} paid)"
        if now != order.captured_amount
        else ""
    )
    return RuleOutcome(
        rule_id=REFUNDABLE_RULE,
        # A line request the ledger refuses is refused for its units, which the ledger rule
        # says: not a second time here.
        passed=within
        and (ledger.refused_because is None or reachable >= remaining or bool(inp.lines)),
        message=f"{format_minor(now, money)} of this order{paid} can still be refunded now:"
        f" {'; '.join(why)}.",
    ), now


def _reach_by_amount(
    pinned: PinnedPolicy,
    request: RefundRequest,
    order: OrderSnapshot,
    remaining: int,
    holds: Sequence[Hold],
) -> int:
    """For a request that does not fit its order (no such line, too much): what a request
    for an amount, for the same reason, could still get, as an answer that fits says it.
    The money left is not it when a unit refunded for less than its value counts whole."""
    probe = request.model_copy(update={"amount": 1, "lines": None})
    try:
        resolved = resolve_request(probe, order)
    except RefundInputError:  # another currency, say: the order's money left is all to say
        return max(remaining, 0)
    policy = policy_for(pinned.document, order.currency)
    inp = ledger_request(policy, probe, order, resolved, "eligibility", 1)
    return min(max(remaining, 0), reach(inp, holds)[0])


def _ledger_rule(ledger: Claim, by_lines: bool) -> RuleOutcome:
    # By amount, "nothing asked for is held" read as the order's money all free beside the
    # refundable rule's "other refunds hold 150.00" (a trial): an amount asks for no unit.
    fits = (
        "No unit asked for is held or refunded by another refund of this order"
        if by_lines
        else "The amount fits within what other refunds of this order leave of its lines"
    )
    return RuleOutcome(
        rule_id=LEDGER_RULE,
        passed=ledger.refused_because is None,
        message=_sentence(ledger.refused_because or fits),
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
