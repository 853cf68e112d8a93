"""The worker's log is a JSON stream operators can parse: one object per line. (Temporal's
core warnings are forwarded through the same logger; this run may not provoke one.)"""

from __future__ import annotations

import json

import pytest

from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.helpers import wait_for_state
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack

pytestmark = pytest.mark.stack


async def test_every_line_of_the_worker_log_is_a_json_object(
    stack: DevStack, refunds: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(amount=4000)
    status = await refunds.request(make_request(order))
    await wait_for_state(refunds, status.refund_id, "completed")
    lines = (stack.logs / "worker.log").read_text().splitlines()
    assert len(lines) >= 3  # the worker has said something: the check is not vacuous
    for line in lines:
        record = json.loads(line)  # raises on a core WARN line, colours and all
        assert isinstance(record, dict) and "event" in record, line
        assert "<traceback object" not in line
