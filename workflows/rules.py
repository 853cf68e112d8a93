"""The refund policy's rules, one pure function each, and the outcomes they produce.

`workflows.policy.evaluate` calls them in a fixed order and builds the decision from them;
like it, they run inside the workflow (on the pinned policy), so they do no I/O and read
the time only from their `now` argument.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from workflows.models import OrderSnapshot, ResolvedRefund
from workflows.money import format_minor

if TYPE_CHECKING:
    # Only for annotations: workflows.policy imports this module to evaluate the rules.
    from workflows.policy import Policy

# Reasons for which a final-sale item is still refundable: the fault is the seller's.
SELLER_FAULT_REASONS = frozenset({"damaged", "defective", "wrong_item", "not_received"})


class RuleOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule_id: str
    passed: bool
    message: str


class FeeLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    sku: str
    category: str
    bps: int
    amount: int
    """Minor units kept back from the refund for this line."""


def return_window(policy: Policy, order: OrderSnapshot, now: datetime) -> RuleOutcome:
    """Refundable until `return_window_days` after delivery; the window starts at delivery."""
    if order.delivered_at is None:
        return RuleOutcome(
            rule_id="return-window",
            passed=True,
            message="Not delivered yet, so the return window has not started.",
        )
    window = timedelta(days=policy.eligibility.return_window_days)
    closes = order.delivered_at + window
    is_open = now <= closes
    return RuleOutcome(
        rule_id="return-window",
        passed=is_open,
        message=(
            f"Within the {window.days}-day return window (closes {closes:%Y-%m-%d})."
            if is_open
            else f"The {window.days}-day return window closed on {closes:%Y-%m-%d}."
        ),
    )


def final_sale(
    policy: Policy, order: OrderSnapshot, resolved: ResolvedRefund, reason_code: str
) -> RuleOutcome:
    """Final-sale items are refunded only when the seller is at fault. An amount-only
    request is kept off final-sale value by the order ledger; here it is refused only when
    the order holds nothing else."""
    final_sale_categories = set(policy.eligibility.final_sale_categories)
    refunded_lines = resolved.lines or order.lines
    is_final = [line.category in final_sale_categories for line in refunded_lines]
    per_line = policy.eligibility.final_sale_per_line and bool(resolved.lines)
    touches_final_sale = any(is_final) if per_line else bool(is_final) and all(is_final)
    blocks = touches_final_sale and reason_code not in SELLER_FAULT_REASONS
    return RuleOutcome(
        rule_id="final-sale",
        passed=not blocks,
        message=(
            "Final-sale items are refundable only when damaged, defective, wrong or missing."
            if blocks
            else "No final-sale restriction applies."
        ),
    )


FEE_RULE = "restocking-fee"
AUTHORITY_RULE = "approval-authority"


def restocking_fee(fees: list[FeeLine], reason_code: str, currency: str) -> list[RuleOutcome]:
    """Says which fees are kept back; no outcome at all when there are none."""
    if not fees:
        return []
    fee = sum(f.amount for f in fees)
    return [
        RuleOutcome(
            rule_id=FEE_RULE,
            passed=True,
            message="Restocking fee of "
            + ", ".join(f"{f.bps / 100:g} % on {f.sku} ({f.category})" for f in fees)
            + f": {format_minor(fee, currency)} kept back"
            f" ({reason_code} is not a fault of the seller).",
        )
    ]


def refund_amount(amount: int) -> list[RuleOutcome]:
    """Fails when fees leave nothing to refund; no outcome otherwise."""
    if amount > 0:
        return []
    return [
        RuleOutcome(
            rule_id="refund-amount",
            passed=False,
            message="After the restocking fee nothing is left to refund.",
        )
    ]


def evidence(policy: Policy, required: bool, currency: str) -> RuleOutcome:
    """Never fails: it only says whether the customer must send evidence."""
    if policy.uncovered:
        message = (
            f"Policy {policy.name} v{policy.version} sets no limits for {currency}:"
            " a reviewer decides, and records the evidence they checked."
        )
    elif required:
        limit = format_minor(policy.approval.evidence_required_above, currency)
        message = f"Evidence is required above {limit}."
    else:
        message = "No evidence is required for this amount."
    return RuleOutcome(rule_id="evidence", passed=True, message=message)


def approval_authority(
    policy: Policy, auto: bool, approval_by: str | None, currency: str
) -> list[RuleOutcome]:
    """Fails when a reviewer is needed but the amount is above every role's limit; no
    outcome when a role may approve it, when it is auto-approved, or without roles."""
    if not policy.authority or auto or approval_by is not None:
        return []
    top, top_role = max((limit, role) for role, limit in policy.authority.items())
    return [
        RuleOutcome(
            rule_id=AUTHORITY_RULE,
            passed=False,
            message=f"No one may approve more than {format_minor(top, currency)}"
            f" (role {top_role}).",
        )
    ]


def auto_approve(
    policy: Policy,
    auto: bool,
    eligible: bool,
    approval_by: str | None,
    currency: str,
    four_eyes: bool = False,
    nothing_back: bool = False,
) -> RuleOutcome:
    """Never fails: it says who decides (nobody, a reviewer of some role, or no one at all
    because the refund is not eligible); `nothing_back`: why a reviewer decides a small one."""
    if auto:
        limit = format_minor(policy.approval.auto_approve_limit, currency)
        message = f"Approved automatically: at most {limit}."
    elif approval_by and four_eyes:
        message = f"Two different reviewers decide this refund (role {approval_by} or above)."
        if nothing_back:  # said in every currency (a trial missed it under four eyes)
            message = message[:-1] + ": it is paid on approval and no item comes back."
    elif approval_by and nothing_back:
        message = (
            f"A reviewer decides this refund (role {approval_by} or above): it is paid on"
            " approval and no item comes back."
        )
    elif approval_by:
        message = f"A reviewer decides this refund (role {approval_by} or above)."
    elif eligible:
        message = "A reviewer decides this refund."
    else:
        message = "Nobody approves it: the refund is not eligible (the failed rules say why)."
    return RuleOutcome(rule_id="auto-approve", passed=True, message=message)


def restocking_fees(
    policy: Policy, order: OrderSnapshot, resolved: ResolvedRefund, reason_code: str
) -> list[FeeLine]:
    """Fees per refunded line, in integer minor units rounded down (never above the rate).
    Empty when the reason is waived (no fault of the customer). An amount-only refund is
    spread over the order's lines by value, so asking for an amount instead of lines does
    not avoid the fee: by what each line still had when it was asked (its allocation, the
    ledger's split), so a line another refund already holds bears none of it."""
    rates = policy.fees.restocking_bps
    if not rates or reason_code in policy.fees.waived_for_reasons:
        return []
    if resolved.lines:
        shares = [(line, line.unit_price * line.quantity) for line in resolved.lines]
    elif resolved.allocation is not None:  # as the ledger split it: what each line still had
        by_sku = {line.sku: line for line in order.lines}
        shares = [(by_sku[s.sku], s.amount) for s in resolved.allocation if s.sku in by_sku]
    else:
        order_value = sum(line.unit_price * line.quantity for line in order.lines)
        shares = [
            (line, resolved.amount * line.unit_price * line.quantity // order_value)
            for line in order.lines
            if order_value > 0
        ]
    fees = []
    for line, value in shares:
        bps = rates.get(line.category, 0)
        amount = value * bps // 10_000
        if amount > 0:
            fees.append(FeeLine(sku=line.sku, category=line.category, bps=bps, amount=amount))
    return fees
