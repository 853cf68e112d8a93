"""A date already past is not told: the provider held a refund past its rail's window, and
the customer read "should reach you between 29 Nov and 29 Nov" on 2 Dec (a trial), in the
escalation's notice (written then) and on the tracking page (read later)."""

from __future__ import annotations

from datetime import timedelta

from client import render
from tests.unit.test_refund_case import Clock, new_case
from tests.unit.tv_order import START
from workflows.refund import views
from workflows.refund.case import RefundCase
from workflows.states import Awaiting, RefundState
from workflows.wording import as_read_at, customer_view


def with_the_provider() -> tuple[RefundCase, Clock]:
    case, clock = new_case()
    case.p.state, case.p.awaiting = RefundState.REFUNDING, Awaiting.PAYMENT_PROVIDER
    case.p.refunding_since = START
    return case, clock


def test_a_window_past_when_the_status_is_written_is_not_told() -> None:
    case, clock = with_the_provider()
    on_time = views.facts(case)
    assert on_time.eta is not None and on_time.eta_kind == "payment"
    clock.now = on_time.eta + timedelta(days=1)
    late = views.status(case)
    assert (late.eta, late.eta_earliest, late.eta_kind) == (None, None, None)
    assert "should reach you" not in late.message and late.message


def test_a_window_past_when_the_page_is_read_is_not_told() -> None:
    case, _ = with_the_provider()
    written = views.status(case)
    assert written.eta is not None and "should reach you" in written.message
    before = customer_view(written, written.eta - timedelta(hours=1))
    assert before["eta"] is not None and "should reach you" in before["message"]
    after = customer_view(written, written.eta + timedelta(hours=1))
    assert (after["eta"], after["eta_earliest"], after["eta_kind"]) == (None, None, None)
    assert "should reach you" not in after["message"] and after["message"]


def test_the_last_review_deadline_is_told_as_the_expiry_it_is() -> None:
    """A trial: at level 2 the customer read "We aim to decide by 13 Dec 17:50", the moment
    the refund expires undecided."""
    case, _ = new_case()
    case.p.awaiting = Awaiting.REVIEWER
    case.p.escalation = 1
    assert "We aim to decide by" in views.status(case).message
    case.p.escalation = 2
    told = views.status(case)
    assert told.eta == START + case.policy.review_expiry
    assert "If no decision is made by" in told.message, told.message
    assert "closes then without a refund; you can ask again" in told.message
    assert "We aim to decide" not in told.message


def test_staff_read_no_window_that_has_ended_either() -> None:
    """A review: the tracking page dropped the ended window, while the console's "what the
    customer reads" and `status`'s support reply still read it to the customer."""
    case, _ = with_the_provider()
    written = views.status(case)
    assert written.eta is not None and "should reach you" in written.support_reply
    assert written.eta_earliest is not None
    assert as_read_at(written, written.eta_earliest - timedelta(hours=1)) == written
    read = as_read_at(written, written.eta + timedelta(hours=1))
    assert (read.eta, read.eta_earliest, read.eta_kind) == (None, None, None)
    assert "should reach you" not in read.message + read.support_reply
    assert read.facts is not None and read.facts.eta is None
    assert "eta        -" in render.status(read)
