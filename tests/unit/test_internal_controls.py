"""A customer's eligibility answer and policy view name no internal control: not the
auto-approval budget or limit, not which staff role approves (a trial read "The
auto-approval budget for customer cust_200 is 200.00 USD over 30 days and 180.00 USD of it
is used"). Whether a person decides, what it pays and the policy's terms stay."""

from __future__ import annotations

from api.internal_controls import policy_terms, without_internal_controls
from client.policy_view import describe
from client.settings import PROJECT_ROOT
from workflows.eligibility import EligibilityAnswer
from workflows.policy import pin_policy
from workflows.rules import RuleOutcome

BUDGET = (
    "the auto-approval budget for customer cust_200 is 200.00 USD over 30 days and 180.00"
    " USD of it is used: a reviewer decides"
)


def answer(**fields: object) -> EligibilityAnswer:
    values: dict[str, object] = {
        "eligible": True,
        "outcome": "needs_review",
        "order_id": "ord_1",
        "currency": "USD",
        "requested_amount": 4500,
        "fee": 0,
        "fees": [],
        "refund_amount": 4500,
        "max_refundable": 9000,
        "evidence_required": False,
        "auto_approve": False,
        "approval_by": "support",
        "policy_version": "standard@v4",
        "rules": [
            RuleOutcome(rule_id="return-window", passed=True, message="Within 30 days."),
            RuleOutcome(
                rule_id="auto-approve", passed=True, message=f"{BUDGET} (role support or above)."
            ),
        ],
        "summary": f"Eligible: 45.00 USD, once a reviewer (role support or above) approves it."
        f" The {BUDGET}.",
        "auto_approve_refused_because": BUDGET,
    }
    return EligibilityAnswer.model_validate(values | fields)


def test_a_customer_reads_that_a_person_decides_not_the_budget_or_the_role() -> None:
    told = without_internal_controls(answer())
    assert told.summary == "Eligible: 45.00 USD, once a reviewer approves it."
    assert (told.approval_by, told.auto_approve_refused_because) == (None, None)
    said = told.model_dump_json()
    assert "budget" not in said and "support" not in said, said
    assert told.rules[0].message == "Within 30 days."  # terms stay
    assert told.rules[1].message == "A person decides it: once a reviewer approves it."
    two = without_internal_controls(answer(two_approvers=True))
    assert two.summary == "Eligible: 45.00 USD, once two different reviewers approve it."
    # Not eligible, with a withheld auto-approval's words: no role either (a trial).
    summary = "Not eligible: 1 x CASE is already held or refunded by another refund."
    refused = without_internal_controls(
        answer(eligible=False, outcome="not_eligible", summary=summary)
    )
    assert "support" not in refused.model_dump_json() and "budget" not in refused.rules[1].message
    assert refused.rules[1].message.startswith("Nobody approves it")


AT_MOST = "Approved automatically: at most 50.00 USD."


def test_an_automatic_approval_does_not_say_up_to_what() -> None:
    auto = answer(
        outcome="auto_approved",
        auto_approve=True,
        approval_by=None,
        auto_approve_refused_because=None,
        summary="Eligible: 45.00 USD is refunded automatically, no review needed.",
        rules=[RuleOutcome(rule_id="auto-approve", passed=True, message=AT_MOST)],
    )
    told = without_internal_controls(auto)
    assert told.rules[0].message == "Approved automatically."
    assert told.summary == auto.summary


def test_a_customer_reads_the_policys_terms_not_its_controls() -> None:
    text = (PROJECT_ROOT / "policies" / "standard-v4.toml").read_text()
    whole = describe(pin_policy(text))
    terms = policy_terms(whole)["settings"]
    assert terms["eligibility.return_window_days"] == 30
    assert terms["fees.restocking_bps.electronics"] == 1500
    assert set(terms) < set(whole["settings"])
    hidden = ("approval.", "authority.", "budgets.", "currencies.")
    assert not [key for key in terms if key.startswith(hidden)], terms
    assert any(key.startswith(hidden) for key in whole["settings"])
