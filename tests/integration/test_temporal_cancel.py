"""Operators press "Request Cancellation" in the Web UI (or run `temporal workflow cancel`):
the refund is withdrawn everywhere, its amount freed and the customer told."""

from __future__ import annotations

import asyncpg
import pytest

from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_refund_flow import make_request

pytestmark = pytest.mark.stack


async def test_a_cancel_from_temporal_withdraws_frees_the_amount_and_tells_the_customer(
    refunds: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=20000)
    waiting = await refunds.request(make_request(order))  # above the auto-approve limit
    assert waiting.state.value == "pending_review"

    await refunds.temporal.get_workflow_handle(waiting.refund_id).cancel()

    cancelled = await wait_for_state(refunds, waiting.refund_id, "cancelled")
    assert cancelled.cancel_reason is not None and cancelled.cancel_reason.value == "withdrawn"
    assert cancelled.eta is None and "withdrawn" in cancelled.message
    held = await db.fetchval(
        "SELECT state FROM refundflow.reservations WHERE refund_id = $1", waiting.refund_id
    )
    assert held == "released"
    listed = await refunds.list(order_id=order["order_id"])
    assert [(row_state(r), row_id(r)) for r in listed] == [("cancelled", waiting.refund_id)]
    told = await eventually(
        lambda: sandbox.inbox(waiting.refund_id), lambda events: len(events) >= 2
    )
    assert told[-1]["type"] == "refund.cancelled"

    # The whole amount is refundable again: a new request for it is accepted.
    again = await refunds.request(make_request(order))
    assert again.refund_id != waiting.refund_id and again.state.value == "pending_review"


def row_state(row: object) -> str:
    return str(row["state"] if isinstance(row, dict) else getattr(row, "state"))  # noqa: B009


def row_id(row: object) -> str:
    return str(row["refund_id"] if isinstance(row, dict) else getattr(row, "refund_id"))  # noqa: B009
