"""Record workflow histories for the replay tests: `.venv/bin/python -m tests.replay.record
[SCENARIO ...]` (all scenarios when none is named).

Starts a private dev stack, drives one workflow down each path, waits until it has closed
(a history fetched earlier stops before its last workflow task and never shows how the
workflow ended), and writes the history to tests/replay/histories/<scenario>.json, or
<scenario>-vN.json when that name is taken. Then add an entry to histories/manifest.json.
Re-record only to add a recording: old histories must keep replaying (that is the point),
so never overwrite them to make a change pass.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import TimeSkipper, TimeSkippingConfig

from activities.http_adapters import HttpOrderSystem, HttpService
from client.action_attestation import signer_for
from client.connections import connect_temporal
from client.payload_codec import EncryptionCodec, open_history
from client.policy_source import load_policy
from client.refund_client import RefundClient
from client.settings import PROJECT_ROOT, Settings
from sandbox.admin_client import SandboxAdmin
from tests.integration.helpers import eventually, wait_for_state
from worker.devstack import DevStack, StackConfig
from workflows.models import ReconcileInput, RefundRequest
from workflows.reconciliation_workflow import ReconciliationWorkflow

HISTORIES = Path(__file__).parent / "histories"
Scenario = Callable[[], Awaitable[str]]


class Recorder:
    """The scenarios: each drives one workflow and returns its workflow id."""

    def __init__(self, settings: Settings, skipper: TimeSkipper, http: aiohttp.ClientSession):
        self.settings = settings
        self.skipper = skipper
        self.http = http
        self.orders = HttpOrderSystem(HttpService(http, settings.orders_url, "orders"))
        self.admin = SandboxAdmin(HttpService(http, settings.sandbox_url, "sandbox"))
        self.standard = self.client("standard-v1")
        self.returns = self.client("returns-v1")
        self.v2 = self.client("standard-v2")

    def client(self, policy: str) -> RefundClient:
        return RefundClient(
            self.skipper.client,
            self.orders,
            task_queue=self.settings.task_queue,
            policy=load_policy(PROJECT_ROOT / "policies", policy),
            database_url=self.settings.database_url,
            signer=signer_for(self.settings),  # acts as the API does: vouched for
        )

    def scenarios(self) -> dict[str, Scenario]:
        return {
            "v2_fee_and_lead_approval": self.v2_fee_and_lead_approval,
            "v2_zh_wallet_auto": self.v2_zh_wallet_auto,
            "auto_approved": self.auto_approved,
            "auto_approved_respond_async": self.auto_approved_respond_async,
            "reviewed_lower_amount": self.reviewed_lower_amount,
            "rejected": self.rejected,
            "escalated_then_expired": self.escalated_then_expired,
            "item_returned_and_restocked": self.item_returned_and_restocked,
            "pending_settled_by_webhook": self.pending_settled_by_webhook,
            "refused_then_operator_cancel": self.refused_then_operator_cancel,
            "failed_then_operator_retry": self.failed_then_operator_retry,
            "reconciliation_heals_operator_wait": self.reconciliation_heals_operator_wait,
        }

    async def start(self, c: RefundClient, name: str, spec: dict[str, Any], **kw: Any) -> str:
        order = await self.orders.create_order(
            {"currency": "USD", "delivered_days_ago": 2, "customer_id": "cust_1", **spec}
        )
        fields: dict[str, Any] = {
            "refund_key": name,
            "order_id": order["order_id"],
            "reason_code": "damaged",
            "channel": "web",
            "requested_by": "cust_1",
            "amount": order["captured_amount"],
        }
        fields.update(kw)
        return (await c.request(RefundRequest.model_validate(fields))).refund_id

    async def until_operator(self, c: RefundClient, rid: str) -> None:
        await eventually(lambda: c.status(rid), lambda s: s.awaiting.value == "operator")

    # --- the refund workflow ------------------------------------------------------------

    async def auto_approved(self) -> str:
        rid = await self.start(self.standard, "auto-approved", {"amount": 4000})
        await wait_for_state(self.standard, rid, "completed")
        return rid

    async def auto_approved_respond_async(self) -> str:
        """Started as POST /v1/refunds with Prefer: respond-async starts it: no update."""
        order = await self.orders.create_order(
            {"currency": "USD", "amount": 4000, "customer_id": "cust_1"}
        )
        request = RefundRequest(
            refund_key="auto-async", order_id=order["order_id"], reason_code="damaged",
            channel="api", requested_by="cust_1", amount=4000,
        )  # fmt: skip
        status, _ = await self.standard.request_again_or_new(request, first_step=False)
        await wait_for_state(self.standard, status.refund_id, "completed")
        return status.refund_id

    async def reviewed_lower_amount(self) -> str:
        rid = await self.start(self.standard, "reviewed", {"amount": 12000})
        await self.standard.approve(rid, "alice", amount=10000)
        await wait_for_state(self.standard, rid, "completed")
        return rid

    async def rejected(self) -> str:
        rid = await self.start(self.standard, "rejected", {"amount": 12000})
        await self.standard.reject(rid, "bob", "no damage visible")
        await wait_for_state(self.standard, rid, "cancelled")
        return rid

    async def escalated_then_expired(self) -> str:
        rid = await self.start(self.standard, "expired", {"amount": 20000})
        handle = self.skipper.client.get_workflow_handle(rid)
        await self.skipper.fast_forward(handle, timedelta(hours=25))
        await eventually(lambda: self.standard.status(rid), lambda s: s.escalation_level == 1)
        await self.skipper.fast_forward(handle, timedelta(hours=400))
        await wait_for_state(self.standard, rid, "cancelled")
        return rid

    async def item_returned_and_restocked(self) -> str:
        lines = [{"sku": "MUG-1", "quantity": 2, "unit_price": 1200, "category": "kitchen"}]
        rid = await self.start(
            self.returns, "returned", {"lines": lines},
            amount=None, lines=[{"sku": "MUG-1", "quantity": 2}],
        )  # fmt: skip
        await eventually(lambda: self.returns.status(rid), lambda s: s.awaiting.value == "customer")
        await self.returns.item_received(rid, "warehouse-1")
        await wait_for_state(self.returns, rid, "completed")
        return rid

    async def pending_settled_by_webhook(self) -> str:
        await self.admin.set_faults({"payment.pending_rate": "1", "payment.settle_after_ms": "200"})
        try:
            rid = await self.start(self.standard, "pending", {"amount": 3000})
            await wait_for_state(self.standard, rid, "completed")
        finally:
            await self.admin.clear_faults()
        return rid

    async def refused_then_operator_cancel(self) -> str:
        await self.admin.set_faults({"payment.refuse": "expired_card"})
        try:
            rid = await self.start(self.standard, "refused", {"amount": 3000})
            await self.until_operator(self.standard, rid)
        finally:
            await self.admin.clear_faults()
        await self.standard.operator_cancel(rid, "ops-1", "card expired")
        await wait_for_state(self.standard, rid, "cancelled")
        return rid

    async def failed_then_operator_retry(self) -> str:
        await self.admin.set_faults({"payment.pending_rate": "1", "payment.settle_after_ms": "100",
                                     "payment.settle_failure_rate": "1"})  # fmt: skip
        try:
            rid = await self.start(self.standard, "retried", {"amount": 3000})
            await self.until_operator(self.standard, rid)
        finally:
            await self.admin.clear_faults()
        await self.standard.operator_retry(rid, "ops-1")
        await wait_for_state(self.standard, rid, "completed")
        return rid

    async def v2_fee_and_lead_approval(self) -> str:
        lines = [{"sku": "TV-1", "quantity": 1, "unit_price": 30000, "category": "electronics"}]
        rid = await self.start(
            self.v2, "v2-fee", {"lines": lines}, amount=None,
            lines=[{"sku": "TV-1", "quantity": 1}], reason_code="changed_mind",
        )  # fmt: skip
        await eventually(lambda: self.v2.status(rid), lambda s: s.awaiting.value == "reviewer")
        await self.v2.approve(rid, "li", role="lead")
        await wait_for_state(self.v2, rid, "completed")
        return rid

    async def v2_zh_wallet_auto(self) -> str:
        spec = {"amount": 3000, "payment_rail": "wallet"}
        rid = await self.start(self.v2, "v2-zh", spec, locale="zh-CN")
        await wait_for_state(self.v2, rid, "completed")
        return rid

    # --- the reconciliation workflow ----------------------------------------------------

    async def reconciliation_heals_operator_wait(self) -> str:
        """A reconciliation run that finds a refund the provider paid after refusing it (the
        refund waits for an operator) and heals it; returns the reconciliation's id."""
        await self.admin.set_faults({"payment.refuse": "expired_card"})
        try:
            rid = await self.start(self.v2, "reconciled", {"amount": 3000})
            await self.until_operator(self.v2, rid)
        finally:
            await self.admin.clear_faults()
        await self.pay_outside(rid)
        handle = await self.skipper.client.start_workflow(
            ReconciliationWorkflow.run,
            ReconcileInput(grace_seconds=0),
            id=f"refundflow-reconciliation-record-{uuid.uuid4().hex[:12]}",
            task_queue=self.settings.task_queue,
        )
        report = await handle.result()
        assert report.healed >= 1, report
        await wait_for_state(self.v2, rid, "completed")
        return handle.id

    async def pay_outside(self, refund_id: str) -> None:
        """The provider pays the refund around refundflow (as from its dashboard)."""
        status = await self.v2.status(refund_id)
        order = await self.orders.get_order(status.order_id)
        assert order is not None, status.order_id
        body = {
            "payment_reference": order.payment_reference,
            "amount": status.amount,
            "currency": status.currency,
            "metadata": {"refund_id": refund_id},
        }
        async with self.http.post(
            f"{self.settings.sandbox_url}/payments/v1/refunds",
            json=body,
            headers={"Idempotency-Key": f"outside-{refund_id}"},
        ) as answer:
            assert answer.status == 201, await answer.text()


