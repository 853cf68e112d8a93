"""A status is written when the refund changes, and read later: an ETA past by then is not
told by any channel that reads it through RefundClient (`status`, the console, the API's
staff answer), as the tracking page already left it out (a review)."""

from __future__ import annotations

import asyncpg
import pytest

from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.helpers import wait_for_state
from tests.integration.test_refund_flow import make_request

pytestmark = pytest.mark.stack

LONG_AGO = '"2026-01-02T00:00:00Z"'


async def test_a_window_that_ended_since_the_status_was_written_is_not_read_out(
    refunds: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=3000)
    made = await refunds.request(make_request(order))
    paid = await wait_for_state(refunds, made.refund_id, "completed")
    assert paid.eta is not None and "should reach you" in paid.support_reply
    # Read as if the card's window had ended since: its dates moved to the past.
    await db.execute(
        "UPDATE refundflow.refund_status SET view = jsonb_set(jsonb_set(jsonb_set(jsonb_set("
        " view, '{eta}', $2::jsonb), '{eta_earliest}', $2::jsonb), '{facts,eta}', $2::jsonb),"
        " '{facts,eta_earliest}', $2::jsonb) WHERE refund_id = $1",
        made.refund_id,
        LONG_AGO,
    )
    read = await refunds.status(made.refund_id)
    assert (read.eta, read.eta_kind) == (None, None), read
    assert "should reach you" not in read.message + read.support_reply
    assert read.message.startswith("Your refund of 30.00 USD has been issued"), read.message
