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

from workflows import rules
from workflows.models import REASON_CODES, OrderSnapshot, PinnedPolicy, ResolvedRefund
from workflows.money import check_currency, format_minor

# The rules' outcome types and fee arithmetic live in workflows.rules; they are named here
# too, where the rest of the code has always imported them from.
from workflows.rules import SELLER_FAULT_REASONS as SELLER_FAULT_REASONS
from workflows.rules import FeeLine as FeeLine
from workflows.rules import RuleOutcome as RuleOutcome
from workflows.rules import restocking_fees
from workflows.settlement import DEFAULT_SETTLEMENT, SettlementTime
from workflows.vocabulary import ReasonCode

REVIEW_EXPIRY_LEVEL = 2
"""The escalation level from which a review's deadline is its expiry (review_deadline)."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Eligibility(_Section):
    return_window_days: int = Field(ge=0, le=3650)
    final_sale_categories: list[str] = []
    final_sale_per_line: bool = False
    """A request naming any final-sale line is refused for a reason that is not the seller's
    fault (v3 on). Before: only a request of final-sale lines alone was."""


class Approval(_Section):
    auto_approve_limit: int = Field(ge=0)
    """Largest amount (minor units) approved without a reviewer."""
    evidence_required_above: int = Field(ge=0)
    second_approver_above: int | None = Field(default=None, ge=0)
    """Above this amount two different people approve (four eyes); None: one is enough
    (policies before v3)."""


class Budgets(_Section):
    """Auto-approval budgets (v3 on): bounds on the money approved without a reviewer that
    splitting a refund into small requests cannot beat. Beyond a budget the refund still
    holds its amount and waits for a reviewer; nothing is refused. None: no such bound."""

    auto_approve_per_order: int | None = Field(default=None, ge=0)
    """The most money (minor units, after fees) auto-approved on one order, all its refunds
    together, whatever their keys, channels or requesters."""
    auto_approve_per_customer: int | None = Field(default=None, ge=0)
    """The most money (minor units, after fees) auto-approved for one requester
    (`requested_by`) over `customer_window_days`, across orders, per currency."""
    customer_window_days: int = Field(default=30, ge=1, le=3650)


class RefundTrigger(_Section):
    trigger: Literal["on_approval", "on_item_received"]
    item_return_window_days: int = Field(ge=1, le=365, default=14)
    nothing_to_return_reasons: list[ReasonCode] = []
    """With `on_item_received` (returns v2 on): reasons paid on approval, nothing coming back
    (a trial: a late-delivery refund asked for "the item", then closed unpaid)."""

    def awaits_item(self, reason_code: str) -> bool:
        """Whether a refund for this reason is paid only once its item is back."""
        return (
            self.trigger == "on_item_received" and reason_code not in self.nothing_to_return_reasons
        )

    def pays_without_item(self, reason_code: str) -> bool:
        """A returns policy's reason that is paid on approval, nothing coming back."""
        return self.trigger == "on_item_received" and not self.awaits_item(reason_code)

    @model_validator(mode="after")
    def _nothing_to_return_is_for_returns(self) -> RefundTrigger:
        reasons = self.nothing_to_return_reasons
        if reasons and self.trigger != "on_item_received":
            raise ValueError("nothing_to_return_reasons is for trigger = 'on_item_received'")
        if len(set(reasons)) != len(reasons):
            raise ValueError("nothing_to_return_reasons names a reason twice")
        return self


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


class CurrencyLimits(_Section):
    """A policy's money settings for refunds in one more currency (v4 on), in that
    currency's minor units: what `[approval]`, `[authority]` and `[budgets]` say in the
    policy's own currency."""

    auto_approve_limit: int = Field(ge=0)
    evidence_required_above: int = Field(ge=0)
    second_approver_above: int | None = Field(default=None, ge=0)
    authority: dict[str, Annotated[int, Field(ge=0)]] = {}
    auto_approve_per_order: int | None = Field(default=None, ge=0)
    auto_approve_per_customer: int | None = Field(default=None, ge=0)


UNBOUNDED = 10**15
"""Above any amount (workflows.money.MAX_MINOR_UNITS): the one role that may approve a refund
in a currency the policy sets no limits for."""


