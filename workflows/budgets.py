"""Auto-approval budgets (policy v3 on, `[budgets]`), pure: how much money may be approved
without a reviewer on one order and for one customer over a window, and what a refund the
policy would approve automatically becomes when a budget does not allow it.

Why budgets: the auto-approve limit bounds one request, so five requests just below it on
one order (or one on each of five orders) were all approved automatically. A budget bounds
the sum, whatever the keys, channels or orders, so splitting gains nothing.

- What counts: the money (minor units, after fees) of every auto-approved refund whose
  reservation is held or paid; a cancelled refund's (released) no longer counts. Per order:
  all its refunds. Per customer: every refund the same `requested_by` (compared without
  case) asked for within the window, in the same currency (limits are minor units, like
  every amount in a policy: they apply to the refund's own currency).
- A refund beyond a budget is not refused: it holds its amount and waits for a reviewer,
  who sees why. The store applies `budget_refusal` under the order's row lock and the
  customer's lock (activities/reserving.py), so concurrent requests cannot both fit;
  `eligibility` applies it to the same sums read without a lock, ahead of time.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from workflows import rules
from workflows.models import AutoApproveBudget
from workflows.money import format_minor
from workflows.policy import Policy, PolicyDecision, RuleOutcome

AUTO_APPROVE_RULE = "auto-approve"
"""The rule whose outcome says who decides (workflows.rules.auto_approve)."""


class BudgetUse(BaseModel):
    """Auto-approved money already counted against the budgets, not counting the refund
    being judged (minor units)."""

    model_config = ConfigDict(frozen=True)

    order: int = Field(default=0, ge=0)
    """On the refund's order, every requester."""
    customer: int = Field(default=0, ge=0)
    """For the refund's requester within the window, in the refund's currency."""


def budget_of(policy: Policy) -> AutoApproveBudget | None:
    """The budgets a reservation carries for the store; None when the policy has none."""
    budgets = policy.budgets
    if budgets is None:
        return None
    return AutoApproveBudget(
        per_order=budgets.auto_approve_per_order,
        per_customer=budgets.auto_approve_per_customer,
        window_days=budgets.customer_window_days,
    )


def customer_key(requested_by: str) -> str:
    """How a requester is counted: names as people type them (case, surrounding space) do
    not make another customer, as for four eyes (workflows/refund/case._same_person)."""
    return requested_by.strip().casefold()


def budget_refusal(
    amount: int,
    budget: AutoApproveBudget,
    used: BudgetUse,
    *,
    order_id: str,
    customer: str | None,
    currency: str,
) -> str | None:
    """Why auto-approving `amount` more would go beyond a budget (one line); None when it
    fits both. The order's budget is named first: it is the one splitting on one order
    meets. Without a known customer only the order's budget applies."""
    money = format_minor
    if budget.per_order is not None and used.order + amount > budget.per_order:
        return (
            f"auto-approval budget for order {order_id} is {money(budget.per_order, currency)}"
            f" and {money(used.order, currency)} of it is used: a reviewer decides"
        )
    if (
        customer is not None
        and budget.per_customer is not None
        and used.customer + amount > budget.per_customer
    ):
        return (
            f"auto-approval budget for customer {customer} is"
            f" {money(budget.per_customer, currency)} over {budget.window_days} days and"
            f" {money(used.customer, currency)} of it is used: a reviewer decides"
        )
    return None


def withhold_auto_approval(
    policy: Policy, decision: PolicyDecision, reason: str, currency: str
) -> PolicyDecision:
    """The decision once a budget withholds the auto-approval the policy gave: a reviewer
    decides (the least senior role allowed, as for any reviewed refund), and the
    auto-approve outcome says which budget is used up, so the eligibility answer and the
    status's policy notes say why in the same words. Unchanged when not auto-approved."""
    if not decision.auto_approve:
        return decision
    approval_by = policy.approver_for(decision.refund_amount)
    outcomes = [o for o in decision.outcomes if o.rule_id != AUTO_APPROVE_RULE]
    # A policy whose auto-approve limit is above every role's authority would leave nobody
    # to approve: then, as for any such refund, it is not eligible rather than stuck.
    outcomes += rules.approval_authority(policy, False, approval_by, currency)
    eligible = all(o.passed for o in outcomes)
    if not eligible:
        approval_by = None
    who = f" (role {approval_by} or above)" if approval_by else ""
    message = reason[:1].upper() + reason[1:] + who + "."
    outcomes.append(RuleOutcome(rule_id=AUTO_APPROVE_RULE, passed=True, message=message))
    return decision.model_copy(
        update={
            "auto_approve": False,
            "eligible": eligible,
            "approval_by": approval_by,
            "outcomes": outcomes,
        }
    )
