"""Shared fixtures: one real dev stack (Postgres, Temporal with time skipping, sandbox,
worker) per test session, started exactly as `refundflow dev` starts it."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from temporalio.testing import TimeSkipper, TimeSkippingConfig

from activities.http_adapters import HttpOrderSystem, HttpService
from activities.pg_store import create_pool
from client.action_attestation import signer_for
from client.connections import connect_temporal
from client.policy_source import load_policy
from client.refund_client import RefundClient
from client.settings import PROJECT_ROOT, Settings
from sandbox.admin_client import SandboxAdmin
from tests.integration.helpers import administer_with
from worker.devstack import DevStack, StackConfig

# Under pytest-xdist (./scripts/test: --dist loadfile --no-loadscope-reorder) the order in
# which files are handed to the workers: the slow folders first and the many quick unit
# tests last, so that the workers finish together rather than one running a long file alone.
XDIST_FOLDER_ORDER = ("chaos", "workflow", "integration", "replay", "unit")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):
        return  # one process: the usual order

    def folder_rank(item: pytest.Item) -> int:
        folder = item.nodeid.split("/")[1] if item.nodeid.startswith("tests/") else ""
        order = XDIST_FOLDER_ORDER
        return order.index(folder) if folder in order else len(order)

    items.sort(key=folder_rank)  # stable: files keep their order, and so do their tests


@pytest.fixture(scope="session")
def stack() -> Iterator[DevStack]:
    home = Path(tempfile.mkdtemp(prefix="refundflow-test-"))
    dev = DevStack(StackConfig.for_tests(home))
    try:
        dev.start(progress=lambda line: None)
        if dev.owner_database_url and dev.database_url:
            # The app's role may not create databases; scratch ones are made by the owner.
            administer_with(dev.database_url, dev.owner_database_url)
        yield dev
    finally:
        dev.stop()
        if os.environ.get("REFUNDFLOW_KEEP_TEST_HOME"):
            print(f"test stack state kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(stack: DevStack) -> Settings:
    return Settings.from_env(stack.env())


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="session")
async def skipper(settings: Settings) -> TimeSkipper:
    """A client whose workflows run in virtual time, advanced only by fast_forward()."""
    temporal = await connect_temporal(settings)
    return TimeSkipper(temporal, config=TimeSkippingConfig(enabled=False))


@contextlib.asynccontextmanager
async def closed_at_the_end(client: RefundClient) -> AsyncIterator[RefundClient]:
    """The client, its Postgres pool closed before the stack stops: a pool left open sees its
    connections drop and starts reconnecting as the test run's loop ends."""
    try:
        yield client
    finally:
        await client.close()


def make_client(
    skipper: TimeSkipper, settings: Settings, http: aiohttp.ClientSession, policy: str
) -> RefundClient:
    return RefundClient(
        skipper.client,
        HttpOrderSystem(HttpService(http, settings.orders_url, "order system")),
        task_queue=settings.task_queue,
        policy=load_policy(PROJECT_ROOT / "policies", policy),
        database_url=settings.database_url,
        signer=signer_for(settings),  # acts as the API does: vouched for
    )


@pytest.fixture(scope="session")
async def refunds(
    skipper: TimeSkipper, settings: Settings, http: aiohttp.ClientSession
) -> AsyncIterator[RefundClient]:
    """RefundClient under the policy in force for new refunds, as `refundflow dev` and a
    deployment run it (the product's default, standard-v4): what most tests should prove."""
    async with closed_at_the_end(make_client(skipper, settings, http, settings.policy)) as client:
        yield client


@pytest.fixture(scope="session")
async def refunds_v1(
    skipper: TimeSkipper, settings: Settings, http: aiohttp.ClientSession
) -> AsyncIterator[RefundClient]:
    """RefundClient under standard-v1 (no fees, no authority limits): for refunds requested
    before v2 was in force, which keep v1 for their whole life."""
    async with closed_at_the_end(make_client(skipper, settings, http, "standard-v1")) as client:
        yield client


