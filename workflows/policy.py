"""Refund policy: versioned data (TOML under policies/) and its pure evaluation.

The same `evaluate()` runs in the workflow (on the pinned policy text) and anywhere else that
needs to know what the policy says, so a channel can never read the policy differently.
"""

from __future__ import annotations

import functools
import hashlib
import tomllib
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workflows.models import REASON_CODES, OrderSnapshot, PinnedPolicy, ResolvedRefund
from workflows.money import format_minor

# Reasons for which a final-sale item is still refundable: the fault is the seller's.
SELLER_FAULT_REASONS = frozenset({"damaged", "defective", "wrong_item", "not_received"})


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Eligibility(_Section):
    return_window_days: int = Field(ge=0, le=3650)
    final_sale_categories: list[str] = []


class Approval(_Section):
    auto_approve_limit: int = Field(ge=0)
    """Largest amount (minor units) approved without a reviewer."""
    evidence_required_above: int = Field(ge=0)


class RefundTrigger(_Section):
    trigger: Literal["on_approval", "on_item_received"]
    item_return_window_days: int = Field(ge=1, le=365, default=14)


class Escalation(_Section):
    review_sla_hours: float = Field(gt=0)
    second_escalation_hours: float = Field(gt=0)
    review_expiry_hours: float = Field(gt=0)
    """After this long in review (from the request) the refund expires; always a timer running."""
    refund_sla_hours: float = Field(gt=0, default=72)
    """A refund still not paid this long after it entered `refunding` is escalated."""


# Every reason but the customer's own choice: no restocking fee (unless a policy says so).
FEE_WAIVED_REASONS = tuple(reason for reason in REASON_CODES if reason != "changed_mind")


class Fees(_Section):
    restocking_bps: dict[str, Annotated[int, Field(ge=0, le=10_000)]] = {}
    """Restocking fee by product category, in basis points of the refunded value
    (1500 = 15 %). Charged only for reasons not in `waived_for_reasons`."""
    waived_for_reasons: list[str] = list(FEE_WAIVED_REASONS)


class SettlementTime(_Section):
    """How long the payment provider typically takes to return money on one rail."""

    unit: Literal["minutes", "hours", "business_days"]
    min: int = Field(ge=0)
    max: int = Field(ge=0)

    @model_validator(mode="after")
    def _sane(self) -> SettlementTime:
        # Bounded: a pinned policy is evaluated inside every refund for its whole life.
        ceiling = {"minutes": 60 * 24 * 90, "hours": 24 * 90, "business_days": 90}[self.unit]
        if not self.min <= self.max <= ceiling:
            raise ValueError(f"settlement needs 0 <= min <= max <= {ceiling} {self.unit}")
        return self

    def window(self, start: datetime) -> tuple[datetime, datetime]:
        return _after(start, self.min, self.unit), _after(start, self.max, self.unit)

    def describe(self) -> str:
        unit = self.unit.replace("_", " ")
        return f"{self.min}-{self.max} {unit}" if self.min != self.max else f"{self.max} {unit}"


# Used for a rail the policy does not name (and by policies written before rails existed).
DEFAULT_SETTLEMENT: dict[str, SettlementTime] = {
    "card": SettlementTime(unit="business_days", min=5, max=10),
    "wallet": SettlementTime(unit="minutes", min=1, max=30),
    "bank_transfer": SettlementTime(unit="business_days", min=1, max=3),
}


