"""Which refunds whose workflow Temporal ended reconciliation leaves to a person: a returns
refund that asked the customer for the item, while its return window is open (the workflow
would close it after), or once the item is received."""

from __future__ import annotations

from datetime import timedelta

from activities.closing import _item_asked_for
from activities.closing_advice import EndedRun, person_decides
from tests.unit.test_refund_case import new_case
from workflows.states import Awaiting, RefundEvent, RefundState


def test_a_returns_refund_waits_for_a_person_while_its_item_may_come() -> None:
    case, clock = new_case(policy="returns-v1")
    assert not _item_asked_for(case)  # pending review: nobody asked for anything
    case.apply(RefundEvent.AUTO_APPROVE, "policy", "policy", "within the policy")
    case.set_awaiting(Awaiting.CUSTOMER)
    assert _item_asked_for(case)
    said = person_decides(case, EndedRun("rf_test", "run-1", "terminated"))
    assert "temporal workflow reset -w rf_test -r run-1 --type LastWorkflowTask" in said
    assert "refundflow received rf_test" in said
    clock.now += timedelta(days=case.policy.refund.item_return_window_days, seconds=1)
    assert not _item_asked_for(case)  # the window closed: closed as the workflow would


def test_a_received_item_waits_for_a_person_whatever_the_date() -> None:
    case, clock = new_case(policy="returns-v1")
    case.apply(RefundEvent.AUTO_APPROVE, "policy", "policy", "within the policy")
    case.p.item_received = True
    case.p.state = RefundState.REFUNDING
    clock.now += timedelta(days=60)
    assert _item_asked_for(case)
    assert "operator retry" in person_decides(case, EndedRun("rf_test", None, "terminated"))


def test_other_policies_close_as_before() -> None:
    case, _ = new_case()
    case.apply(RefundEvent.AUTO_APPROVE, "policy", "policy", "within the policy")
    assert not _item_asked_for(case)