class Policy(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = Field(ge=1)
    description: str = ""
    currency: str | None = None
    """The currency every amount is written in (v4 on). None before v4: the amounts
    were applied as they stand to every currency, so 50.00 USD and 5000 JPY were one limit."""
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
    budgets: Budgets | None = None
    """Auto-approval budgets per order and per customer; None before v3: each refund is
    judged on its own amount only."""
    currencies: dict[str, CurrencyLimits] = {}
    """The same money settings for refunds in other currencies (v4 on). A refund in a
    currency named nowhere is never approved automatically: only the most senior role
    approves it, twice when the policy asks for a second approver at all."""
    uncovered: bool = False
    """Set by `in_currency` alone: this is the policy for a currency it sets no limits for."""

    @model_validator(mode="after")
    def _currencies_agree(self) -> Policy:
        if self.uncovered:
            raise ValueError("`uncovered` is not a setting: it marks a currency with no limits")
        if self.currency is None and self.currencies:
            raise ValueError("[currencies] needs `currency`: the currency of every other amount")
        for code in [*([self.currency] if self.currency else []), *self.currencies]:
            check_currency(code)
        if self.currency in self.currencies:
            raise ValueError(f"[currencies.{self.currency}] repeats the policy's own currency")
        for code, limits in self.currencies.items():
            if set(limits.authority) != set(self.authority):
                raise ValueError(
                    f"[currencies.{code}] authority must name the roles of [authority]"
                )
            mine = (
                limits.second_approver_above,
                limits.auto_approve_per_order,
                limits.auto_approve_per_customer,
            )
            budgets = self.budgets or Budgets()
            theirs = (
                self.approval.second_approver_above,
                budgets.auto_approve_per_order,
                budgets.auto_approve_per_customer,
            )
            if any((a is None) != (b is None) for a, b in zip(mine, theirs, strict=True)):
                raise ValueError(f"[currencies.{code}] must set what the policy sets, no more")
        return self

    def in_currency(self, currency: str) -> Policy:
        """This policy as it applies to a refund in `currency`: the money settings written
        for it. Itself for policies before v4 and for the policy's own currency."""
        if self.currency is None or currency == self.currency:
            return self
        limits = self.currencies.get(currency) or self._no_limits()
        budgets = self.budgets and self.budgets.model_copy(
            update={
                "auto_approve_per_order": limits.auto_approve_per_order,
                "auto_approve_per_customer": limits.auto_approve_per_customer,
            }
        )
        approval = Approval(
            auto_approve_limit=limits.auto_approve_limit,
            evidence_required_above=limits.evidence_required_above,
            second_approver_above=limits.second_approver_above,
        )
        update = {"approval": approval, "authority": limits.authority, "budgets": budgets}
        covered = currency in self.currencies
        return self.model_copy(
            update={**update, "currency": currency, "currencies": {}, "uncovered": not covered}
        )

    def _no_limits(self) -> CurrencyLimits:
        """For a currency the policy does not name: a person decides every refund, with
        evidence; only the most senior role may (of roles sharing the top limit, the first
        named), whatever the amount up to what the order captured; four eyes whenever the
        policy has them at all. Without [authority] any reviewer may, as for every amount."""
        top = max(self.authority.items(), key=lambda item: item[1])[0] if self.authority else None
        return CurrencyLimits(
            auto_approve_limit=0,
            evidence_required_above=0,
            second_approver_above=None if self.approval.second_approver_above is None else 0,
            authority={role: UNBOUNDED if role == top else 0 for role in self.authority},
            auto_approve_per_order=None if self.budgets is None else 0,
            auto_approve_per_customer=None if self.budgets is None else 0,
        )

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
        return ladder[min(escalation_level, REVIEW_EXPIRY_LEVEL)]

    def authority_refusal(self, reviewer: str, role: str, amount: int, currency: str) -> str | None:
        """Why `reviewer` in `role` may not approve `amount` under this policy; None when
        they may (always None for policies written before authority existed)."""
        if not self.authority:
            return None
        limit = self.authority.get(role)
        if self.uncovered and limit is not None and amount > limit:
            return (
                f"{reviewer} ({role}) may not approve {currency} refunds: policy {self.name}"
                f" v{self.version} sets no {currency} limits, so only the"
                f" {self.approver_for(amount)} role may"
            )
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


@functools.lru_cache(maxsize=256)
def policy_for(document: str, currency: str) -> Policy:
    """The pinned policy as it applies to a refund in `currency` (Policy.in_currency): what
    every decision about that refund reads, in the workflow and at the edge alike."""
    return parse_policy(document).in_currency(currency)


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


def policy_hash(document: str) -> str:
    """The content hash a refund pins its policy by (SHA-256 of the exact text)."""
    return hashlib.sha256(document.encode()).hexdigest()


def pin_policy(document: str) -> PinnedPolicy:
    """Parse and pin: name, version and a content hash of the exact text."""
    policy = parse_policy(document)
    digest = policy_hash(document)
    return PinnedPolicy(
        name=policy.name, version=policy.version, content_hash=digest, document=document
    )


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
    four_eyes: bool = False
    """Two different people must approve it (above the policy's second_approver_above)."""

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
    """Apply the policy to one request. Pure: `now` is passed in (workflow.now() in workflows).

    Each rule is a function in `workflows.rules`. They run in this order, which is the order
    of the outcomes the customer and the reviewer read; auto-approval needs every rule before
    the authority rule to have passed, and eligibility every rule before the last."""
    currency = resolved.currency
    fees = restocking_fees(policy, order, resolved, reason_code)
    fee = sum(f.amount for f in fees)
    refund_amount = resolved.amount - fee
    evidence_required = refund_amount > policy.approval.evidence_required_above
    outcomes = [
        rules.return_window(policy, order, now),
        rules.final_sale(policy, order, resolved, reason_code),
        *rules.restocking_fee(fees, reason_code, currency),
        *rules.refund_amount(refund_amount),
        rules.evidence(policy, evidence_required, currency),
    ]
    # Paid on approval with nothing coming back (returns v2 on): a person decides, or a
    # reason picked for it would pay without the item, as a review found.
    nothing_back = policy.refund.pays_without_item(reason_code)
    auto = all(o.passed for o in outcomes) and (
        not evidence_required
        and refund_amount <= policy.approval.auto_approve_limit
        and not nothing_back
    )
    approval_by = None if auto else policy.approver_for(refund_amount)
    outcomes += rules.approval_authority(policy, auto, approval_by, currency)
    eligible = all(o.passed for o in outcomes)
    if not eligible:
        approval_by = None  # nobody is asked to approve what the policy refuses
    second = policy.approval.second_approver_above
    four_eyes = second is not None and refund_amount > second
    outcomes.append(
        rules.auto_approve(policy, auto, eligible, approval_by, currency, four_eyes, nothing_back)
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
        four_eyes=four_eyes and not auto,
    )
