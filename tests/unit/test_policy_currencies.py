"""Policy v4: every amount says its currency. Up to v3 a limit was a number of minor units
whatever the refund's currency (the 50.00 USD auto-approve limit let 5000 JPY and 50.00 GBP
through); v4's limits are USD, [currencies] says them in EUR, GBP and JPY, and a refund in
any other currency waits for the most senior role, twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from client import policy_view
from client.policy_view import describe, diff
from client.settings import DEFAULT_POLICY, PROJECT_ROOT
from workflows.models import OrderLine, OrderSnapshot, ResolvedRefund
from workflows.policy import PolicyDecision, PolicyError, evaluate, parse_policy, policy_for

POLICIES = PROJECT_ROOT / "policies"
V3 = (POLICIES / "standard-v3.toml").read_text()
V4 = (POLICIES / "standard-v4.toml").read_text()
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def decision(document: str, amount: int, currency: str) -> PolicyDecision:
    """The policy's decision on a whole one-line order, refunded as damaged."""
    order = OrderSnapshot(
        order_id="ord_1",
        currency=currency,
        lines=[OrderLine(sku="SKU-1", quantity=1, unit_price=amount, category="general")],
        captured_amount=amount,
        payment_reference="pay_1",
        delivered_at=NOW - timedelta(days=3),
    )
    resolved = ResolvedRefund(amount=amount, currency=currency)
    return evaluate(policy_for(document, currency), order, resolved, "damaged", NOW)


def decide(document: str, amount: int, currency: str) -> tuple[bool, str | None]:
    """(approved automatically, the least role that may approve)."""
    decided = decision(document, amount, currency)
    assert decided.eligible
    return decided.auto_approve, decided.approval_by


def test_v4_is_the_policy_in_force() -> None:
    assert DEFAULT_POLICY == "standard-v4"


def test_up_to_v3_a_limit_was_the_same_number_in_every_currency() -> None:
    assert decide(V3, 5000, "GBP") == (True, None)  # 50.00 GBP, above 50.00 USD
    assert decide(V3, 6000, "JPY") == (False, "support")  # 6,000 yen: about 40 USD
    assert policy_for(V3, "JPY") is parse_policy(V3)


def test_v4_applies_each_currencys_own_limits() -> None:
    assert decide(V4, 5000, "USD") == (True, None)
    assert decide(V4, 5001, "USD") == (False, "support")
    assert decide(V4, 4500, "GBP") == (False, "support")  # above 40.00 GBP
    assert decide(V4, 4000, "GBP") == (True, None)
    assert decide(V4, 7500, "JPY") == (True, None)
    assert decide(V4, 40000, "JPY") == (False, "lead")  # above support's 30,000 yen
    jpy = policy_for(V4, "JPY")
    assert jpy.approval.second_approver_above == 150000
    assert jpy.budgets is not None and jpy.budgets.auto_approve_per_customer == 30000
    assert jpy.authority_refusal("sam", "support", 30001, "JPY") == (
        "sam (support) may approve up to 30000 JPY; approving 30001 JPY needs the lead role"
    )


def test_a_currency_the_policy_does_not_name_waits_for_finance_twice() -> None:
    assert decide(V4, 100, "KRW") == (False, "finance")
    krw = policy_for(V4, "KRW")
    assert krw.uncovered and krw.approval.second_approver_above == 0
    assert krw.budgets is not None and krw.budgets.auto_approve_per_order == 0
    assert krw.authority_refusal("li", "lead", 100, "KRW") == (
        "li (lead) may not approve KRW refunds: policy standard v4 sets no KRW limits,"
        " so only the finance role may"
    )
    assert krw.authority_refusal("fin", "finance", 10**9, "KRW") is None
    said = {o.rule_id: o.message for o in decision(V4, 100, "KRW").outcomes}
    assert "sets no limits for KRW" in said["evidence"]


JPY_AUTHORITY = "authority = { support = 30000, lead = 150000, finance = 15000000 }"


@pytest.mark.parametrize(
    ("before", "after", "complaint"),
    [
        ('currency = "USD"\n', "", "[currencies] needs `currency`"),
        ('currency = "USD"', 'currency = "ZZZ"', "not an ISO 4217"),
        ("[currencies.GBP]", "[currencies.USD]", "repeats the policy's own currency"),
        (
            JPY_AUTHORITY,
            "authority = { support = 1, lead = 2 }",
            "must name the roles of [authority]",
        ),
        ("auto_approve_per_order = 15000\n", "", "must set what the policy sets"),
        ('currency = "USD"', 'currency = "USD"\nuncovered = true', "`uncovered` is not a"),
    ],
)
def test_a_policy_whose_currencies_disagree_is_refused(
    before: str, after: str, complaint: str
) -> None:
    assert before in V4
    with pytest.raises(PolicyError, match="invalid") as refused:
        parse_policy(V4.replace(before, after))
    assert complaint in str(refused.value)


def test_policy_show_says_each_amount_in_its_currency() -> None:
    from client.policy_view import load_named

    shown = policy_view.as_text(describe(load_named(POLICIES, "standard-v4")))
    assert "approval.auto_approve_limit               50.00 USD (5000 minor units)" in shown
    assert "currencies.JPY.auto_approve_limit         7500 JPY (7500 minor units)" in shown
    assert "currencies.GBP.authority.support          160.00 GBP" in shown
    old = policy_view.as_text(describe(load_named(POLICIES, "standard-v3")))
    assert "auto_approve_limit         50.00 (5000 minor units)" in old
    # No thousands separator: every other amount the product prints has none.
    assert "1000.00 (100000 minor units)" in old and "1,000" not in old
    changes = policy_view.diff_as_text(
        diff(load_named(POLICIES, "standard-v3"), load_named(POLICIES, "standard-v4"))
    )
    assert "added    currency" in changes and "- -> 7500 JPY" in changes
    # The rule for currencies the policy does not name changes with `currency`: said so.
    assert "a refund in another currency waits for the most senior role" in changes
    unchanged = policy_view.diff_as_text(
        diff(load_named(POLICIES, "standard-v2"), load_named(POLICIES, "standard-v3"))
    )
    assert "how amounts apply" not in unchanged
