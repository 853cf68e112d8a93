"""Above the policy's evidence threshold a reviewer says what they checked: the approval is
refused without it (nothing changes), its words go into the audit and the status, and the
first of two approvers' evidence serves the second."""

from __future__ import annotations

from client.settings import PROJECT_ROOT
from tests.unit.test_refund_case import Clock, new_case
from workflows.policy import pin_policy
from workflows.refund import views
from workflows.refund.case import RefundCase
from workflows.states import Awaiting
from workflows.wording import customer_view

V4 = (PROJECT_ROOT / "policies" / "standard-v4.toml").read_text()


def case_with(evidence_above: int, second_above: int = 100000) -> RefundCase:
    """A 255.00 USD TV refund under v4 with the thresholds given (minor units)."""
    text = V4.replace(
        "evidence_required_above = 50000", f"evidence_required_above = {evidence_above}"
    )
    text = text.replace("second_approver_above = 100000", f"second_approver_above = {second_above}")
    case, _ = new_case()
    case = RefundCase(case.inp.model_copy(update={"policy": pin_policy(text)}), Clock())
    case.p.reserved = True
    return case


def test_above_the_threshold_an_approval_says_what_was_checked() -> None:
    case = case_with(evidence_above=20000)
    refused = case.approval_refusal("li", "lead", None) or ""
    assert refused.startswith("evidence is required above 200.00 USD: say what you checked")
    assert case.approval_refusal("li", "lead", None, "   ") == refused  # blank says nothing
    assert case.approval_refusal("li", "lead", None, "photos in ticket 123") is None
    # Approving less decides all of it, so it needs evidence too (a trial: 490.00 of a
    # 600.00 refund, above the 500.00 threshold, was approved and paid without any).
    assert case.approval_refusal("li", "lead", 20000) == (
        f"{refused} (approving less than its 255.00 USD decides all of it)"
    )
    assert case.approval_refusal("li", "lead", 20000, "photos in ticket 123") is None


def test_below_the_threshold_nothing_is_asked() -> None:
    assert case_with(evidence_above=50000).approval_refusal("li", "lead", None) is None


def test_the_first_approvers_evidence_serves_the_second() -> None:
    case = case_with(evidence_above=20000, second_above=20000)
    assert case.first_of_two_approvals("li", "lead", "api", None, "; evidence checked: photo")
    case.p.evidence = "li: photo"
    assert case.approval_refusal("mei", "lead", None) is None
    assert views.status(case).evidence == "li: photo"
    assert case.p.timeline[-1].reason.endswith("; evidence checked: photo")


def test_a_first_approver_approving_less_is_not_yet_the_customers_refund() -> None:
    case = case_with(evidence_above=50000, second_above=10000)
    case.p.awaiting = Awaiting.REVIEWER
    assert views.status(case).action_by == "two different reviewers with the lead role or above"
    case.p.amount = 12000  # the first of two approvers approves 120.00 of 255.00
    assert case.first_of_two_approvals("li", "lead", "api")
    told = views.facts(case)
    assert told.amount == 25500 and "255.00 USD" in views.status(case).message
    # The tracking view's amount says the same as its message (a trial: 120.00 beside 255.00).
    assert customer_view(views.status(case))["amount"] == 25500


def test_a_first_approver_cannot_cut_a_refund_below_the_four_eyes_threshold_alone() -> None:
    """A trial: finance approved 900.00 of a 1500.00 refund and it was paid with no second
    approver. Approving less decides all of it, so it takes two people too."""
    case = case_with(evidence_above=50000, second_above=20000)  # 255.00 USD: two approve
    assert case.approval_refusal("fang", "finance", 15000) == (
        "two people must approve this 255.00 USD refund: approving 150.00 USD of it alone"
        " would decide all of it; approve it as the first of two (the second approver may"
        " approve less)"
    )
    assert case.approval_refusal("fang", "finance", 21000) is None  # still two to decide
    assert case.first_of_two_approvals("fang", "finance", "api")
    assert case.approval_refusal("mei", "finance", 15000) is None  # the second of two
