"""Auto-approval budgets (policy v3, issue 10 item 3), pure: the arithmetic, what a
withheld auto-approval becomes, the eligibility answer, the reservation a request makes,
and how `refundflow status` shows a customer's recent refunds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client import render
from client.policy_source import load_policy
from client.settings import PROJECT_ROOT
from worker.cli import build_parser
from workflows.budgets import (
    BudgetUse,
    budget_of,
    budget_refusal,
    customer_key,
    withhold_auto_approval,
)
from workflows.eligibility import check_eligibility, ledger_request
from workflows.models import (
    AutoApproveBudget,
    OrderLine,
    OrderSnapshot,
    RefundRequest,
    ResolvedRefund,
    StatusView,
)
from workflows.policy import PolicyError, evaluate, parse_policy
from workflows.read_models import CustomerHistory, CustomerSpend
from workflows.states import Awaiting, RefundState

POLICIES = PROJECT_ROOT / "policies"
V2 = load_policy(POLICIES, "standard-v2")
V3 = load_policy(POLICIES, "standard-v3")
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
BUDGET = AutoApproveBudget(per_order=10000, per_customer=20000, window_days=30)

ORDER = OrderSnapshot(
    order_id="ord_1",
    currency="USD",
    lines=[
        OrderLine(sku="JACKET", quantity=1, unit_price=20000, category="general"),
        OrderLine(sku="PEN", quantity=1, unit_price=100, category="general"),
    ],
    captured_amount=20100,
    payment_reference="pay_1",
    delivered_at=NOW - timedelta(days=3),
)


def ask(amount: int, requested_by: str = "cust_1") -> RefundRequest:
    return RefundRequest(
        refund_key="k",
        order_id="ord_1",
        amount=amount,
        reason_code="changed_mind",
        channel="web",
        requested_by=requested_by,
    )


def refusal(amount: int, used: BudgetUse, customer: str | None = "cust_1") -> str | None:
    return budget_refusal(amount, BUDGET, used, order_id="ord_1", customer=customer, currency="USD")


# --- the policy -----------------------------------------------------------------------------


def test_v3_has_budgets_and_earlier_versions_have_none() -> None:
    budgets = parse_policy(V3.document).budgets
    assert budgets is not None
    assert (
        budgets.auto_approve_per_order,
        budgets.auto_approve_per_customer,
        budgets.customer_window_days,
    ) == (10000, 20000, 30)
    assert parse_policy(V2.document).budgets is None
    assert budget_of(parse_policy(V3.document)) == BUDGET
    assert budget_of(parse_policy(V2.document)) is None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("auto_approve_per_order = 10000", "auto_approve_per_order = -1"),
        ("customer_window_days = 30", "customer_window_days = 0"),
        # A misspelt setting is refused, not silently ignored.
        ("auto_approve_per_order = 10000", "per_order = 10000"),
    ],
)
def test_a_broken_budgets_section_is_refused(old: str, new: str) -> None:
    assert old in V3.document
    with pytest.raises(PolicyError, match="budgets"):
        parse_policy(V3.document.replace(old, new))


# --- the arithmetic -------------------------------------------------------------------------


def test_the_order_budget_is_reached_exactly_and_not_passed() -> None:
    assert refusal(10000, BudgetUse()) is None
    assert refusal(1, BudgetUse(order=9999)) is None
    assert refusal(2, BudgetUse(order=9999)) == (
        "auto-approval budget for order ord_1 is 100.00 USD and 99.99 USD of it is used:"
        " a reviewer decides"
    )


def test_the_customer_budget_counts_across_orders_and_names_the_window() -> None:
    assert refusal(1000, BudgetUse(order=0, customer=19000)) is None
    assert refusal(1001, BudgetUse(order=0, customer=19000)) == (
        "auto-approval budget for customer cust_1 is 200.00 USD over 30 days and 190.00 USD"
        " of it is used: a reviewer decides"
    )
    # Without a known customer only the order's budget applies.
    assert refusal(1001, BudgetUse(customer=19000), customer=None) is None


def test_the_order_budget_is_named_first_when_both_are_used_up() -> None:
    said = refusal(5000, BudgetUse(order=9000, customer=19000))
    assert said is not None and said.startswith("auto-approval budget for order ord_1")


def test_an_unset_budget_never_withholds() -> None:
    open_ended = AutoApproveBudget(per_order=None, per_customer=None)
    assert (
        budget_refusal(
            10**12,
            open_ended,
            BudgetUse(order=10**12, customer=10**12),
            order_id="o",
            customer="c",
            currency="USD",
        )
        is None
    )


def test_customers_are_compared_without_case_or_surrounding_space() -> None:
    assert customer_key(" Cust_1 ") == customer_key("cust_1") == "cust_1"


@given(
    amounts=st.lists(st.integers(min_value=1, max_value=5000), max_size=40),
    per_order=st.integers(min_value=0, max_value=30000),
    per_customer=st.integers(min_value=0, max_value=30000),
    already=st.integers(min_value=0, max_value=20000),
)
def test_requests_judged_one_at_a_time_never_beat_the_budgets(
    amounts: list[int], per_order: int, per_customer: int, already: int
) -> None:
    """However a sum is split, what is auto-approved stays within both budgets; and a
    request is withheld only when it really would not fit (nothing is held back for
    nothing): the store's serial order under its locks."""
    budget = AutoApproveBudget(per_order=per_order, per_customer=per_customer)
    order_used, customer_used = 0, already
    for amount in amounts:
        used = BudgetUse(order=order_used, customer=customer_used)
        said = budget_refusal(amount, budget, used, order_id="o", customer="c", currency="USD")
        fits = order_used + amount <= per_order and customer_used + amount <= per_customer
        assert (said is None) == fits
        if said is None:
            order_used += amount
            customer_used += amount
    assert order_used <= per_order
    assert customer_used - already <= max(per_customer - already, 0)


