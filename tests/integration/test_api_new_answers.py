"""Concurrent and repeated requests through the HTTP API: one refund and one payment
however often a request arrives, and exactly one answer that says it is new (201, or 202
with respond-async): the one the refund counts for in `refunds_requested`."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from activities.pg_store import PostgresRefundStore
from client import starting
from client.edge import hold_at_the_edge, resolve
from client.refund_client import RefundClient, refund_id_for
from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.helpers import eventually
from tests.integration.test_api_refunds import audit_of, customer, own_order
from workflows.models import RefundRequest

pytestmark = pytest.mark.stack

NEW_ANSWER = pytest.mark.parametrize(
    ("prefer", "new"), [({}, 201), ({"Prefer": "respond-async"}, 202)], ids=["first-step", "async"]
)


async def test_same_key_same_body_is_one_refund_and_a_changed_body_conflicts(
    api: Api, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    who = customer()
    order, body = await own_order(sandbox, who, 30000, 12000)
    key = f"ticket-{uuid.uuid4().hex[:8]}"
    first = await api.request_refund(who, body, key=key)
    again = await api.request_refund(who, body, key=key)
    assert (first.status, again.status) == (201, 200)
    assert again.body["refund_id"] == first.body["refund_id"]
    staff_view = await api.call("GET", f"/v1/refunds/{first.body['refund_id']}", as_="li")
    assert staff_view.body["refund_key"] == key

    changed = await api.request_refund(who, {**body, "amount": 11000}, key=key)
    assert changed.status == 409 and changed.problem_type == "urn:refundflow:problem:conflict"
    # Another customer reusing the key (on an order that is not theirs) learns nothing: not
    # even that the order exists.
    stranger = await api.request_refund(customer(), body, key=key)
    assert stranger.status == 422, stranger.body
    assert stranger.body["detail"] == f"unknown order {order['order_id']}"
    count = await db.fetchval(
        "SELECT count(*) FROM refundflow.refund_status WHERE order_id = $1", order["order_id"]
    )
    assert count == 1


@NEW_ANSWER
async def test_fifty_concurrent_identical_requests_make_one_refund_and_one_payment(
    api: Api, sandbox: Sandbox, db: asyncpg.Pool, prefer: dict[str, str], new: int
) -> None:
    who = customer()
    order, body = await own_order(sandbox, who, 9000, 3000)
    headers = {"Idempotency-Key": f"burst-{uuid.uuid4().hex[:8]}", **prefer}
    replies = await asyncio.gather(
        *(api.call("POST", "/v1/refunds", as_=who, json=body, headers=headers) for _ in range(50))
    )
    # One request made the refund (its start did); the others are answered as asked before.
    statuses = sorted(r.status for r in replies)
    assert statuses == [200] * 49 + [new], [(r.status, r.body) for r in replies]
    assert len({r.body["refund_id"] for r in replies}) == 1
    refund_id = replies[0].body["refund_id"]
    rows = await db.fetch(
        "SELECT refund_id FROM refundflow.refund_status WHERE order_id = $1", order["order_id"]
    )
    assert [r["refund_id"] for r in rows] == [refund_id]
    # Auto-approved (30.00): paid once, whatever the burst.
    paid = await eventually(lambda: sandbox.refunds(order["order_id"]), lambda r: len(r) >= 1)
    assert len(paid) == 1 and paid[0]["amount"] == 3000
    requested = [a for a in await audit_of(db, refund_id) if a[0] == "requested"]
    assert requested == [("requested", who)]


@NEW_ANSWER
async def test_concurrent_requests_the_policy_declines_get_one_new_answer(
    api: Api, sandbox: Sandbox, db: asyncpg.Pool, prefer: dict[str, str], new: int
) -> None:
    """Nothing is held for a request outside the return window, so the hold cannot pick
    the new one: the start does (only one can make the refund, and its answer says so)."""
    who = customer()
    order = await sandbox.order(
        amount=9000, category="general", customer_id=who, delivered_days_ago=400
    )
    body = {"order_id": order["order_id"], "amount": 3000, "reason_code": "changed_mind"}
    headers = {"Idempotency-Key": f"late-{uuid.uuid4().hex[:8]}", **prefer}
    replies = await asyncio.gather(
        *(api.call("POST", "/v1/refunds", as_=who, json=body, headers=headers) for _ in range(20))
    )
    assert sorted(r.status for r in replies) == [200] * 19 + [new], [r.body for r in replies]
    [refund_id] = {r.body["refund_id"] for r in replies}
    declined = await eventually(
        lambda: audit_of(db, refund_id), lambda rows: ("decline_ineligible", "policy") in rows
    )
    assert [event for event, _ in declined].count("requested") == 1


@NEW_ANSWER
async def test_a_request_held_but_never_started_is_new_when_asked_again(
    api: Api,
    sandbox: Sandbox,
    refunds: RefundClient,
    db: asyncpg.Pool,
    prefer: dict[str, str],
    new: int,
) -> None:
    """The call that held it failed before Temporal had the refund (a crash, a timeout):
    the retry's start makes the refund, so that retry is its new answer (and its count)."""
    who = customer()
    order = await sandbox.order(amount=9000, category="general", customer_id=who)
    key = f"crash-{uuid.uuid4().hex[:8]}"
    request = RefundRequest(
        refund_key=key, order_id=order["order_id"], amount=3000, reason_code="damaged",
        channel="api", requested_by=who,
    )  # fmt: skip
    snapshot = await refunds.order(order["order_id"])
    store = PostgresRefundStore(db)
    held_before, _ = await hold_at_the_edge(
        store, refunds.policy, request, snapshot, resolve(request, snapshot),
        datetime.now(UTC), [],
    )  # fmt: skip
    assert not held_before
    body = {"order_id": order["order_id"], "amount": 3000, "reason_code": "damaged"}
    retried = await api.call(
        "POST", "/v1/refunds", as_=who, json=body,
        headers={"Idempotency-Key": key, **prefer},
    )  # fmt: skip
    assert retried.status == new, retried.body
    assert retried.body["refund_id"] == refund_id_for(order["order_id"], key)


async def test_a_lone_request_is_told_new_by_its_own_start(
    sandbox: Sandbox, refunds: RefundClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start's own response says it made the refund (client/start_outcome.py): nothing
    more is asked of Temporal. Fails first if the SDK stops handing that response over."""

    async def asked_again(*args: object) -> bool:
        raise AssertionError("asked Temporal whose start it was")

    monkeypatch.setattr(starting, "_started_by", asked_again)
    who = customer()
    order = await sandbox.order(amount=9000, category="general", customer_id=who)
    request = RefundRequest(
        refund_key=f"lone-{uuid.uuid4().hex[:8]}", order_id=order["order_id"], amount=3000,
        reason_code="damaged", channel="api", requested_by=who,
    )  # fmt: skip
    status, asked_before = await refunds.request_again_or_new(request)
    assert asked_before is False, status
    again, asked_before = await refunds.request_again_or_new(request)
    assert (again.refund_id, asked_before) == (status.refund_id, True)
