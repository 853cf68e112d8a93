"""Invariant 5 at the store: each transition written once, and never edited."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from activities.audit_retries import AuditConflict
from activities.pg_store import PostgresRefundStore
from tests.conftest import unique_key
from workflows.models import RecordTransitionsInput, StatusProjection, TimelineEntry
from workflows.states import Awaiting, RefundState

pytestmark = pytest.mark.stack
NOW = datetime(2026, 11, 26, tzinfo=UTC)


def batch(refund_id: str, seqs: list[int], state: RefundState) -> RecordTransitionsInput:
    entries = [
        TimelineEntry(
            seq=s,
            event=f"e{s}",
            from_state=None,
            state=state,
            at=NOW,
            actor="tester",
            source="test",
            reason="r",
        )
        for s in seqs
    ]
    projection = StatusProjection(
        refund_id=refund_id,
        refund_key="k",
        order_id="ord_t",
        state=state,
        amount=100,
        currency="USD",
        awaiting=Awaiting.NOTHING,
        escalation_level=0,
        policy_version="p",
        reason_code="damaged",
        channel="web",
        requested_at=NOW,
        updated_at=NOW,
    )
    return RecordTransitionsInput(refund_id=refund_id, entries=entries, projection=projection)


async def test_retried_batches_are_written_once_and_projection_never_goes_back(
    db: asyncpg.Pool,
) -> None:
    store = PostgresRefundStore(db)
    refund_id = unique_key("rf")
    assert await store.record_transitions(batch(refund_id, [1, 2], RefundState.APPROVED)) == 2
    assert await store.record_transitions(batch(refund_id, [1, 2], RefundState.APPROVED)) == 0
    assert await store.record_transitions(batch(refund_id, [3], RefundState.COMPLETED)) == 1
    # A late retry of an older batch must not roll the projection back.
    await store.record_transitions(batch(refund_id, [1, 2], RefundState.APPROVED))
    assert [r.seq for r in await store.audit_trail(refund_id)] == [1, 2, 3]
    state = await db.fetchval(
        "SELECT state FROM refundflow.refund_status WHERE refund_id = $1", refund_id
    )
    assert state == "completed"


async def test_audit_rows_cannot_be_changed_or_deleted(db: asyncpg.Pool) -> None:
    store = PostgresRefundStore(db)
    refund_id = unique_key("rf")
    await store.record_transitions(batch(refund_id, [1], RefundState.PENDING_REVIEW))
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("UPDATE refundflow.audit SET reason = 'x' WHERE refund_id = $1", refund_id)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("DELETE FROM refundflow.audit WHERE refund_id = $1", refund_id)


async def test_a_different_entry_under_a_used_sequence_is_refused_loudly(
    db: asyncpg.Pool,
) -> None:
    store = PostgresRefundStore(db)
    refund_id = unique_key("rf")
    await store.record_transitions(batch(refund_id, [1], RefundState.PENDING_REVIEW))
    with pytest.raises(AuditConflict, match="already recorded"):
        await store.record_transitions(batch(refund_id, [1], RefundState.CANCELLED))
