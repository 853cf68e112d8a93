"""Chaos harness: a private stack whose processes we kill and restart, and what a case needs
to drive refunds through it and to read the evidence (the sandbox's fault counters and call
log, the workflow's history). The invariant checks are in tests/chaos/invariants.py.

Every refund a case asks for carries its declared end (tests/chaos/ends.py). Every error the
harness sees is recorded, and only the errors documented as "no answer" are retried.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from temporalio.api.history.v1 import HistoryEvent
from temporalio.testing import TimeSkipper, TimeSkippingConfig

from activities.http_adapters import HttpOrderSystem, HttpService
from activities.pg_store import create_pool
from client.action_attestation import signer_for
from client.connections import connect_temporal
from client.errors import RefundflowError
from client.policy_source import load_policy
from client.refund_client import RefundClient
from client.settings import PROJECT_ROOT, Settings
from sandbox.admin_client import SandboxAdmin
from tests.chaos.ends import End, at_an_end
from worker.devstack import DevStack, StackConfig
from workflows.models import RefundRequest, StatusView

SETTLE_TIMEOUT = 120.0
"""How long a refund may take to reach its end under faults."""
REQUEST_ATTEMPTS = 30
"""A service retries a request that got no answer; 30 tries 0.5 s apart outlast a restart."""
Counters = dict[str, dict[str, int]]
SUGGEST_CONTINUE_AT = 300
"""The chaos stack's server suggests continue-as-new from this many events (production:
4,096), so a refund that waits for 90 days crosses it several times (one run of ~1,450
events otherwise); no other case comes near it."""


def no_answer(err: RefundflowError) -> bool:
    """The only errors worth retrying. The README's typed errors (InvalidRefundRequest,
    RefundConflict, RefundActionRefused, RefundNotFound) are answers, and asking again gets
    the same answer; the untyped RefundflowError is what the client raises when it got none
    (Temporal, the database or the order system unreachable, no answer in time)."""
    return type(err) is RefundflowError


@dataclass
class Chaos:
    """Everything a case needs; `orders`, `expected` and `errors` collect what a run did."""

    stack: DevStack
    refunds: RefundClient
    returns: RefundClient
    faults: SandboxAdmin
    db: asyncpg.Pool
    http: aiohttp.ClientSession
    skipper: TimeSkipper
    """Fast-forwards one refund's virtual time (the others run in real time)."""
    orders: dict[str, int] = field(default_factory=dict)
    expected: dict[str, tuple[End, ...]] = field(default_factory=dict)
    """Refund id -> the ends the case declared it may reach (usually exactly one)."""
    errors: list[str] = field(default_factory=list)
    """Every error the harness saw in this run, retried or not."""

    @property
    def refund_ids(self) -> set[str]:
        return set(self.expected)

    def new_run(self) -> None:
        self.orders.clear()
        self.expected.clear()
        self.errors.clear()

    async def order(self, **spec: Any) -> dict[str, Any]:
        spec.setdefault("currency", "USD")
        spec.setdefault("delivered_days_ago", 2)
        async with self.http.post(
            f"{self.stack.sandbox_url}/orders/v1/orders", json=spec
        ) as response:
            assert response.status == 201, await response.text()
            order: dict[str, Any] = await response.json()
        self.orders[order["order_id"]] = order["captured_amount"]
        return order

    async def request(
        self,
        order: dict[str, Any],
        *,
        expect: End | tuple[End, ...],
        client: RefundClient | None = None,
        **fields: Any,
    ) -> StatusView:
        """Ask for a refund the way a service does; `expect` is how it must end."""
        values: dict[str, Any] = {
            "refund_key": f"chaos-{uuid.uuid4().hex[:12]}",
            "order_id": order["order_id"],
            "amount": order["captured_amount"],
            "reason_code": "damaged",
            "channel": "api",
            # The order's own customer (one made up per order by the sandbox): the policy's
            # per-customer auto-approval budget must not span runs, and a refund is its
            # order's customer's (RefundClient refuses anyone else).
            "requested_by": order["customer_id"],
        }
        values.update(fields)
        request = RefundRequest.model_validate(values)
        for attempt in range(REQUEST_ATTEMPTS):
            try:
                status = await (client or self.refunds).request(request)
                break
            except RefundflowError as err:
                self.errors.append(f"request {request.refund_key}: {type(err).__name__}: {err}")
                if not no_answer(err) or attempt == REQUEST_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.5)
        ends = expect if isinstance(expect, tuple) else (expect,)
        known = self.expected.setdefault(status.refund_id, ends)
        assert known == ends, f"{status.refund_id} declared to end {known} and {ends}"
        return status

    async def status(self, refund_id: str) -> StatusView:
        """The refund's status, asked again while there is no answer (recorded)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            try:
                return await self.refunds.status(refund_id)
            except RefundflowError as err:
                self.errors.append(f"status {refund_id}: {type(err).__name__}: {err}")
                if not no_answer(err) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.2)

    async def injected(self) -> Counters:
        """How often each fault has fired, per system, since the sandbox started."""
        async with self.http.get(f"{self.stack.sandbox_url}/_sandbox/injected") as response:
            assert response.status == 200, await response.text()
            counts: Counters = await response.json()
        return counts

    async def calls(self, refund_id: str, system: str = "payment") -> list[dict[str, Any]]:
        """Every call the sandbox saw about this refund, in order (sandbox.faults.Call)."""
        url = f"{self.stack.sandbox_url}/_sandbox/calls"
        async with self.http.get(url, params={"refund_id": refund_id}) as response:
            assert response.status == 200, await response.text()
            calls: dict[str, list[dict[str, Any]]] = await response.json()
        return calls.get(system, [])

    async def history(self, refund_id: str) -> list[HistoryEvent]:
        handle = self.refunds.temporal.get_workflow_handle(refund_id)
        return list((await handle.fetch_history()).events)


async def start_chaos() -> tuple[Chaos, Path]:
    home = Path(tempfile.mkdtemp(prefix="refundflow-chaos-"))
    config = StackConfig.for_tests(home)
    config.temporal_persistent = True  # so the server can be restarted mid-refund
    config.temporal_dynamic_config = {
        "limit.historyCount.suggestContinueAsNew": str(SUGGEST_CONTINUE_AT)
    }
    stack = DevStack(config)
    try:
        await asyncio.to_thread(stack.start, lambda line: None)
    except BaseException:  # a stack that did not start leaves no processes and no folder
        await asyncio.to_thread(stack.stop)
        shutil.rmtree(home, ignore_errors=True)
        raise
    settings = Settings.from_env(stack.env())
    http = aiohttp.ClientSession()
    # Time skipping is on in the server, off for every refund until a case fast-forwards it.
    skipper = TimeSkipper(
        await connect_temporal(settings), config=TimeSkippingConfig(enabled=False)
    )
    temporal = skipper.client
    orders = HttpOrderSystem(HttpService(http, settings.orders_url, "order system"))

    def client(policy: str) -> RefundClient:
        return RefundClient(
            temporal,
            orders,
            task_queue=settings.task_queue,
            policy=load_policy(PROJECT_ROOT / "policies", policy),
            database_url=settings.database_url,
            signer=signer_for(settings),  # acts as the API does: vouched for
        )

    chaos = Chaos(
        stack=stack,
        # The policy in force for new refunds, as the dev stack and a deployment run it.
        refunds=client(settings.policy),
        # The one policy that refunds on the returned item's receipt, so restocks (and the
        # inventory's faults) happen: only the 5xx storm uses it.
        returns=client("returns-v1"),
        faults=SandboxAdmin(HttpService(http, stack.sandbox_url, "sandbox")),
        db=await create_pool(settings.require_database_url()),
        http=http,
        skipper=skipper,
    )
    return chaos, home


async def stop_chaos(chaos: Chaos, home: Path) -> None:
    await chaos.refunds.close()
    await chaos.returns.close()
    await chaos.db.close()
    await chaos.http.close()
    await asyncio.to_thread(chaos.stack.stop)
    shutil.rmtree(home, ignore_errors=True)


async def settle(chaos: Chaos, refund_id: str, timeout: float = SETTLE_TIMEOUT) -> StatusView:
    """The refund's status once it is at an end (ends.at_an_end), whichever end that is:
    whether it is the declared one is for the invariant check to say."""
    deadline = time.monotonic() + timeout
    last: StatusView | str = "never answered"
    while time.monotonic() < deadline:
        try:
            last = await chaos.refunds.status(refund_id)
            if at_an_end(last):
                return last
        except RefundflowError as err:  # Temporal restarting, worker being replaced, ...
            chaos.errors.append(f"status {refund_id}: {type(err).__name__}: {err}")
            if not no_answer(err):
                raise
            last = str(err)
        await asyncio.sleep(0.2)
    raise AssertionError(f"{refund_id} reached no end in {timeout:.0f} s: {last}")