async def closed(handle: WorkflowHandle[Any, Any]) -> None:
    """Wait until the workflow has closed, whichever way."""
    await eventually(
        handle.describe, lambda d: d.status != WorkflowExecutionStatus.RUNNING, timeout=60
    )


async def record(stack: DevStack, only: set[str]) -> None:
    settings = Settings.from_env(stack.env())
    skipper = TimeSkipper(
        await connect_temporal(settings), config=TimeSkippingConfig(enabled=False)
    )
    async with aiohttp.ClientSession() as http:
        scenarios = Recorder(settings, skipper, http).scenarios()
        unknown = only - set(scenarios)
        if unknown:
            raise SystemExit(f"unknown scenarios: {sorted(unknown)}; known: {sorted(scenarios)}")
        HISTORIES.mkdir(exist_ok=True)
        for name, scenario in scenarios.items():
            if only and name not in only:
                continue
            handle = skipper.client.get_workflow_handle(await scenario())
            await closed(handle)
            history = await handle.fetch_history()
            # The stack seals payloads with a key thrown away with it: commit them opened.
            codec = skipper.client.data_converter.payload_codec
            if isinstance(codec, EncryptionCodec):
                history = open_history(history, codec)
            path = _new_path(name)
            path.write_text(history.to_json())
            print(f"recorded {path.name} ({len(history.events)} events)", flush=True)


def _new_path(name: str) -> Path:
    """Never overwrite: a recorded history is what older code wrote, and must keep replaying."""
    path = HISTORIES / f"{name}.json"
    version = 2
    while path.exists():
        path = HISTORIES / f"{name}-v{version}.json"
        version += 1
    return path


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="refundflow-record-"))
    stack = DevStack(StackConfig.for_tests(home))
    status = 0
    try:
        stack.start()
        asyncio.run(record(stack, set(sys.argv[1:])))
    except (Exception, SystemExit) as err:  # report and still stop the stack
        print(f"error: {err!r}", file=sys.stderr)
        status = 1
    finally:
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
