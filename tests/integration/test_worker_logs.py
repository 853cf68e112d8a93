"""The worker's log is a JSON stream operators can parse: one object per line. (Temporal's
core warnings are forwarded through the same logger; this run may not provoke one.)"""

from __future__ import annotations

import json

import pytest

from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox
from tests.integration.helpers import wait_for_state
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack
from worker.main import WFT_WARN_S
from workflows.refund.fast_path import FAST_PATH_BUDGET

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


def test_the_worker_and_the_api_freeze_their_startup_heap_once_ready(stack: DevStack) -> None:
    """Full garbage collections skip the objects startup left (client/heap.py): the worker
    and the API say how many they froze when they are ready."""
    for log, ready in (("worker.log", "worker_started"), ("api.log", "api.ready")):
        records = [json.loads(x) for x in (stack.logs / log).read_text().splitlines() if ready in x]
        assert records, log
        assert records[0]["startup_objects_frozen"] > 50_000, records[0]


def test_the_worker_runs_workflow_code_directly_unless_asked(stack: DevStack) -> None:
    """No sandbox by default (worker/sandbox.py); test_traces runs a worker with it on."""
    lines = (stack.logs / "worker.log").read_text().splitlines()
    started = next(x for x in lines if "worker_started" in x)
    assert json.loads(started)["workflow_runner"] == "direct", started


async def test_a_slow_provider_on_the_fast_path_is_not_warned_as_a_slow_workflow(
    stack: DevStack, refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    """The provider call of an auto-approved refund runs inside its workflow task for up to
    the fast path's budget: Temporal's core warns (TMPRL1104) only past that (worker/main.py;
    its own default, 5 s, warned for every slow provider)."""
    await faults.set_faults({"payment.latency_ms": "5500"})
    order = await sandbox.order(amount=4000)
    status = await refunds.request(make_request(order))
    await wait_for_state(refunds, status.refund_id, "completed", timeout=60)
    assert WFT_WARN_S > FAST_PATH_BUDGET.total_seconds()
    assert "TMPRL1104" not in (stack.logs / "worker.log").read_text()
