"""Record workflow histories for the replay tests: `.venv/bin/python -m tests.replay.record`.

Starts a private dev stack, drives one refund down each path of the lifecycle, and writes
each history to tests/replay/histories/<scenario>.json. Re-record only when adding a
scenario: old histories must keep replaying (that is the point), so never overwrite them
to make a change pass.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import aiohttp
from temporalio.testing import TimeSkipper, TimeSkippingConfig

from activities.http_adapters import HttpOrderSystem, HttpService
from client.connections import connect_temporal
from client.policy_source import load_policy
from client.refund_client import RefundClient
from client.settings import PROJECT_ROOT, Settings
from sandbox.admin_client import SandboxAdmin
from tests.integration.helpers import eventually, wait_for_state
from worker.devstack import DevStack, StackConfig
from workflows.models import RefundRequest

HISTORIES = Path(__file__).parent / "histories"


async def record(stack: DevStack, only: set[str]) -> None:
    settings = Settings.from_env(stack.env())
    skipper = TimeSkipper(
        await connect_temporal(settings), config=TimeSkippingConfig(enabled=False)
    )
    async with aiohttp.ClientSession() as http:
        orders = HttpOrderSystem(HttpService(http, settings.orders_url, "orders"))

        def client(policy: str) -> RefundClient:
            return RefundClient(
                skipper.client,
                orders,
                task_queue=settings.task_queue,
                policy=load_policy(PROJECT_ROOT / "policies", policy),
                database_url=settings.database_url,
            )

        standard, returns = client("standard-v1"), client("returns-v1")
        v2 = client("standard-v2")
        admin = SandboxAdmin(HttpService(http, settings.sandbox_url, "sandbox"))

        async def start(c: RefundClient, name: str, spec: dict[str, object], **kw: object) -> str:
            order = await orders.create_order({"currency": "USD", "delivered_days_ago": 2, **spec})
            fields: dict[str, object] = {
                "refund_key": name,
                "order_id": order["order_id"],
                "reason_code": "damaged",
                "channel": "web",
                "requested_by": "cust_1",
                "amount": order["captured_amount"],
            }
            fields.update(kw)
            return (await c.request(RefundRequest.model_validate(fields))).refund_id

        async def auto_approved() -> str:
            rid = await start(standard, "auto-approved", {"amount": 4000})
            await wait_for_state(standard, rid, "completed")
            return rid

        async def reviewed_lower_amount() -> str:
            rid = await start(standard, "reviewed", {"amount": 12000})
            await standard.approve(rid, "alice", amount=10000)
            await wait_for_state(standard, rid, "completed")
            return rid

        async def rejected() -> str:
            rid = await start(standard, "rejected", {"amount": 12000})
            await standard.reject(rid, "bob", "no damage visible")
            await wait_for_state(standard, rid, "cancelled")
            return rid

        async def escalated_then_expired() -> str:
            rid = await start(standard, "expired", {"amount": 20000})
            handle = skipper.client.get_workflow_handle(rid)
            await skipper.fast_forward(handle, timedelta(hours=25))
            await eventually(lambda: standard.status(rid), lambda s: s.escalation_level == 1)
            await skipper.fast_forward(handle, timedelta(hours=400))
            await wait_for_state(standard, rid, "cancelled")
            return rid

        async def item_returned_and_restocked() -> str:
            lines = [{"sku": "MUG-1", "quantity": 2, "unit_price": 1200, "category": "kitchen"}]
            rid = await start(
                returns,
                "returned",
                {"lines": lines},
                amount=None,
                lines=[{"sku": "MUG-1", "quantity": 2}],
            )
            await eventually(lambda: returns.status(rid), lambda s: s.awaiting.value == "customer")
            await returns.item_received(rid, "warehouse-1")
            await wait_for_state(returns, rid, "completed")
            return rid

        async def pending_settled_by_webhook() -> str:
            await admin.set_faults({"payment.pending_rate": "1", "payment.settle_after_ms": "200"})
            try:
                rid = await start(standard, "pending", {"amount": 3000})
                await wait_for_state(standard, rid, "completed")
            finally:
                await admin.clear_faults()
            return rid

        async def refused_then_operator_cancel() -> str:
            await admin.set_faults({"payment.refuse": "expired_card"})
            try:
                rid = await start(standard, "refused", {"amount": 3000})
                await eventually(
                    lambda: standard.status(rid), lambda s: s.awaiting.value == "operator"
                )
            finally:
                await admin.clear_faults()
            await standard.operator_cancel(rid, "ops-1", "card expired")
            await wait_for_state(standard, rid, "cancelled")
            return rid

        async def failed_then_operator_retry() -> str:
            await admin.set_faults({"payment.pending_rate": "1", "payment.settle_after_ms": "100",
                                    "payment.settle_failure_rate": "1"})  # fmt: skip
            try:
                rid = await start(standard, "retried", {"amount": 3000})
                await eventually(
                    lambda: standard.status(rid), lambda s: s.awaiting.value == "operator"
                )
            finally:
                await admin.clear_faults()
            await standard.operator_retry(rid, "ops-1")
            await wait_for_state(standard, rid, "completed")
            return rid

        async def v2_fee_and_lead_approval() -> str:
            lines = [{"sku": "TV-1", "quantity": 1, "unit_price": 30000, "category": "electronics"}]
            rid = await start(
                v2, "v2-fee", {"lines": lines}, amount=None,
                lines=[{"sku": "TV-1", "quantity": 1}], reason_code="changed_mind",
            )  # fmt: skip
            await eventually(lambda: v2.status(rid), lambda s: s.awaiting.value == "reviewer")
            await v2.approve(rid, "li", role="lead")
            await wait_for_state(v2, rid, "completed")
            return rid

        async def v2_zh_wallet_auto() -> str:
            rid = await start(
                v2, "v2-zh", {"amount": 3000, "payment_rail": "wallet"}, locale="zh-CN"
            )
            await wait_for_state(v2, rid, "completed")
            return rid

        scenarios: dict[str, Callable[[], Awaitable[str]]] = {
            "v2_fee_and_lead_approval": v2_fee_and_lead_approval,
            "v2_zh_wallet_auto": v2_zh_wallet_auto,
            "auto_approved": auto_approved,
            "reviewed_lower_amount": reviewed_lower_amount,
            "rejected": rejected,
            "escalated_then_expired": escalated_then_expired,
            "item_returned_and_restocked": item_returned_and_restocked,
            "pending_settled_by_webhook": pending_settled_by_webhook,
            "refused_then_operator_cancel": refused_then_operator_cancel,
            "failed_then_operator_retry": failed_then_operator_retry,
        }
        HISTORIES.mkdir(exist_ok=True)
        for name, scenario in scenarios.items():
            if only and name not in only:
                continue
            refund_id = await scenario()
            history = await skipper.client.get_workflow_handle(refund_id).fetch_history()
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
    except Exception as err:  # report and still stop the stack
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
