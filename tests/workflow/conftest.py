"""The fast loop: the real RefundWorkflow on the real Temporal dev server (time skipping on),
with in-memory activities under the real names. No Postgres, no sandbox, no HTTP."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.testing import TimeSkipper, TimeSkippingConfig
from temporalio.worker import Worker

from client.policy_source import load_policy
from client.pydantic_conversion import refundflow_data_converter
from tests.workflow.fakes import FakeSystems
from worker.processes import free_port
from worker.temporal_server import TemporalDevServer
from workflows import names
from workflows.models import (
    OrderLine,
    OrderSnapshot,
    PinnedPolicy,
    RefundLineRequest,
    RefundRequest,
    RefundWorkflowInput,
    StatusQuery,
    StatusView,
)
from workflows.policy import pin_policy
from workflows.refund.workflow import RefundWorkflow
from workflows.validation import resolve_request

POLICIES = Path(__file__).resolve().parents[2] / "policies"
SUGGEST_CONTINUE_AT = 100


@pytest.fixture(scope="session")
def temporal_address() -> Iterator[str]:
    home = Path(tempfile.mkdtemp(prefix="refundflow-wf-"))
    server = TemporalDevServer(
        port=free_port(),
        ui_port=free_port(),
        db_file=None,
        log_path=home / "temporal.log",
        headless=True,
        time_skipping=True,
        # The server suggests continue-as-new from 4,096 events; tests of refunds that wait
        # for months need it sooner (no other test comes near this many events).
        dynamic_config={"limit.historyCount.suggestContinueAsNew": str(SUGGEST_CONTINUE_AT)},
    )
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
async def skipper(temporal_address: str) -> TimeSkipper:
    client = await Client.connect(temporal_address, data_converter=refundflow_data_converter)
    return TimeSkipper(client, config=TimeSkippingConfig(enabled=False))


def tv_order(price: int = 30000, category: str = "electronics") -> OrderSnapshot:
    return OrderSnapshot(
        order_id=f"ord_{uuid.uuid4().hex[:10]}",
        currency="USD",
        lines=[OrderLine(sku="TV", quantity=1, unit_price=price, category=category)],
        captured_amount=price,
        payment_reference="pay_1",
        delivered_at=datetime.now(UTC) - timedelta(days=2),
    )


def policy_variant(base: str, **settings: float) -> PinnedPolicy:
    """`base` with some `key = value` settings changed where they are (or added to
    [escalation]): a policy for a test that needs, say, a refund SLA of seconds."""
    lines = (POLICIES / f"{base}.toml").read_text().splitlines()
    for key, value in settings.items():
        at = next((i for i, line in enumerate(lines) if line.startswith(f"{key} =")), None)
        if at is None:
            lines.insert(lines.index("[escalation]") + 1, f"{key} = {value}")
        else:
            lines[at] = f"{key} = {value}"
    return pin_policy("\n".join(lines) + "\n")


@dataclass
class _Start:
    inp: RefundWorkflowInput
    search_attributes: TypedSearchAttributes


@dataclass
class Env:
    """One test's refunds: its own task queue, worker and fake systems."""

    skipper: TimeSkipper
    systems: FakeSystems
    task_queue: str

    async def start(
        self,
        order: OrderSnapshot,
        *,
        reason: str = "damaged",
        policy: str = "standard-v2",
        requested_by: str = "cust_1",
        pinned: PinnedPolicy | None = None,
    ) -> WorkflowHandle[RefundWorkflow, StatusView]:
        start = self._start_operation(order, reason, policy, requested_by, pinned)
        return await self.skipper.client.start_workflow(
            RefundWorkflow.run, start.inp, id=start.inp.refund_id, task_queue=self.task_queue,
            search_attributes=start.search_attributes,
        )  # fmt: skip

    async def start_answered(
        self, order: OrderSnapshot, *, policy: str = "standard-v2"
    ) -> tuple[WorkflowHandle[RefundWorkflow, StatusView], StatusView]:
        """Started as RefundClient.request starts a refund: update-with-start, answered
        with the refund's first step."""
        start = self._start_operation(order, "damaged", policy, "cust_1", None)
        operation = WithStartWorkflowOperation(
            RefundWorkflow.run, start.inp, id=start.inp.refund_id, task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=start.search_attributes,
        )  # fmt: skip
        answer: StatusView = await self.skipper.client.execute_update_with_start_workflow(
            names.UPDATE_FIRST_STEP, StatusQuery(include_timeline=True),
            start_workflow_operation=operation, result_type=StatusView,
        )  # fmt: skip
        return await operation.workflow_handle(), answer

    def _start_operation(
        self, order: OrderSnapshot, reason: str, policy: str, requested_by: str,
        pinned: PinnedPolicy | None,
    ) -> _Start:  # fmt: skip
        request = RefundRequest(
            refund_key=uuid.uuid4().hex,
            order_id=order.order_id,
            lines=[RefundLineRequest(sku=line.sku, quantity=line.quantity) for line in order.lines],
            reason_code=reason,
            channel="web",
            requested_by=requested_by,
        )
        refund_id = f"rf_{uuid.uuid4().hex[:16]}"
        self.systems.orders.setdefault(order.order_id, order)
        inp = RefundWorkflowInput(
            refund_id=refund_id,
            request=request,
            order=order,
            resolved=resolve_request(request, order),
            policy=pinned or load_policy(POLICIES, policy),
        )
        return _Start(
            inp,
            TypedSearchAttributes(
                [
                    SearchAttributePair(names.SA_REFUND_STATE, "pending_review"),
                    SearchAttributePair(names.SA_ORDER_ID, order.order_id),
                    SearchAttributePair(names.SA_ESCALATION_LEVEL, 0),
                    SearchAttributePair(names.SA_AWAITING, "nothing"),
                ]
            ),
        )


@pytest.fixture
async def env(skipper: TimeSkipper) -> AsyncIterator[Env]:
    systems = FakeSystems()
    task_queue = f"wf-{uuid.uuid4().hex[:8]}"
    async with Worker(
        skipper.client,
        task_queue=task_queue,
        workflows=[RefundWorkflow],
        activities=systems.activities(),
    ):
        yield Env(skipper, systems, task_queue)
