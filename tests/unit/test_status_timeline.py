"""`refundflow status` shows a run of alike timeline entries as one line and a count: a
refund waiting months for an operator read one reminder line a day (a trial)."""

from __future__ import annotations

from datetime import timedelta

from client import render
from tests.unit.test_refund_case import new_case
from workflows.refund import views
from workflows.states import Awaiting, RefundState


def test_daily_reminders_read_as_one_line_and_a_count() -> None:
    case, clock = new_case()
    case.p.state, case.p.awaiting = RefundState.REFUNDING, Awaiting.OPERATOR
    for _ in range(30):
        clock.now += timedelta(days=1)
        case.escalate("timer", "still waiting for an operator")
    shown = render.status(views.status(case))
    assert shown.count("still waiting for an operator") == 1, shown
    assert f"… 29 more alike, the last {render.when(clock.now)}" in shown, shown
    # Entries that differ are each shown.
    case.escalate("timer", "something else")
    assert "something else" in render.status(views.status(case))


def test_alike_entries_by_different_people_are_each_shown() -> None:
    """A review: grouped by their words alone, two operators' entries read as one's."""
    case, clock = new_case()
    case.p.state, case.p.awaiting = RefundState.REFUNDING, Awaiting.OPERATOR
    for actor in ("kim", "omar"):
        clock.now += timedelta(days=1)
        case.escalate(actor, "still waiting for an operator")
    shown = render.status(views.status(case))
    assert "by kim" in shown and "by omar" in shown and "more alike" not in shown, shown