# --- what a withheld auto-approval becomes ---------------------------------------------------


def test_a_withheld_auto_approval_goes_to_the_least_senior_reviewer_and_says_why() -> None:
    policy = parse_policy(V3.document)
    decision = evaluate(policy, ORDER, ResolvedRefund(amount=4998, currency="USD"), "damaged", NOW)
    assert decision.auto_approve
    reason = refusal(4998, BudgetUse(order=9999))
    assert reason is not None
    withheld = withhold_auto_approval(policy, decision, reason, "USD")
    assert withheld.eligible and not withheld.auto_approve
    assert withheld.approval_by == "support"
    assert withheld.outcomes[-1].rule_id == "auto-approve"
    assert withheld.outcomes[-1].message == (
        "Auto-approval budget for order ord_1 is 100.00 USD and 99.99 USD of it is used:"
        " a reviewer decides (role support or above)."
    )
    assert [o.rule_id for o in withheld.outcomes] == [o.rule_id for o in decision.outcomes]
    # A decision that was not auto-approved is left as it was.
    assert withhold_auto_approval(policy, withheld, reason, "USD") == withheld


def test_nobody_to_approve_a_withheld_refund_makes_it_ineligible_not_stuck() -> None:
    policy = parse_policy(V3.document).model_copy(update={"authority": {"support": 100}})
    decision = evaluate(policy, ORDER, ResolvedRefund(amount=4998, currency="USD"), "damaged", NOW)
    withheld = withhold_auto_approval(policy, decision, "the budget is used", "USD")
    assert not withheld.eligible and withheld.approval_by is None
    assert any(o.rule_id == "approval-authority" and not o.passed for o in withheld.outcomes)


# --- the eligibility answer -----------------------------------------------------------------


def test_eligibility_says_needs_review_with_the_budget_when_it_is_spent() -> None:
    fits = check_eligibility(V3, ask(4999), ORDER, 20100, NOW, budget_use=BudgetUse(order=5000))
    assert fits.outcome == "auto_approved" and fits.auto_approve_refused_because is None

    spent = check_eligibility(V3, ask(4998), ORDER, 20100, NOW, budget_use=BudgetUse(order=9999))
    assert spent.eligible and spent.outcome == "needs_review" and not spent.auto_approve
    assert spent.approval_by == "support" and spent.refund_amount == 4998
    assert spent.auto_approve_refused_because == (
        "auto-approval budget for order ord_1 is 100.00 USD and 99.99 USD of it is used:"
        " a reviewer decides"
    )
    assert spent.summary == (
        "Eligible: 49.98 USD, once a reviewer (role support or above) approves it. The"
        " auto-approval budget for order ord_1 is 100.00 USD and 99.99 USD of it is used."
    )
    assert all(r.passed for r in spent.rules)


