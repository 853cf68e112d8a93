"""The refund's state and transitions without Temporal: what the workflow does to a refund,
driven with plain values and a clock we move by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from client.policy_source import load_policy
from tests.unit.tv_order import ORDER, POLICIES, START
from workflows.models import (
    ProviderRefundResult,
    ProviderSettlement,
    RefundLineRequest,
    RefundRequest,
    RefundWorkflowInput,
)
from workflows.refund import patches, views
from workflows.refund.case import (
    MAX_ESCALATION,
    MAX_REQUEST_LAG,
    ContinuedRefundInput,
    Progress,
    RefundCase,
    asked_at,
)
from workflows.refund.provider_cancel import money_out_refusal
from workflows.refund.settlement_hints import not_its_payment
from workflows.states import (
    Awaiting,
    CancelReason,
    InvalidTransition,
    OperatorDecision,
    RefundEvent,
    RefundState,
    TimelineEvent,
)
from workflows.validation import resolve_request


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def new_case(reason: str = "changed_mind", policy: str = "standard-v2") -> tuple[RefundCase, Clock]:
    request = RefundRequest(
        refund_key="k1",
        order_id="ord_1",
        lines=[RefundLineRequest(sku="TV", quantity=1)],
        reason_code=reason,
        channel="web",
        requested_by="cust_1",
    )
    inp = RefundWorkflowInput(
        refund_id="rf_test",
        request=request,
        order=ORDER,
        resolved=resolve_request(request, ORDER),
        policy=load_policy(POLICIES, policy),
    )
    clock = Clock()
    return RefundCase(inp, clock), clock


def test_fee_is_kept_back_from_the_start_and_a_reviewer_is_needed() -> None:
    case, _ = new_case()
    assert (case.p.max_amount, case.p.amount) == (25500, 25500)  # 15 % electronics fee
    assert case.decision.eligible and not case.decision.auto_approve
    assert case.decision.approval_by == "lead"


def test_apply_moves_along_the_table_records_and_notifies_once() -> None:
    case, clock = new_case()
    case.p.reserved = True
    clock.now += timedelta(minutes=5)
    case.apply(RefundEvent.APPROVE, "li", "support", "approved")
    assert case.p.state is RefundState.APPROVED and case.p.awaiting is Awaiting.NOTHING
    entry = case.p.timeline[-1]
    assert (entry.seq, entry.event, entry.from_state, entry.at) == (
        1,
        "approve",
        RefundState.PENDING_REVIEW,
        clock.now,
    )
    assert [n.seq for n in case.p.notices] == [1]
    assert case.p.notices[0].facts.state is RefundState.APPROVED


def test_a_refused_transition_changes_nothing() -> None:
    case, _ = new_case()
    case.apply(RefundEvent.REJECT, "bob", "support", "no")
    before = case.p.model_copy(deep=True)
    with pytest.raises(InvalidTransition, match="no further action"):
        case.apply(RefundEvent.APPROVE, "li", "support", "approved")
    assert case.p == before
    assert case.p.cancel_reason is CancelReason.REJECTED


def test_escalation_stops_at_the_top_level_and_is_recorded_each_time() -> None:
    case, _ = new_case()
    for _ in range(4):
        case.escalate("timer", "late")
    assert case.p.escalation == MAX_ESCALATION
    assert [e.event for e in case.p.timeline] == [TimelineEvent.ESCALATED.value] * 4
    assert case.p.timeline[-1].reason == "level 2: late"


def test_review_eta_follows_the_policy_deadline_ladder() -> None:
    case, _ = new_case()
    # Just asked, the policy's verdict pending: received, no date to promise yet.
    assert views.eta(case) == (None, None, None)
    case.set_awaiting(Awaiting.REVIEWER)

    def review_due() -> datetime:
        latest = views.eta(case)[1]
        assert latest is not None
        return latest

    due = [review_due()]
    for _ in range(2):
        case.escalate("timer", "late")
        due.append(review_due())
    policy = case.policy
    assert due == [START + policy.review_deadline(level) for level in range(3)]
    assert due[0] < due[1] <= due[2]


def test_approval_rules_come_from_the_pinned_policy() -> None:
    case, _ = new_case()
    assert "still being checked" in (case.approval_refusal("li", "lead", None) or "")
    case.p.reserved = True
    assert case.approval_refusal("li", "lead", None) is None
    assert "needs the lead role" in (case.approval_refusal("sam", "support", None) or "")
    assert "more than the 255.00 USD" in (case.approval_refusal("li", "lead", 25501) or "")
    assert "unknown role 'intern'" in (case.approval_refusal("x", "intern", None) or "")


def test_operators_act_only_after_a_payment_failure_and_only_once() -> None:
    case, _ = new_case()
    case.set_awaiting(Awaiting.PAYMENT_PROVIDER)
    # An operator reads who the refund waits for, not the enum's name (a trial's
    # "awaiting payment_provider").
    assert case.operator_refusal(OperatorDecision.RETRY) == (
        "cannot retry: the refund is pending_review, waiting for the payment provider"
        " (nothing for staff to do); operators act only after a payment failure"
    )
    case.p.payment_attempt = 2  # another operator's retry won the race
    assert case.operator_refusal(OperatorDecision.PAID_ELSEWHERE) == (
        "cannot mark it paid elsewhere: the refund is pending_review, paying again on an"
        " operator's retry (attempt 2), waiting for the payment provider (nothing for staff"
        " to do); operators act only after a payment failure"
    )
    case.set_awaiting(Awaiting.OPERATOR)
    assert case.operator_refusal(OperatorDecision.RETRY) is None
    case.p.operator_action = OperatorDecision.PAID_ELSEWHERE
    assert "an operator has already chosen: paid elsewhere;" in (
        case.operator_refusal(OperatorDecision.RETRY) or ""
    )
    case.p.state = RefundState.CANCELLED
    assert "cannot cancel: the refund is cancelled (closed);" in (
        case.operator_refusal(OperatorDecision.CANCEL) or ""
    )


def test_the_first_settlement_wins_and_only_success_counts_as_paid() -> None:
    case, _ = new_case()
    failed = ProviderSettlement(provider_refund_id="re_1", status="failed", source="webhook")
    case.record_settlement(failed)
    case.record_settlement(failed.model_copy(update={"status": "succeeded"}))
    assert case.paid_elsewhere() is None
    case.record_settlement(
        ProviderSettlement(provider_refund_id="re_2", status="succeeded", source="poll")
    )
    assert case.paid_elsewhere() == "re_2"
    assert case.p.settled_by == {"re_1": "settled via webhook", "re_2": "settled via poll"}


def test_unrecorded_entries_are_handed_out_once_recorded() -> None:
    case, _ = new_case()
    case.p.reserved = True
    case.apply(RefundEvent.APPROVE, "li", "support", "ok")
    case.apply(RefundEvent.START_REFUND, "policy", "workflow", "refund on approval")
    entries, notices = case.unrecorded()
    assert [e.seq for e in entries] == [1, 2] and [n.seq for n in notices] == [1, 2]
    case.mark_recorded(2)
    assert case.unrecorded() == ([], []) and case.p.notices == []


def test_the_whole_state_round_trips_as_json() -> None:
    case, _ = new_case()
    case.p.reserved = True
    case.apply(RefundEvent.APPROVE, "li", "support", "ok")
    case.record_settlement(
        ProviderSettlement(provider_refund_id="re_1", status="succeeded", source="poll")
    )
    again = type(case.p).model_validate_json(case.p.model_dump_json())
    assert again == case.p


def test_nobody_approves_or_rejects_a_refund_they_requested() -> None:
    case, _ = new_case()
    case.p.reserved = True
    for name in ("cust_1", " CUST_1 "):
        assert "cannot approve it" in (case.approval_refusal(name, "finance", None) or "")
        assert "cannot reject it" in (case.own_refund_refusal(name, "reject") or "")
    assert case.approval_refusal("li", "lead", None) is None


def test_staff_who_submitted_a_refund_for_a_customer_do_not_decide_on_it() -> None:
    case, _ = new_case()
    request = case.inp.request.model_copy(update={"submitted_by": "li"})
    case = RefundCase(case.inp.model_copy(update={"request": request}), Clock())
    case.p.reserved = True
    refusal = case.approval_refusal("Li", "lead", None) or ""
    assert "li submitted this refund for cust_1" in refusal.casefold()
    assert "cannot reject it" in (case.own_refund_refusal("li", "reject") or "")
    assert case.approval_refusal("fang", "finance", None) is None
    assert views.status(case).submitted_by == "li"
    assert views.status(case).requested_by == "cust_1"


def test_a_claimed_request_time_is_bounded_by_the_workflow_start() -> None:
    case, clock = new_case()
    base, started = case.inp, clock.now
    far_past = base.model_copy(update={"asked_at": started - timedelta(days=40)})
    future = base.model_copy(update={"asked_at": started + timedelta(days=1)})
    recent = base.model_copy(update={"asked_at": started - timedelta(minutes=3)})
    assert asked_at(far_past, started) == started - MAX_REQUEST_LAG
    assert asked_at(future, started) == started
    assert asked_at(recent, started) == started - timedelta(minutes=3)
    # A request "made" 40 days ago cannot reopen a return window that is closed now.
    late_order = ORDER.model_copy(update={"delivered_at": started - timedelta(days=35)})
    forged = far_past.model_copy(update={"order": late_order})
    assert not RefundCase(forged, clock).decision.eligible


def test_the_web_ui_details_say_what_an_operator_needs() -> None:
    case, _ = new_case()
    case.set_awaiting(Awaiting.REVIEWER)
    shown = views.details(case)
    assert "255.00 USD (requested 300.00 USD, fee 45.00 USD)" in shown
    assert "who acts: a reviewer with the lead role or above" in shown
    assert "decision due by 2026-11-27 12:00 UTC" in shown
    case.p.state = RefundState.REFUNDING
    case.set_awaiting(Awaiting.OPERATOR)
    case.p.operator_note = "refund re_1 failed: expired_card"
    assert "payment failure: refund re_1 failed: expired_card" in views.details(case)
    assert "Payment: refund re_1 failed: expired_card" in views.status(case).policy_notes
    case.p.state = RefundState.COMPLETED  # paid elsewhere: the failure is no news any more
    assert not any("expired_card" in note for note in views.status(case).policy_notes)


def test_the_web_ui_details_name_the_item_deadline_under_returns() -> None:
    case, _ = new_case(policy="returns-v1")
    case.apply(RefundEvent.AUTO_APPROVE, "policy", "policy", "within the policy")
    case.set_awaiting(Awaiting.CUSTOMER)
    assert views.eta(case)[2] == "return"
    assert "item due back by " in views.details(case)
    assert "money arrives" not in views.details(case)


def test_arrival_dates_are_told_only_once_the_provider_took_the_payment() -> None:
    """A trial read "should reach you between 4 and 11 Dec", then "could not be paid yet",
    in one second; and dates counted from the sending while the customer had to act."""
    case, _ = new_case()
    case.p.state = RefundState.REFUNDING
    case.p.refunding_since = START
    assert views.eta(case)[2] is None  # started, not yet sent
    case.set_awaiting(Awaiting.PAYMENT_PROVIDER)
    case.p.sent_unanswered = True
    assert views.eta(case)[2] is None  # sent: the provider may still refuse it
    case.p.sent_unanswered = False
    assert views.eta(case)[2] == "payment"  # it took it
    case.p.provider_instructions = "confirm your bank details"
    assert views.eta(case)[2] is None  # the customer must act first
    case.p.provider_instructions = None
    case.set_awaiting(Awaiting.OPERATOR)
    assert views.eta(case)[2] is None


def test_a_refund_on_time_at_the_provider_is_not_told_it_takes_longer() -> None:
    """Staff's escalation (a cancellation refused in Temporal) told the customer "taking
    longer than expected at the payment provider" of a refund on time (a review)."""
    case, clock = new_case()
    case.p.state = RefundState.REFUNDING
    case.p.refunding_since = clock()
    case.set_awaiting(Awaiting.PAYMENT_PROVIDER)
    case.escalate("temporal-operator", "cancellation requested in Temporal refused", tell=False)
    assert case.p.escalation == 1 and views.status(case).escalation_level == 1  # staff's
    assert views.facts(case).escalation_level == 0
    assert "taking longer" not in views.status(case).message
    clock.now += case.policy.refund_sla  # now it is late: told so
    assert views.facts(case).escalation_level == 1
    assert "taking longer" in views.status(case).message