class Policy(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = Field(ge=1)
    description: str = ""
    eligibility: Eligibility
    approval: Approval
    refund: RefundTrigger
    escalation: Escalation
    fees: Fees = Fees()
    authority: dict[str, Annotated[int, Field(ge=0)]] = {}
    """The largest amount (minor units) each staff role may approve. Empty: any reviewer
    may approve any amount (policies written before authority existed)."""
    settlement: dict[Literal["card", "wallet", "bank_transfer"], SettlementTime] = {}
    """Typical settlement time per payment rail, for the customer's ETA."""

    def settlement_for(self, rail: str) -> SettlementTime:
        named = {str(name): time for name, time in self.settlement.items()}
        known = named.get(rail) or DEFAULT_SETTLEMENT.get(rail)
        return known or DEFAULT_SETTLEMENT["card"]

    def approver_for(self, amount: int) -> str | None:
        """The least senior role allowed to approve `amount`; None when nobody is."""
        allowed = [(limit, role) for role, limit in self.authority.items() if amount <= limit]
        return min(allowed)[1] if allowed else None

    def review_deadline(self, escalation_level: int) -> timedelta:
        """The review deadline ladder, from the request: at the SLA the refund escalates to
        level 1, after the second delay to level 2, and at the expiry it is cancelled."""
        ladder = [self.review_sla, self.review_sla + self.second_escalation, self.review_expiry]
        return ladder[min(escalation_level, len(ladder) - 1)]

    def authority_refusal(self, reviewer: str, role: str, amount: int, currency: str) -> str | None:
        """Why `reviewer` in `role` may not approve `amount` under this policy; None when
        they may (always None for policies written before authority existed)."""
        if not self.authority:
            return None
        limit = self.authority.get(role)
        if limit is None:
            return (
                f"unknown role {role!r}: policy {self.name} v{self.version} knows"
                f" {', '.join(sorted(self.authority))}"
            )
        if amount <= limit:
            return None
        needed = self.approver_for(amount)
        return (
            f"{reviewer} ({role}) may approve up to {format_minor(limit, currency)}; approving"
            f" {format_minor(amount, currency)} needs "
            + (f"the {needed} role" if needed else "a role the policy does not have")
        )

    @property
    def review_sla(self) -> timedelta:
        return timedelta(hours=self.escalation.review_sla_hours)

    @property
    def second_escalation(self) -> timedelta:
        return timedelta(hours=self.escalation.second_escalation_hours)

    @property
    def review_expiry(self) -> timedelta:
        return timedelta(hours=self.escalation.review_expiry_hours)

    @property
    def refund_sla(self) -> timedelta:
        return timedelta(hours=self.escalation.refund_sla_hours)


class PolicyError(ValueError):
    """A policy file that cannot be used."""


@functools.lru_cache(maxsize=64)
def parse_policy(document: str) -> Policy:
    """Parse a policy file's text. Cached by text: every refund (and every replay of one)
    parses its pinned policy, and there are only a handful of versions. Policy is frozen."""
    try:
        return Policy.model_validate(tomllib.loads(document))
    except tomllib.TOMLDecodeError as err:
        raise PolicyError(f"policy is not valid TOML: {err}") from None
    except ValidationError as err:
        raise PolicyError(f"policy is invalid: {err}") from None


def pin_policy(document: str) -> PinnedPolicy:
    """Parse and pin: name, version and a content hash of the exact text."""
    policy = parse_policy(document)
    digest = hashlib.sha256(document.encode()).hexdigest()
    return PinnedPolicy(
        name=policy.name, version=policy.version, content_hash=digest, document=document
    )


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


class PolicyDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    eligible: bool
    auto_approve: bool
    evidence_required: bool
    outcomes: list[RuleOutcome]
    fee: int = 0
    """Total fees (minor units) kept back: the refund pays `requested - fee`."""
    fees: list[FeeLine] = []
    refund_amount: int = 0
    """What the refund pays if approved in full: the requested amount less fees."""
    approval_by: str | None = None
    """The least senior role that may approve it (None: auto-approved, or no roles defined)."""

    @property
    def failed(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if not o.passed]


def evaluate(
    policy: Policy,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
    reason_code: str,
    now: datetime,
) -> PolicyDecision:
    """Apply the policy to one request. Pure: `now` is passed in (workflow.now() in workflows)."""
    outcomes: list[RuleOutcome] = []

    window = timedelta(days=policy.eligibility.return_window_days)
    if order.delivered_at is None:
        outcomes.append(
            RuleOutcome(
                rule_id="return-window",
                passed=True,
                message="Not delivered yet, so the return window has not started.",
            )
        )
    else:
        closes = order.delivered_at + window
        outcomes.append(
            RuleOutcome(
                rule_id="return-window",
                passed=now <= closes,
                message=(
                    f"Within the {window.days}-day return window (closes {closes:%Y-%m-%d})."
                    if now <= closes
                    else f"The {window.days}-day return window closed on {closes:%Y-%m-%d}."
                ),
            )
        )

    final_sale = set(policy.eligibility.final_sale_categories)
    refunded_lines = resolved.lines or order.lines
    only_final_sale = bool(refunded_lines) and all(
        line.category in final_sale for line in refunded_lines
    )
    final_sale_blocks = only_final_sale and reason_code not in SELLER_FAULT_REASONS
    outcomes.append(
        RuleOutcome(
            rule_id="final-sale",
            passed=not final_sale_blocks,
            message=(
                "Final-sale items are refundable only when damaged, defective, wrong or missing."
                if final_sale_blocks
                else "No final-sale restriction applies."
            ),
        )
    )

    fees = restocking_fees(policy, order, resolved, reason_code)
    fee = sum(f.amount for f in fees)
    refund_amount = resolved.amount - fee
    if fees:
        outcomes.append(
            RuleOutcome(
                rule_id="restocking-fee",
                passed=True,
                message="Restocking fee of "
                + ", ".join(f"{f.bps / 100:g} % on {f.sku} ({f.category})" for f in fees)
                + f": {format_minor(fee, resolved.currency)} kept back"
                f" ({reason_code} is not a fault of the seller).",
            )
        )

    if refund_amount <= 0:
        outcomes.append(
            RuleOutcome(
                rule_id="refund-amount",
                passed=False,
                message="After the restocking fee nothing is left to refund.",
            )
        )

    evidence_required = refund_amount > policy.approval.evidence_required_above
    outcomes.append(
        RuleOutcome(
            rule_id="evidence",
            passed=True,
            message=(
                "Evidence is required above"
                f" {format_minor(policy.approval.evidence_required_above, resolved.currency)}."
                if evidence_required
                else "No evidence is required for this amount."
            ),
        )
    )

    auto = all(o.passed for o in outcomes) and (
        not evidence_required and refund_amount <= policy.approval.auto_approve_limit
    )
    approval_by = None if auto else policy.approver_for(refund_amount)
    if policy.authority and not auto and approval_by is None:
        top, top_role = max((limit, role) for role, limit in policy.authority.items())
        outcomes.append(
            RuleOutcome(
                rule_id="approval-authority",
                passed=False,
                message=f"No one may approve more than {format_minor(top, resolved.currency)}"
                f" (role {top_role}).",
            )
        )
    eligible = all(o.passed for o in outcomes)
    if not eligible:
        approval_by = None
    outcomes.append(
        RuleOutcome(
            rule_id="auto-approve",
            passed=True,
            message=(
                "Approved automatically: at most"
                f" {format_minor(policy.approval.auto_approve_limit, resolved.currency)}."
                if auto
                else f"A reviewer decides this refund (role {approval_by} or above)."
                if approval_by
                else "A reviewer decides this refund."
                if eligible
                else "Not eligible under the policy."
            ),
        )
    )
    return PolicyDecision(
        eligible=eligible,
        auto_approve=auto,
        evidence_required=evidence_required,
        outcomes=outcomes,
        fee=fee,
        fees=fees,
        refund_amount=refund_amount,
        approval_by=approval_by,
    )


def restocking_fees(
    policy: Policy, order: OrderSnapshot, resolved: ResolvedRefund, reason_code: str
) -> list[FeeLine]:
    """Fees per refunded line, in integer minor units rounded down (never above the rate).
    None when the reason is waived (no fault of the customer). An amount-only refund is
    spread over the order's lines by value, so asking for an amount instead of lines does
    not avoid the fee."""
    rates = policy.fees.restocking_bps
    if not rates or reason_code in policy.fees.waived_for_reasons:
        return []
    if resolved.lines:
        shares = [(line, line.unit_price * line.quantity) for line in resolved.lines]
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


def _after(start: datetime, amount: int, unit: str) -> datetime:
    if unit == "minutes":
        return start + timedelta(minutes=amount)
    if unit == "hours":
        return start + timedelta(hours=amount)
    day, added = start, 0
    while added < amount:  # business days: Monday to Friday
        day += timedelta(days=1)
        if day.weekday() < 5:
            added += 1
    return day
