"""Policy v1: evaluation rules and pinning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.policy_source import load_policy
from client.settings import PROJECT_ROOT
from workflows.models import (
    OrderLine,
    OrderSnapshot,
    RefundLineRequest,
    RefundRequest,
    ResolvedRefund,
)
from workflows.policy import PolicyError, evaluate, parse_policy, pin_policy
from workflows.validation import resolve_request

POLICIES = PROJECT_ROOT / "policies"
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
STANDARD = parse_policy((POLICIES / "standard-v1.toml").read_text())


def order(
    amount: int, category: str = "general", delivered_days_ago: int | None = 3
) -> OrderSnapshot:
    return OrderSnapshot(
        order_id="ord_1",
        currency="USD",
        lines=[OrderLine(sku="SKU-1", quantity=1, unit_price=amount, category=category)],
        captured_amount=amount,
        payment_reference="pay_1",
        delivered_at=None
        if delivered_days_ago is None
        else NOW - timedelta(days=delivered_days_ago),
    )


def resolved(amount: int) -> ResolvedRefund:
    return ResolvedRefund(amount=amount, currency="USD")


def test_default_policy_auto_approves_up_to_5000_and_reviews_above() -> None:
    small = evaluate(STANDARD, order(5000), resolved(5000), "damaged", NOW)
    large = evaluate(STANDARD, order(5001), resolved(5001), "damaged", NOW)
    assert small.eligible and small.auto_approve
    assert large.eligible and not large.auto_approve
    assert STANDARD.refund.trigger == "on_approval"


@given(
    amount=st.integers(min_value=1, max_value=10**9), days=st.integers(min_value=0, max_value=400)
)
def test_auto_approval_implies_eligible_and_within_limit(amount: int, days: int) -> None:
    decision = evaluate(
        STANDARD, order(amount, delivered_days_ago=days), resolved(amount), "changed_mind", NOW
    )
    if decision.auto_approve:
        assert decision.eligible and amount <= STANDARD.approval.auto_approve_limit
    assert decision.eligible == (days <= STANDARD.eligibility.return_window_days)


def test_return_window_closes() -> None:
    decision = evaluate(
        STANDARD, order(1000, delivered_days_ago=31), resolved(1000), "damaged", NOW
    )
    assert not decision.eligible
    assert [o.rule_id for o in decision.failed] == ["return-window"]


def test_undelivered_order_is_inside_the_window() -> None:
    decision = evaluate(
        STANDARD, order(1000, delivered_days_ago=None), resolved(1000), "not_received", NOW
    )
    assert decision.eligible


def test_final_sale_only_for_seller_fault() -> None:
    mind = evaluate(STANDARD, order(1000, "final_sale"), resolved(1000), "changed_mind", NOW)
    broken = evaluate(STANDARD, order(1000, "final_sale"), resolved(1000), "damaged", NOW)
    assert not mind.eligible and [o.rule_id for o in mind.failed] == ["final-sale"]
    assert broken.eligible


def test_evidence_required_above_limit_forces_review() -> None:
    decision = evaluate(STANDARD, order(60000), resolved(60000), "damaged", NOW)
    assert decision.evidence_required and not decision.auto_approve


def test_pin_is_a_content_hash_so_any_edit_changes_it() -> None:
    text = (POLICIES / "standard-v1.toml").read_text()
    a = pin_policy(text)
    b = pin_policy(text.replace("auto_approve_limit = 5000", "auto_approve_limit = 6000"))
    assert (a.name, a.version) == (b.name, b.version) == ("standard", 1)
    assert a.content_hash != b.content_hash
    assert a.label.startswith("standard@v1#")


def test_every_shipped_policy_parses() -> None:
    shipped = sorted(POLICIES.glob("*.toml"))
    assert {"standard-v3.toml", "returns-v1.toml"} <= {p.name for p in shipped}
    for path in shipped:
        pinned = load_policy(POLICIES, path.stem)
        assert path.stem == f"{pinned.name}-v{pinned.version}"


def test_broken_policy_is_refused_clearly() -> None:
    with pytest.raises(PolicyError, match="not valid TOML"):
        parse_policy("name = ")
    with pytest.raises(PolicyError, match="invalid"):
        parse_policy('name = "x"\nversion = 1\n')


def test_from_v3_a_final_sale_line_is_refused_beside_others_for_a_no_fault_reason() -> None:
    order = OrderSnapshot(
        order_id="ord_1",
        currency="USD",
        lines=[
            OrderLine(sku="GIFT", quantity=1, unit_price=20000, category="gift_card"),
            OrderLine(sku="PEN", quantity=1, unit_price=100, category="general"),
        ],
        captured_amount=20100,
        payment_reference="pay_1",
        delivered_at=datetime(2026, 11, 20, tzinfo=UTC),
    )

    def decide(policy: str, reason: str) -> bool:
        request = RefundRequest(
            refund_key="k",
            order_id="ord_1",
            lines=[
                RefundLineRequest(sku="GIFT", quantity=1),
                RefundLineRequest(sku="PEN", quantity=1),
            ],
            reason_code=reason,
            channel="web",
            requested_by="c1",
        )
        pinned = parse_policy(load_policy(POLICIES, policy).document)
        now = datetime(2026, 11, 26, tzinfo=UTC)
        return evaluate(pinned, order, resolve_request(request, order), reason, now).eligible

    assert decide("standard-v2", "changed_mind")  # pinned v2 refunds keep v2's rule
    assert not decide("standard-v3", "changed_mind")
    assert decide("standard-v3", "damaged")  # the seller's fault: refundable


def test_nothing_to_return_reasons_are_for_a_returns_policy_and_named_once() -> None:
    returns = (PROJECT_ROOT / "policies" / "returns-v2.toml").read_text()
    twice = returns.replace(
        '["not_received", "late_delivery", "duplicate_charge"]', '["not_received", "not_received"]'
    )
    with pytest.raises(PolicyError, match="names a reason twice"):
        parse_policy(twice)
    on_approval = returns.replace('trigger = "on_item_received"', 'trigger = "on_approval"')
    with pytest.raises(PolicyError, match="is for trigger = 'on_item_received'"):
        parse_policy(on_approval)
    unknown = returns.replace('"duplicate_charge"]', '"bored"]')
    with pytest.raises(PolicyError):
        parse_policy(unknown)