def test_a_start_naming_a_roll_up_this_worker_does_not_know_is_refused() -> None:
    """RefundClient's starts name the roll-up they take (`started_on`): one a worker does
    not know fails its workflow task, so the refund waits for a worker that knows it rather
    than take an older path a newer worker's replay would not match (patches.StartedOn)."""
    case, _ = new_case()
    known = case.inp.model_dump() | {"started_on": patches.ALL_ABOVE}
    assert RefundWorkflowInput.model_validate(known).started_on == patches.ALL_ABOVE
    for newer in (patches.ADMIT_IN_ONE_CALL, patches.RECORD_WITH_PAYMENT):
        started = RefundWorkflowInput.model_validate(known | {"started_on": newer})
        assert started.started_on == newer
    with pytest.raises(ValidationError, match="all-above-2026-11"):
        RefundWorkflowInput.model_validate(known | {"started_on": "all-above-2027-03"})


def test_a_live_provider_refund_refuses_closing_with_the_way_out() -> None:
    case, _ = new_case()
    amount = case.p.amount

    def live(status: str, paid: int) -> ProviderRefundResult:
        return ProviderRefundResult.model_validate(
            {"provider_refund_id": "re_1", "status": status, "amount": paid, "currency": "USD"}
        )

    assert money_out_refusal(case, "cancel", live("pending", amount)) == (
        "cannot cancel: provider refund re_1 is pending, so money may still move; retry to"
        " follow it"
    )
    assert money_out_refusal(case, "cancel", live("succeeded", amount)).endswith(
        "this refund's amount: retry instead (it takes it)"
    )
    # Made at the dashboard for another amount: retrying refuses it too (a trial went round).
    assert money_out_refusal(case, "mark paid elsewhere", live("succeeded", 3000)) == (
        "cannot mark paid elsewhere: provider refund re_1 has paid 30.00 USD, not"
        f" {case.money()} (made outside refundflow?): have the provider reverse it, then retry"
    )


