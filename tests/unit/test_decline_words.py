"""Why a refund was declined, as its customer reads it: the reasons in their language (a
trial: a zh-CN customer read no reason at all) and no internal control in English either."""

from __future__ import annotations

from datetime import timedelta

from client.policy_source import load_policy
from tests.unit.tv_order import ORDER, POLICIES, START
from workflows import wording
from workflows.decline_words import BEYOND_ANYONE, in_english, in_locale
from workflows.models import MessageFacts
from workflows.policy import policy_for
from workflows.rules import RuleOutcome
from workflows.states import CancelReason, RefundState

POLICY = policy_for(load_policy(POLICIES, "standard-v4").document, "USD")
LATE = ORDER.model_copy(update={"delivered_at": START - timedelta(days=40)})
WINDOW = RuleOutcome(rule_id="return-window", passed=False, message="The 30-day … closed.")
AUTHORITY = RuleOutcome(
    rule_id="approval-authority", passed=False, message="No one may approve more than 5000.00 USD"
)


def test_a_zh_customer_reads_the_reasons_in_chinese() -> None:
    said = in_locale([WINDOW], POLICY, LATE, "zh-CN")
    closed = LATE.delivered_at + timedelta(days=POLICY.eligibility.return_window_days)  # type: ignore[operator]
    assert said == f"{POLICY.eligibility.return_window_days} 天退货期已于 {closed:%Y-%m-%d} 结束。"
    assert in_locale([WINDOW], POLICY, LATE, "en") is None  # the rules' own words are told
    facts = MessageFacts(
        refund_id="rf_1", order_id="ord_1", state=RefundState.CANCELLED, amount=70000,
        currency="USD", locale="zh-CN", cancel_reason=CancelReason.INELIGIBLE,
        declined_because=WINDOW.message, declined_in_locale=said,
    )  # fmt: skip
    told = wording.core_sentence(facts)
    assert told.endswith("不符合条件。" + said), told
    assert WINDOW.message not in told  # no English inside the Chinese sentence


def test_no_customer_reads_the_top_approval_limit() -> None:
    assert in_english([WINDOW, AUTHORITY]) == f"{WINDOW.message} {BEYOND_ANYONE}"
    assert in_english([]) is None
    for locale in ("en", "zh-CN"):  # what the customer is told, in each language
        facts = MessageFacts(
            refund_id="rf_1", order_id="ord_1", state=RefundState.CANCELLED, amount=900000,
            currency="USD", locale=locale, cancel_reason=CancelReason.INELIGIBLE,
            declined_because=in_english([AUTHORITY]),
            declined_in_locale=in_locale([AUTHORITY], POLICY, LATE, locale),
        )  # fmt: skip
        told = wording.customer_message(facts)
        assert "5000" not in told, told
        assert ("anyone here may approve" in told) if locale == "en" else ("可批准" in told)


def test_the_api_leaves_facts_worded_into_the_message_out_for_older_clients() -> None:
    """A review: a client of an earlier release refuses facts it does not know, and a zh-CN
    decline (or an item held) would make its status unreadable."""
    from api.customer_answers import WORDED_FACTS, for_the_wire
    from tests.unit.test_refund_case import new_case
    from workflows.refund import views

    status = views.status(new_case()[0])
    assert status.facts is not None
    flagged = status.facts.model_copy(
        update={"item_held": True, "declined_in_locale": "理由。", "stopped": True}
    )
    answered = for_the_wire(status.model_copy(update={"facts": flagged}))
    assert answered.facts is not None and answered.message == status.message
    assert [getattr(answered.facts, name) for name in WORDED_FACTS] == [None] * 3
    assert "declined_in_locale" not in answered.model_dump_json()
