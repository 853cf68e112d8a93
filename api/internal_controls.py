"""What customers do not read: the shop's internal controls, in eligibility answers and in
the policy documents.

Why: a customer who reads the auto-approval budget ("200.00 USD over 30 days and 180.00 USD
of it is used"), the auto-approval limit or which staff role may approve can size their
requests to slip under them (a trial). They read whether a refund is eligible, what it
pays, its fees, whether a person decides, and the policy's terms (return window, final
sale, fees, when a refund is paid and how long money takes); staff and services read all.
"""

from __future__ import annotations

from typing import Any

from workflows.budgets import AUTO_APPROVE_RULE
from workflows.decline_words import BEYOND_ANYONE
from workflows.eligibility import EligibilityAnswer, item_first
from workflows.money import format_minor
from workflows.rules import AUTHORITY_RULE, RuleOutcome

# The policy settings a customer reads (client/policy_view.describe's flattened names): its
# currency and the tables below.
CUSTOMER_TABLES = ("eligibility.", "fees.", "refund.", "settlement.")


def policy_terms(described: dict[str, Any]) -> dict[str, Any]:
    """A policy as `policy_view.describe` gives it, with only the settings that are its
    terms to customers: not approval limits, budgets, authority, or their currencies'."""
    settings = {
        key: value
        for key, value in described["settings"].items()
        if key == "currency" or key.startswith(CUSTOMER_TABLES)
    }
    return {**described, "settings": settings}


def without_internal_controls(answer: EligibilityAnswer) -> EligibilityAnswer:
    """`answer` with no budget, limit or role in it; otherwise the same answer."""
    return answer.model_copy(
        update={
            "approval_by": None,
            "auto_approve_refused_because": None,
            "rules": [_in_customers_words(rule, answer) for rule in answer.rules],
            "summary": _summary(answer),
        }
    )


def _who_decides(answer: EligibilityAnswer) -> str:
    if answer.two_approvers:
        return "two different reviewers approve it"
    return "a reviewer approves it"


def _summary(answer: EligibilityAnswer) -> str:
    if answer.outcome != "needs_review":
        return answer.summary  # no control in it: an amount, or the failed rules' reasons
    refund = format_minor(answer.refund_amount, answer.currency)
    return f"Eligible: {refund}, once {_who_decides(answer)}." + item_first(answer.item_return_days)


def _in_customers_words(rule: RuleOutcome, answer: EligibilityAnswer) -> RuleOutcome:
    if rule.rule_id == AUTHORITY_RULE and not rule.passed:
        message = BEYOND_ANYONE
    elif rule.rule_id != AUTO_APPROVE_RULE:
        return rule
    elif answer.auto_approve:
        message = "Approved automatically."
    elif answer.eligible:
        message = f"A person decides it: once {_who_decides(answer)}."
    else:
        # Not the rule's own words: a budget or the asked-again rule may have named the role
        # ("the same request twice?): a reviewer decides (role support or above)", a trial).
        message = "Nobody approves it: the refund is not eligible (the failed rules say why)."
    return rule.model_copy(update={"message": message})
