"""Money refunded on an order around refundflow withholds the policy's auto-approval: the
words a reviewer reads, and the eligibility answer that tells it ahead of time."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.unit.test_eligibility import NOW, ORDER, V2, ask
from workflows.eligibility import check_eligibility
from workflows.money_around import MoneyAround, money_around_refusal

FOUND = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
DASHBOARD = MoneyAround(
    kind="provider_money_above_ledger", found_at=FOUND, beyond=3000, currency="USD"
)
ABOVE = MoneyAround(kind="paid_above_capture", found_at=FOUND, beyond=500, currency="USD")


def test_no_finding_withholds_nothing() -> None:
    assert money_around_refusal("ord_1", []) is None


def test_the_refusal_says_what_was_found_and_when_the_louder_first() -> None:
    assert money_around_refusal("ord_1", [DASHBOARD]) == (
        "order ord_1 had 30.00 USD refunded by the payment provider that refundflow's refunds"
        " do not account for (at its dashboard?), as reconciliation found on 2026-11-26 09:30"
        " UTC (provider_money_above_ledger): a reviewer checks this refund is not for what"
        " was refunded there"
    )
    both = money_around_refusal("ord_1", [DASHBOARD, ABOVE]) or ""
    assert both.startswith("order ord_1 has paid out 5.00 USD more than its capture,"), both


def test_eligibility_says_a_reviewer_decides_what_the_policy_alone_would_approve() -> None:
    cases = ask(lines=[{"sku": "CASE", "quantity": 2}])
    assert check_eligibility(V2, cases, ORDER, 33000, NOW, around=[]).outcome == "auto_approved"
    answer = check_eligibility(V2, cases, ORDER, 33000, NOW, around=[DASHBOARD])
    assert answer.eligible and answer.outcome == "needs_review" and not answer.auto_approve
    assert "30.00 USD refunded by the payment provider" in (
        answer.auto_approve_refused_because or ""
    )
    assert "a reviewer checks this refund" in answer.summary, answer.summary