def test_its_own_payment_listed_in_lower_case_is_its_payment() -> None:
    # A listing recorded before the adapter upper-cased currencies (a review): no mismatch,
    # so no patch is asked and the settlement counts.
    case, _ = new_case()
    hint = ProviderSettlement(provider_refund_id="re_1", status="succeeded", source="webhook")
    listed = ProviderRefundResult.model_validate(
        {"provider_refund_id": "re_1", "status": "succeeded", "amount": case.p.amount,
         "currency": case.currency.lower()}
    )  # fmt: skip
    assert not_its_payment(case, hint, listed) is None


def test_a_continued_run_decides_as_the_first_run_was_held_back() -> None:
    """A review: the store held a refund back from auto-approval (asked twice), and its
    continued run's decision, evaluated again from the policy alone, read "Approved
    automatically" (the console's rule table, the status's notes)."""
    small = ORDER.model_copy(
        update={
            "lines": [ORDER.lines[0].model_copy(update={"unit_price": 2000})],
            "captured_amount": 2000,
        }
    )
    case, _ = new_case("damaged")
    inp = case.inp.model_copy(
        update={"order": small, "resolved": resolve_request(case.inp.request, small)}
    )
    assert RefundCase(inp, Clock()).decision.auto_approve  # the policy alone would approve it
    why = "refund rf_other (paid) asked for the same 20.00 USD of order ord_1 for damaged"
    carried = Progress(requested_at=START, max_amount=2000, amount=2000, withheld_because=why)
    continued = RefundCase(ContinuedRefundInput(**dict(inp), carried=carried), Clock())
    assert not continued.decision.auto_approve
    said = [o.message for o in continued.decision.outcomes if o.rule_id == "auto-approve"]
    assert said == [why[:1].upper() + why[1:] + " (role support or above)."], said
