"""Invariant 10 past the API: someone who can send updates to Temporal, but does not hold the
API's signing key (the Web UI, the Temporal CLI, a script), cannot act as a person. The
stack's worker checks every person's action (worker/vouched_actions.py)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from client.errors import RefundActionRefused
from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.helpers import eventually
from tests.integration.test_refund_flow import audit_rows, make_request
from worker.devstack import DevStack
from workflows.models import ApproveInput
from workflows.refund.workflow import RefundWorkflow

pytestmark = pytest.mark.stack


async def test_an_approval_sent_to_temporal_directly_is_refused_and_changes_nothing(
    refunds: RefundClient, sandbox: Sandbox, db: asyncpg.Pool, stack: DevStack
) -> None:
    order = await sandbox.order(amount=90000)  # above every auto-approval: a reviewer decides
    waiting = await refunds.request(make_request(order))
    assert (waiting.state.value, waiting.awaiting.value) == ("pending_review", "reviewer")
    before = [tuple(r) for r in await audit_rows(db, waiting.refund_id)]
    handle = refunds.temporal.get_workflow_handle(waiting.refund_id)
    forged = ApproveInput(
        reviewer="fang", role="finance", source="temporal-ui", evidence="photos checked"
    )
    with pytest.raises(Exception) as refused:  # as the Web UI's "Send update" would send it
        await handle.execute_update(RefundWorkflow.approve, forged)
    said = str(getattr(refused.value, "cause", refused.value))
    assert "actions by people come through the refundflow API" in said
    assert "came to Temporal directly" in said
    # The answer is sealed (the Web UI shows "Encoded failure"): the worker's log says it.
    log = stack.logs / "worker.log"
    tried = await eventually(
        lambda: asyncio.to_thread(log.read_text),
        lambda text: any(
            "person_action_refused" in line and waiting.refund_id in line
            for line in text.splitlines()
        ),
    )
    assert "ApproveInput" in tried
    # A stale copy of a signed approval is refused the same way as a forged one.
    old = forged.model_copy(update={"attestation": "v1.1000000000." + "A" * 86})
    with pytest.raises(Exception) as stale:
        await handle.execute_update(RefundWorkflow.approve, old)
    assert "signed" in str(getattr(stale.value, "cause", stale.value))
    status = await refunds.status(waiting.refund_id)
    assert (status.state.value, status.awaiting.value) == ("pending_review", "reviewer")
    assert [tuple(r) for r in await audit_rows(db, waiting.refund_id)] == before
    # The same approval through a client holding the API's key is taken.
    approved = await refunds.approve(
        waiting.refund_id, "fang", role="finance", evidence="photos checked"
    )
    assert approved.state.value in ("approved", "refunding", "completed")


async def test_a_client_without_the_key_is_told_why(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(amount=90000)
    waiting = await refunds.request(make_request(order))
    unsigned = RefundClient(
        refunds.temporal, refunds._orders, task_queue=refunds._task_queue, policy=refunds.policy
    )
    with pytest.raises(RefundActionRefused) as refused:
        await unsigned.cancel(waiting.refund_id, "bob", "duplicate")
    assert str(refused.value).startswith(
        "refused: actions by people come through the refundflow API"
    )
    assert (await refunds.status(waiting.refund_id)).state.value == "pending_review"


async def test_an_update_the_refund_refuses_is_in_the_workers_log(
    refunds: RefundClient, sandbox: Sandbox, stack: DevStack
) -> None:
    """Temporal keeps no trace of a refused update: one it reapplied after a Reset, refused,
    was seen nowhere (a trial). The worker logs each refusal, without its words (they may
    name staff)."""
    waiting = await refunds.request(make_request(await sandbox.order(amount=90000)))
    with pytest.raises(RefundActionRefused):
        await refunds.approve(waiting.refund_id, "alice", role="support")  # above her limit
    log = stack.logs / "worker.log"
    tried = await eventually(
        lambda: asyncio.to_thread(log.read_text),
        lambda text: any(
            "update_refused" in line and waiting.refund_id in line for line in text.splitlines()
        ),
    )
    [line] = [x for x in tried.splitlines() if "update_refused" in x and waiting.refund_id in x]
    assert '"update": "approve"' in line and "alice" not in line, line
