"""An action's answer is the refund as recorded once the action's workflow task ended, when
that goes on from the answer (client/refund_actions.py `_as_recorded`): never another run's
record, never an older one, never a failed read turned into a failed action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from client.errors import RefundActionRefused
from client.refund_actions import RefundActions
from workflows.models import StatusView, TimelineEntry
from workflows.states import Awaiting, RefundState

AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
P, A, R, C = (RefundState.PENDING_REVIEW, RefundState.APPROVED, RefundState.REFUNDING,
              RefundState.COMPLETED)  # fmt: skip


def view(*states: RefundState, actor: str = "x", start: datetime = AT) -> StatusView:
    timeline = [
        TimelineEntry(seq=i + 1, event=f"e{i}", from_state=None, state=state,
                      at=start + timedelta(seconds=i), actor=actor, source="y", reason="")
        for i, state in enumerate(states)
    ]  # fmt: skip
    return StatusView(
        refund_id="rf_1", refund_key="k", order_id="o", state=states[-1], cancel_reason=None,
        amount=100, requested_amount=100, currency="USD", awaiting=Awaiting.NOTHING,
        escalation_level=0, policy_version="p", reason_code="damaged", channel="web",
        evidence_required=False, provider_refund_id=None, timeline=timeline, next_step="",
        eta=None, message="",
    )  # fmt: skip


class Recorded(RefundActions):
    """RefundActions over a projection that holds `recorded` (or fails with `fails`)."""

    def __init__(
        self,
        recorded: StatusView | None,
        *,
        fails: Exception | None = None,
        db: bool = True,
        run: WorkflowExecutionStatus = WorkflowExecutionStatus.RUNNING,
    ) -> None:
        self._database_url = "postgresql://stand-in" if db else None
        self.recorded, self.fails, self.reads = recorded, fails, 0
        self.run = run

    def _handle(self, refund_id: str) -> Any:
        """The answering run, as Temporal describes it."""
        run = self.run

        class Handle:
            async def describe(self) -> Any:
                return SimpleNamespace(status=run)

        return Handle()

    async def _store(self) -> Recorded:  # type: ignore[override]
        return self

    async def status_view(self, refund_id: str) -> StatusView | None:
        self.reads += 1
        if self.fails is not None:
            raise self.fails
        return self.recorded


async def test_a_record_that_goes_on_from_the_answer_is_the_answer() -> None:
    answer, paid = view(P, A, R), view(P, A, R, C)
    assert await Recorded(paid)._as_recorded("rf_1", answer) == paid


async def test_the_answer_stands_against_an_older_record_or_another_runs() -> None:
    answer = view(P, A, R)
    assert await Recorded(view(P, A))._as_recorded("rf_1", answer) == answer
    # A Reset's abandoned run: more entries, but not this answer's.
    other_run = view(P, A, R, C, actor="someone else", start=AT - timedelta(hours=1))
    assert await Recorded(other_run)._as_recorded("rf_1", answer) == answer
    assert await Recorded(None)._as_recorded("rf_1", answer) == answer  # nothing recorded


async def test_a_record_at_the_answers_own_entry_is_the_answer_with_the_whole_trail() -> None:
    """A run reset in Temporal wrote its entries after another run's: its answer lacks the
    other run's (entries 2 and 3 here) and has its own times; the record, at the answer's own
    last entry, has them all (a trial printed the answer's gaps)."""
    recorded = view(P, A, R, R)
    answer = recorded.model_copy(update={"timeline": [recorded.timeline[0], recorded.timeline[3]]})
    assert await Recorded(recorded)._as_recorded("rf_1", answer) == recorded
    # Not a reset run's entry the audit took as the record's (the same words, its own time).
    again = view(P, A, start=AT + timedelta(hours=1))
    assert await Recorded(view(P, A, R, C))._as_recorded("rf_1", again) == again


async def test_an_answer_from_a_run_that_ended_without_recording_it_is_refused() -> None:
    """A run reset to before the refund was paid took the action, recorded nothing and
    failed (AUDIT_SUPERSEDED_ERROR): its answer is not the refund's."""
    answer = view(P, A, R, actor="mei")
    recorded = view(P, A, R, C, actor="li", start=AT - timedelta(hours=1))
    ended = Recorded(recorded, run=WorkflowExecutionStatus.FAILED)
    with pytest.raises(RefundActionRefused, match="nothing was recorded: refund rf_1 is completed"):
        await ended._as_recorded("rf_1", answer)
    # A run that wrote its own entries after the other run's (same-state ones) answered true.
    followed = view(P, A, R, C, actor="li")
    followed.timeline.append(answer.timeline[-1].model_copy(update={"seq": 5}))
    assert await Recorded(followed, run=ended.run)._as_recorded("rf_1", answer) == answer


async def test_a_failed_read_keeps_the_answer_and_no_read_without_a_store_or_wish() -> None:
    answer = view(P, A)
    broken = Recorded(view(P, A, R), fails=OSError("connection reset"))
    assert await broken._as_recorded("rf_1", answer) == answer and broken.reads == 1
    no_store = Recorded(view(P, A, R), db=False)
    assert await no_store._as_recorded("rf_1", answer) == answer and no_store.reads == 0
    respond_async = Recorded(view(P, A, R))  # answered once Temporal holds it: no read
    assert await respond_async._as_recorded("rf_1", answer, fresher=False) == answer
    assert respond_async.reads == 0
    assert await Recorded(view(P))._as_recorded("rf_1", None) is None


async def test_an_answer_with_no_timeline_is_not_replaced() -> None:
    answer = view(P, A, R)
    bare = answer.model_copy(update={"timeline": []})
    assert await Recorded(answer)._as_recorded("rf_1", bare) == bare
