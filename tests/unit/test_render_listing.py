"""A customer's list (`GET /v1/refunds`, `refundflow list`) tells their refunds as `track`
does: no staff columns (who acts, escalation level), which their rows no longer carry."""

from __future__ import annotations

from datetime import UTC, datetime

from api.listing import as_told
from client.render_listing import listing
from tests.unit.test_evidence import case_with
from workflows.read_models import CustomerListedRefund, ListedRefund
from workflows.refund import views
from workflows.states import Awaiting, RefundState
from workflows.wording import customer_view, state_label


def test_a_customers_list_shows_each_refund_in_their_words() -> None:
    row = CustomerListedRefund(
        refund_id="rf_" + "a" * 24,
        order_id="ord_1",
        status="being reviewed",
        amount=150000,
        currency="USD",
        requested_at=datetime(2026, 11, 28, 9, 30, tzinfo=UTC),
    )
    header, line = listing([row]).splitlines()
    assert header.split() == ["REFUND", "ORDER", "REQUESTED", "AMOUNT", "STATUS"]
    assert line.split() == ["rf_" + "a" * 24, "ord_1", "2026-11-28", "1500.00", "USD", "being",
                            "reviewed"]  # fmt: skip
    assert listing([]) == "no refunds match"


def test_a_customers_row_says_what_they_are_told_and_the_state_it_is_in() -> None:
    """A first approver's cut is not theirs yet (the row said it: a review); a refund closed
    in the projection alone (reconciliation, its workflow gone) is said as closed, though
    the view recorded with it still says it waits for review."""
    case = case_with(evidence_above=50000, second_above=10000)
    case.p.awaiting = Awaiting.REVIEWER
    case.p.amount = 12000  # the first of two approvers approves 120.00 of 255.00
    assert case.first_of_two_approvals("li", "lead", "api")
    view = views.status(case)
    row = {
        "refund_id": view.refund_id, "order_id": view.order_id, "state": view.state.value,
        "amount": view.amount, "currency": view.currency, "requested_at": view.timeline[0].at,
        "view": view.model_dump_json(),
    }  # fmt: skip
    told = as_told(row, stopped=False)  # read as a Record is
    assert (told.amount, told.status) == (25500, customer_view(view)["status"])
    closed = as_told({**row, "state": "cancelled"}, stopped=False)
    assert (closed.status, closed.amount) == (state_label(RefundState.CANCELLED, "en"), 25500)
    old = as_told({**row, "view": None}, stopped=False)
    assert old.status == state_label(RefundState.PENDING_REVIEW, "en")


def test_staffs_row_of_a_refund_temporal_ended_says_it_ended() -> None:
    """A trial read "reviewer" in the awaiting column of a terminated refund (an approval
    there is refused)."""
    moment = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    row = ListedRefund(
        refund_id="rf_" + "b" * 24, order_id="ord_2", state=RefundState.PENDING_REVIEW,
        amount=20000, currency="USD", awaiting=Awaiting.REVIEWER, escalation_level=0,
        policy_version="standard@v4#x", reason_code="damaged", channel="web",
        requested_at=moment, updated_at=moment, ended_in_temporal="terminated 2026-11-28",
    )  # fmt: skip
    _header, line, note = listing([row]).splitlines()
    assert line.split()[-2:] == ["(ended)", "0"] and "reviewer" not in line
    assert note.startswith(f"note: Temporal ended the workflow of {row.refund_id}")
