"""An audit conflict at the activity (issue 11): a refund that handles conflicts (the
long-lived patch) gets one final error saying where the trails part, instead of retries
forever; older refunds keep the retryable error."""

from __future__ import annotations

from typing import Any, cast

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.audit_retries import AuditConflict
from activities.pg_store import PostgresRefundStore
from activities.refund_activities import RefundActivities
from tests.conftest import unique_key
from tests.integration.test_audit_store import batch
from workflows import names
from workflows.models import IssueRefundInput, ProviderRefundResult
from workflows.recorded_payment import RecordAndPayInput
from workflows.states import RefundState

pytestmark = pytest.mark.stack


async def test_a_conflict_is_final_and_says_where_the_trails_part(db: asyncpg.Pool) -> None:
    store = PostgresRefundStore(db)
    activities = RefundActivities(store, cast(Any, None), cast(Any, None), cast(Any, None))
    refund_id = unique_key("rf")
    # The other run (before a reset) wrote entries 1 to 4.
    await store.record_transitions(batch(refund_id, [1, 2, 3, 4], RefundState.PENDING_REVIEW))
    # This run shares entry 1, then took another path from entry 2.
    ours = batch(refund_id, [1, 2], RefundState.PENDING_REVIEW)
    ours = ours.model_copy(
        update={"entries": [ours.entries[0], ours.entries[1].model_copy(update={"event": "x"})]}
    )
    env = ActivityEnvironment()
    with pytest.raises(AuditConflict):
        await env.run(activities.record_transitions, ours)  # older refunds: retryable
    final = ours.model_copy(update={"conflict_is_final": True})
    with pytest.raises(ApplicationError) as raised:
        await env.run(activities.record_transitions, final)
    assert raised.value.type == names.AUDIT_CONFLICT_ERROR
    assert raised.value.non_retryable
    assert list(raised.value.details) == [2, 4]
    assert [e.seq for e in await store.audit_trail(refund_id)] == [1, 2, 3, 4]


async def test_a_run_whose_record_moved_to_another_state_records_nothing(
    db: asyncpg.Pool,
) -> None:
    """A Reset in Temporal to before the refund was approved and paid: the reset run holds
    pending_review. Whatever it does there (another person's approval included, though it
    leads to the same state) is refused for good, naming the state on the record."""
    store = PostgresRefundStore(db)
    activities = RefundActivities(store, cast(Any, None), cast(Any, None), cast(Any, None))
    refund_id = unique_key("rf")
    first = batch(refund_id, [1], RefundState.PENDING_REVIEW)
    paid = batch(refund_id, [2], RefundState.COMPLETED)
    await store.record_transitions(first)
    await store.record_transitions(paid)
    by_another = paid.entries[0].model_copy(update={"actor": "mei"})
    for entry in (by_another, by_another.model_copy(update={"state": RefundState.CANCELLED})):
        ours = first.model_copy(
            update={"entries": [*first.entries, entry], "conflict_is_final": True}
        )
        with pytest.raises(ApplicationError) as raised:
            await ActivityEnvironment().run(activities.record_transitions, ours)
        assert raised.value.type == names.AUDIT_SUPERSEDED_ERROR and raised.value.non_retryable
        assert raised.value.message.startswith(
            f"refund {refund_id} is completed on its record (entry 2, e2), written by an"
            " earlier run of its workflow"
        ), raised.value.message
    trail = await store.audit_trail(refund_id)
    assert [(e.seq, e.actor, e.to_state.value) for e in trail] == [
        (1, "tester", "pending_review"),
        (2, "tester", "completed"),
    ]
    # The same entry again (a retried batch: the same actor) is no conflict at all.
    assert await ActivityEnvironment().run(activities.record_transitions, paid) == 0


class ProviderSpy:
    """A payment provider that only records that it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def refund(self, request: IssueRefundInput, *, look_up_first: bool = False) -> Any:
        self.asked.append(request.idempotency_key)
        return ProviderRefundResult(
            provider_refund_id="re_1", status="succeeded", amount=request.amount,
            currency=request.currency, idempotency_key=request.idempotency_key,
        )  # fmt: skip


async def test_a_refused_record_pays_nothing_in_the_combined_call(db: asyncpg.Pool) -> None:
    """record_and_issue_provider_refund (patches.RECORD_WITH_PAYMENT) on the real store: a
    run a reset took back to before its refund was paid is refused, and the provider is
    never asked; a record the store takes is written before the provider is asked."""
    store, provider = PostgresRefundStore(db), ProviderSpy()
    activities = RefundActivities(store, cast(Any, provider), cast(Any, None), cast(Any, None))
    refund_id = unique_key("rf")
    first = batch(refund_id, [1], RefundState.PENDING_REVIEW)
    await store.record_transitions(first)
    await store.record_transitions(batch(refund_id, [2], RefundState.COMPLETED))
    approving = first.entries[0].model_copy(
        update={"seq": 2, "event": "approve", "state": RefundState.APPROVED, "actor": "mei"}
    )
    reset_run = first.model_copy(
        update={"entries": [*first.entries, approving], "conflict_is_final": True}
    )
    pay = IssueRefundInput(
        refund_id=refund_id, order_id="ord_1", payment_reference="pay_1", amount=500,
        currency="USD", idempotency_key=f"{refund_id}:refund",
    )  # fmt: skip
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(
            activities.record_and_issue_provider_refund,
            RecordAndPayInput(record=reset_run, pay=pay),
        )
    assert raised.value.type == names.AUDIT_SUPERSEDED_ERROR
    assert provider.asked == []  # the record first: refused, nothing paid

    other = unique_key("rf")
    fresh = batch(other, [1, 2], RefundState.REFUNDING)
    paid = await ActivityEnvironment().run(
        activities.record_and_issue_provider_refund,
        RecordAndPayInput(record=fresh, pay=pay.model_copy(update={"refund_id": other})),
    )
    assert paid.status == "succeeded" and provider.asked == [f"{refund_id}:refund"]
    assert [e.seq for e in await store.audit_trail(other)] == [1, 2]
