"""Why the policy declined a refund, as the customer is told it: in English from the rules'
own words (an internal control in the customer's words), and in the customer's language
when it is another, from the failed rules' ids and the facts they were decided on.

A trial: a zh-CN customer was told only that the request was not eligible, the reason
being in English and so left out of a Chinese sentence; the English one named the policy's
top approval limit ("No one may approve more than …"), an internal control customers do
not read (api/internal_controls.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from workflows.models import OrderSnapshot
from workflows.policy import Policy
from workflows.rules import AUTHORITY_RULE, RuleOutcome

BEYOND_ANYONE = "It is more than anyone here may approve."
"""The authority rule's failure in customers' words (its own name the top limit)."""

_ZH = {
    "final-sale": "不退不换商品仅在商品损坏、有缺陷、发错商品或未收到商品时可退款。",
    "refund-amount": "扣除重新入库费后已无可退金额。",
    AUTHORITY_RULE: "该金额超出我们可批准的范围。",
}


def in_english(failed: Sequence[RuleOutcome]) -> str | None:
    """The failed rules' words, the authority rule's in customers' words; None: none."""
    said = [BEYOND_ANYONE if o.rule_id == AUTHORITY_RULE else o.message for o in failed]
    return " ".join(said) or None


def in_locale(
    failed: Sequence[RuleOutcome], policy: Policy, order: OrderSnapshot, locale: str
) -> str | None:
    """The same reasons in `locale` (zh-CN), each rule the policy's wording has one for;
    None for English (the rules' own words are told) or when none can be said."""
    if locale != "zh-CN":
        return None
    said = [_zh(o.rule_id, policy, order) for o in failed]
    return "".join(s for s in said if s) or None


def _zh(rule_id: str, policy: Policy, order: OrderSnapshot) -> str | None:
    if rule_id == "return-window" and order.delivered_at is not None:
        days = policy.eligibility.return_window_days
        closed = order.delivered_at + timedelta(days=days)
        return f"{days} 天退货期已于 {closed:%Y-%m-%d} 结束。"
    return _ZH.get(rule_id)
