"""How the CLI shows an eligibility answer (`refundflow eligibility`): the summary, the
amounts, what is still refundable and each rule's outcome."""

from __future__ import annotations

from typing import Any

from workflows.budgets import AUTO_APPROVE_RULE
from workflows.eligibility import REFUNDABLE_RULE, REQUEST_RULE
from workflows.money import format_minor

_IN_WORDS = {"pending_review": "waiting for review", "refunding": "being paid"}
"""A refund's state as a sentence says it (a customer read `is pending_review`)."""
# How the answer after "already asked" was judged (client.edge.judge_eligibility), by the
# state of the refund made: a paid one as asking again under another key; a cancelled one
# released its hold; an open one as if not asked (under another key the same request meets
# it, second_asks.asked_again).
_JUDGED_AS = {
    "completed": " Asked again under another key:",
    "cancelled": " As if it had not been asked:",
}
_JUDGED_AS_OPEN = (
    " As if it had not been asked (asked again under another key, a reviewer decides: the"
    " same request twice?):"
)


def eligibility(answer: Any) -> str:
    if answer.already_made:
        state = answer.already_made_state
        again = _JUDGED_AS.get(state, _JUDGED_AS_OPEN)
        made = (
            f"already asked: refund {answer.already_made} is {_IN_WORDS.get(state, state)};"
            " `request` answers with it (`refundflow status`, for customers `track`, shows"
            f" it).{again}"
        )
        return made + "\n" + _eligibility(answer)
    return _eligibility(answer)


def _eligibility(answer: Any) -> str:
    money = answer.currency
    if any(rule.rule_id == REQUEST_RULE and not rule.passed for rule in answer.rules):
        # The request does not fit the order at all: there are no amounts to show, and
        # "requested 0.00" would contradict the sentence above it. What a request that fits
        # could still get is what `--json` says (max_refundable).
        return "\n".join(
            [
                answer.summary,
                f"  order          {answer.order_id}",
                f"  refundable     {format_minor(answer.max_refundable, money)} now, asked for"
                " as an amount",
            ]
        )
    lines = [
        answer.summary,
        f"  order          {answer.order_id}",
        f"  requested      {format_minor(answer.requested_amount, money)}",
        f"  fees           {format_minor(answer.fee, money)}"
        + "".join(f"  [{f.sku} {f.category} {f.bps / 100:g} %]" for f in answer.fees),
        f"  refund         {format_minor(answer.refund_amount, money)}",
        f"  refundable     {_refundable_statement(answer)}",
        f"  evidence       {'required' if answer.evidence_required else 'not needed'}",
        f"  policy         {answer.policy_version}",
        "  rules",
    ]
    for rule in answer.rules:
        lines.append(f"    {_mark(answer, rule)} {rule.rule_id:<16} {rule.message}")
    return "\n".join(lines)


def _mark(answer: Any, rule: Any) -> str:
    """FAIL or ok; for who approves a refund that is not eligible, neither ("ok
    auto-approve Nobody approves it" read as a pass, a trial)."""
    if not rule.passed:
        return "FAIL"
    return "-   " if rule.rule_id == AUTO_APPROVE_RULE and not answer.eligible else "ok  "


def _refundable_statement(answer: Any) -> str:
    """What can still be refunded now and why, as the `refundable` rule says it (one
    statement, not a larger "up to" beside it)."""
    said = [r.message for r in answer.rules if r.rule_id == REFUNDABLE_RULE]
    return said[0] if said else f"{format_minor(answer.max_refundable, answer.currency)} now"