def test_budgets_apply_only_to_policies_that_have_them_and_only_when_asked() -> None:
    used_up = BudgetUse(order=10**6, customer=10**6)
    assert check_eligibility(V2, ask(4998), ORDER, 20100, NOW, budget_use=used_up).outcome == (
        "auto_approved"
    )
    # Without what is used (the edge: the store judges budgets under the lock), the
    # answer is the policy's alone.
    assert check_eligibility(V3, ask(4998), ORDER, 20100, NOW).outcome == "auto_approved"
    # Above the per-refund limit a reviewer decides anyway, and no budget is named.
    big = check_eligibility(V3, ask(6000), ORDER, 20100, NOW, budget_use=used_up)
    assert big.outcome == "needs_review" and big.auto_approve_refused_because is None


# --- the reservation a request makes ---------------------------------------------------------


def test_the_reservation_carries_the_requester_the_policys_word_and_its_budgets() -> None:
    request = ask(4998, requested_by="Cust_1")
    resolved = ResolvedRefund(amount=4998, currency="USD")
    v3 = ledger_request(parse_policy(V3.document), request, ORDER, resolved, "rf_1", 4998, True)
    assert (v3.requested_by, v3.auto_approve, v3.budget) == ("Cust_1", True, BUDGET)
    v2 = ledger_request(parse_policy(V2.document), request, ORDER, resolved, "rf_1", 4998)
    assert (v2.auto_approve, v2.budget) == (False, None)


# --- what reviewers see ----------------------------------------------------------------------


def status_view() -> StatusView:
    return StatusView(
        refund_id="rf_1",
        refund_key="k",
        order_id="ord_1",
        state=RefundState.PENDING_REVIEW,
        cancel_reason=None,
        amount=4998,
        requested_amount=4998,
        currency="USD",
        awaiting=Awaiting.REVIEWER,
        escalation_level=0,
        policy_version="standard@v3#0123456789ab",
        reason_code="changed_mind",
        channel="web",
        evidence_required=False,
        provider_refund_id=None,
        timeline=[],
        next_step="a reviewer decides",
        eta=None,
        message="waiting",
    )


def test_status_shows_the_customers_recent_refunds() -> None:
    history = CustomerHistory(
        customer="cust_1",
        window_days=30,
        totals=[CustomerSpend(currency="USD", refunds=3, amount=14997, auto_approved=9999)],
    )
    shown = render.status(status_view(), None, history)
    assert (
        "  requester  cust_1: 3 other refunds in the last 30 days, 149.97 USD"
        " (99.99 USD auto-approved)"
    ) in shown.splitlines()
    nothing = CustomerHistory(customer="cust_1", window_days=30, totals=[])
    assert "cust_1: no other refunds in the last 30 days" in render.status(
        status_view(), None, nothing
    )
    assert "requester" not in render.status(status_view())


def test_status_says_why_a_reviewer_decides_while_one_does() -> None:
    """The same request under another key waits for a reviewer; the CLI's status says so
    (a trial found it only in --json and the console)."""
    note = "Refund rf_0 (paid) asked for the same 49.98 USD of order ord_1 for changed_mind"
    waiting = status_view().model_copy(update={"policy_notes": ["No final-sale.", note]})
    shown = render.status(waiting).splitlines()
    assert shown[shown.index("  policy says") + 2] == f"    - {note}"
    done = waiting.model_copy(update={"awaiting": Awaiting.NOTHING})
    assert "  policy says" not in render.status(done).splitlines()


def test_eligibility_on_the_command_line_takes_the_requester_whose_budget_counts() -> None:
    asked = ["eligibility", "--order", "ord_1", "--amount", "100", "--reason", "damaged"]
    assert build_parser().parse_args([*asked, "--requested-by", "cust_1"]).requested_by == (
        "cust_1"
    )
    # Unset: a customer asks for themselves, staff for the anonymous `eligibility` customer
    # (client/cli/acting.py: requester, once it knows who acts).
    assert build_parser().parse_args(asked).requested_by is None