@pytest.fixture(scope="session")
async def refunds_v2(
    skipper: TimeSkipper, settings: Settings, http: aiohttp.ClientSession
) -> AsyncIterator[RefundClient]:
    """RefundClient pinned to standard-v2, for tests of what v2 itself says (fees, approval
    authority by role, rails): they keep proving it when a later version becomes the default."""
    async with closed_at_the_end(make_client(skipper, settings, http, "standard-v2")) as client:
        yield client


@pytest.fixture(scope="session")
async def returns_refunds(
    skipper: TimeSkipper, settings: Settings, http: aiohttp.ClientSession
) -> AsyncIterator[RefundClient]:
    """RefundClient under the returns-v1 policy: refund when the item is received."""
    async with closed_at_the_end(make_client(skipper, settings, http, "returns-v1")) as client:
        yield client


@pytest.fixture(scope="session")
async def db(stack: DevStack, settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The tests' own look behind the scenes, as the schemas' owner (setting up scenarios
    the app's role may not): the worker, the sandbox, RefundClient and the CLI connect as
    the app's role (`settings.database_url`)."""
    pool = await create_pool(stack.owner_database_url or settings.require_database_url())
    yield pool
    await pool.close()


class Sandbox:
    """Test access to the sandbox systems over their real HTTP APIs."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def order(self, **spec: Any) -> dict[str, Any]:
        spec.setdefault("currency", "USD")
        spec.setdefault("delivered_days_ago", 2)
        async with self.http.post(f"{self.base}/orders/v1/orders", json=spec) as r:
            assert r.status == 201, await r.text()
            body: dict[str, Any] = await r.json()
            return body

    async def refunds(self, order_id: str) -> list[dict[str, Any]]:
        async with self.http.get(
            f"{self.base}/payments/v1/refunds", params={"order_id": order_id}
        ) as r:
            return list((await r.json())["data"])

    async def provider_refund(
        self, order: dict[str, Any], refund_id: str, amount: int
    ) -> dict[str, Any]:
        """A refund made at the provider around refundflow (as in its dashboard), carrying
        `refund_id` in its metadata as refundflow's own do; pending or not as faults say."""
        body = {
            "payment_reference": order["payment_reference"],
            "amount": amount,
            "currency": order["currency"],
            "metadata": {"refund_id": refund_id},
        }
        headers = {"Idempotency-Key": f"outside-{uuid.uuid4().hex}"}
        async with self.http.post(
            f"{self.base}/payments/v1/refunds", json=body, headers=headers
        ) as r:
            assert r.status == 201, await r.text()
            made: dict[str, Any] = await r.json()
            return made

    async def inbox(self, refund_id: str) -> list[dict[str, Any]]:
        """What the customer was notified of (the sandbox customer inbox), in order."""
        async with self.http.get(
            f"{self.base}/_sandbox/inbox", params={"refund_id": refund_id}
        ) as r:
            return list((await r.json())["data"])

    async def movements(self, reference: str) -> list[dict[str, Any]]:
        async with self.http.get(f"{self.base}/inventory/v1/movements") as r:
            return [m for m in (await r.json())["data"] if m["reference"] == reference]


@pytest.fixture(scope="session")
def sandbox(stack: DevStack, http: aiohttp.ClientSession) -> Sandbox:
    return Sandbox(http, stack.sandbox_url)


@pytest.fixture
async def faults(stack: DevStack, http: aiohttp.ClientSession) -> AsyncIterator[SandboxAdmin]:
    """Fault injection for one test; every fault is cleared afterwards."""
    admin = SandboxAdmin(HttpService(http, stack.sandbox_url, "sandbox"))
    await admin.clear_faults()
    try:
        yield admin
    finally:
        await admin.clear_faults()


FEE_FREE_REASONS = ("damaged", "defective", "not_as_described", "wrong_item", "duplicate_charge")
"""Reasons the policy keeps no fee back for: one amount asked for each is paid in full. (The
same amount for the same reason on one order waits for a reviewer: second_asks.asked_again.)"""


def unique_key(prefix: str = "key") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
