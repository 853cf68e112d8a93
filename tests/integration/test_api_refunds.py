"""Refunds through the HTTP API as customers, staff and services use it: the Idempotency-Key
is the refund's key (the same request is one refund, however often and however concurrently
it arrives), customers only ever see their own refunds (approvals and withdrawals:
test_api_staff_actions.py)."""

from __future__ import annotations

import time
import uuid
from functools import partial
from typing import Any

import asyncpg
import pytest

from activities.pg_store import PostgresRefundStore
from bench.history_cost import history_cost
from client.refund_client import RefundClient
from client.timings import parse_server_timing
from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.helpers import eventually
from tests.integration.test_audit_store import batch
from tests.integration.test_refund_flow import make_request
from workflows.models import OrderLine, ReserveInput
from workflows.states import RefundState

pytestmark = pytest.mark.stack


def customer() -> str:
    return f"cust_{uuid.uuid4().hex[:8]}"


async def own_order(
    sandbox: Sandbox, who: str, captured: int, asked: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An order of `who`'s (general goods) and the body of a request for `asked` of it."""
    order = await sandbox.order(amount=captured, category="general", customer_id=who)
    return order, {"order_id": order["order_id"], "amount": asked, "reason_code": "damaged"}


async def audit_of(db: asyncpg.Pool, refund_id: str) -> list[tuple[str, str]]:
    rows = await db.fetch(
        "SELECT event, actor FROM refundflow.audit WHERE refund_id = $1 ORDER BY seq", refund_id
    )
    return [(r["event"], r["actor"]) for r in rows]


async def pending(api: Api, sandbox: Sandbox, who: str, amount: int = 25000) -> dict[str, Any]:
    """A refund of `who`'s waiting for a reviewer, as `who` was answered."""
    order = await sandbox.order(amount=30000, category="general", customer_id=who)
    made = await api.request_refund(
        who, {"order_id": order["order_id"], "amount": amount, "reason_code": "damaged"}
    )
    assert made.status == 201, made.body
    assert made.body["status"] == "requested", made.body  # the customer's view
    # Created: where it is (a trial found the 201 without it), for a customer their /track.
    assert made.headers["Location"] == f"/v1/refunds/{made.body['refund_id']}/track"
    body: dict[str, Any] = made.body
    return body


async def test_a_customer_tracks_their_own_refund_and_never_reads_anothers(
    api: Api, sandbox: Sandbox
) -> None:
    owner, other = customer(), customer()
    made = await pending(api, sandbox, owner)
    refund_id = made["refund_id"]
    mine = await api.call("GET", f"/v1/refunds/{refund_id}/track", as_=owner)
    assert mine.status == 200 and mine.body["refund_id"] == refund_id
    assert "support_reply" not in mine.body
    assert all(set(entry) == {"at", "label"} for entry in mine.body["timeline"])  # no actors
    # Another customer's refund is as unknown as one that does not exist, on every route (a
    # 403 would say it exists); the owner is refused staff's views.
    for path in ("", "/track", "/audit", "/events"):
        theirs = await api.call("GET", f"/v1/refunds/{refund_id}{path}", as_=other)
        assert (theirs.status, theirs.body["detail"]) == (404, f"no refund {refund_id}"), path
    for path in ("", "/audit", "/events"):
        own = await api.call("GET", f"/v1/refunds/{refund_id}{path}", as_=owner)
        assert own.status == 403, (path, own.body)
    listed = await api.call("GET", "/v1/refunds", as_=other)
    assert refund_id not in {item["refund_id"] for item in listed.body["items"]}
    own_list = await api.call("GET", "/v1/refunds", as_=owner)
    assert [item["refund_id"] for item in own_list.body["items"]] == [refund_id]
    # Their list tells each refund as /track does, without staff's fields (it carried who
    # acts, the escalation level and the policy version, and a first approver's cut).
    [row] = own_list.body["items"]
    assert set(row) == {"refund_id", "order_id", "status", "amount", "currency", "requested_at"}
    assert (row["status"], row["amount"]) == (mine.body["status"], mine.body["amount"])
    escalated = await api.call("GET", "/v1/refunds?escalated=true", as_=owner)
    # Refused as ?customer= of someone else is: 403.
    assert (escalated.status, escalated.body["detail"]) == (
        403,
        "refused: escalated is a filter for staff only",
    )
    staff = await api.call("GET", f"/v1/refunds?order={made['order_id']}", as_="li")
    assert {"awaiting", "escalation_level", "policy_version"} <= set(staff.body["items"][0])


async def test_a_refund_answered_202_is_in_its_customers_list_before_it_records(
    api: Api, sandbox: Sandbox, refunds: RefundClient, db: asyncpg.Pool
) -> None:
    """Between a 202 (Prefer: respond-async) and the workflow's first record only the
    opening status exists (as of seq 0, no audit entry yet): the customer's own list reads
    who asked from it (api/listing.asked_by, which the console's customer filter shares).
    Written here as RefundClient writes it, for a refund no worker will record, so the
    moment does not pass."""
    owner, other = customer(), customer()
    order = await sandbox.order(amount=4000, customer_id=owner)
    recorded = await refunds.request(make_request(order, requested_by=owner))
    refund_id = f"rf_{uuid.uuid4().hex[:24]}"
    opening = batch(refund_id, [1], RefundState.PENDING_REVIEW).projection
    view = recorded.model_copy(update={"refund_id": refund_id, "timeline": recorded.timeline[:1]})
    await PostgresRefundStore(db).open_status(opening, view)
    try:
        listed = await api.call("GET", "/v1/refunds", as_=owner)
        assert refund_id in {item["refund_id"] for item in listed.body["items"]}, listed.body
        theirs = await api.call("GET", "/v1/refunds", as_=other)
        assert refund_id not in {item["refund_id"] for item in theirs.body["items"]}
    finally:  # no workflow will ever record it: other tests must not meet it
        await db.execute("DELETE FROM refundflow.refund_status WHERE refund_id = $1", refund_id)


async def test_eligibility_and_policies(api: Api, sandbox: Sandbox) -> None:
    who = customer()
    _, body = await own_order(sandbox, who, 30000, 25000)
    answer = await api.call("POST", "/v1/eligibility", as_=who, json=body)
    assert answer.status == 200, answer.body
    assert answer.body["eligible"] is True and answer.body["refund_amount"] == 25000
    # A customer reads that a person decides, not which role, limit or budget (a trial:
    # a customer can size requests to slip under them); staff read it all.
    assert answer.body["summary"] == "Eligible: 250.00 USD, once a reviewer approves it."
    assert answer.body["approval_by"] is None and "role" not in str(answer.body)
    staff = await api.call("POST", "/v1/eligibility", as_="li", json=body)
    assert staff.body["approval_by"] == "lead" and "(role lead or above)" in str(staff.body)
    listed = await api.call("GET", "/v1/policies", as_=who)
    assert "standard-v3" in {f"{p['name']}-v{p['version']}" for p in listed.body}
    for described in listed.body:  # the list too names no control (a trial)
        assert not [k for k in described["settings"] if k.startswith(("approval", "budgets"))]
    one = await api.call("GET", "/v1/policies/standard@v3", as_=who)
    assert one.body["settings"]["eligibility.return_window_days"] == 30
    assert not [k for k in one.body["settings"] if k.startswith(("approval", "authority"))]
    whole = await api.call("GET", "/v1/policies/standard@v3", as_="li")
    assert whole.body["settings"]["authority.support"] == 20000
    shouted = await api.call("GET", "/v1/policies/STANDARD-V3", as_="li")
    assert shouted.body == whole.body  # a trial: "path.name: is not in the expected form"
    missing = await api.call("GET", "/v1/policies/standard-v99", as_=who)
    assert missing.status == 404 and missing.problem_type == "urn:refundflow:problem:not-found"
    # What is on file, never where: the server's folders are nobody's business.
    assert missing.body["detail"].startswith("policy 'standard-v99' not found (available: ")
    assert "standard-v3" in missing.body["detail"] and "/" not in missing.body["detail"]


async def test_a_customer_is_answered_with_their_own_view_and_the_issuer_is_recorded(
    api: Api, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    who = customer()
    made = await pending(api, sandbox, who)  # 250.00: waits for a reviewer, nothing moves
    tracked = await api.call("GET", f"/v1/refunds/{made['refund_id']}/track", as_=who)
    assert tracked.status == 200
    assert set(made) == set(tracked.body)  # the shape of /track, nothing of the staff view
    for same in ("refund_id", "status", "message", "amount", "timeline"):
        assert made[same] == tracked.body[same], same
    assert not {"support_reply", "policy_notes", "requested_by", "state"} & set(made)
    # Staff asking for that customer get the status, as before.
    _, body = await own_order(sandbox, who, 30000, 25000)
    for_them = await api.request_refund("alice", body)
    assert for_them.status == 201 and for_them.body["state"] == "pending_review"
    assert "support_reply" in for_them.body and for_them.body["requested_by"] == who

    # The `requested` entry records who vouched for the requester, as every other entry.
    for refund_id in (made["refund_id"], for_them.body["refund_id"]):
        first = "SELECT event, actor, issuer FROM refundflow.audit WHERE refund_id = $1 AND seq = 1"
        rows = await eventually(partial(db.fetch, first, refund_id), bool)
        assert [tuple(row) for row in rows] == [("requested", who, api.issuer)]


async def test_answers_to_a_customer_never_name_another_customers_refund(
    api: Api, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    who = customer()
    order = await sandbox.order(
        lines=[{"sku": "LAMP", "quantity": 2, "unit_price": 5000}], customer_id=who
    )
    # A hold on the order for someone else: one made before refundflow refused a request for
    # anyone but the order's customer (RefundClient, the API and the workflow refuse it now).
    lamp = OrderLine(sku="LAMP", quantity=1, unit_price=5000, category="general")
    theirs = ReserveInput(
        refund_id=f"rf_{uuid.uuid4().hex[:24]}", order_id=order["order_id"], amount=5000,
        currency="USD", captured_amount=10000, lines=[lamp], reason_code="damaged",
        order_lines=[lamp.model_copy(update={"quantity": 2})], requested_by=customer(),
    )  # fmt: skip
    assert (await PostgresRefundStore(db).reserve(theirs)).reserved
    asked = {"order_id": order["order_id"], "lines": [{"sku": "LAMP", "quantity": 2}]}
    body = {**asked, "reason_code": "damaged"}

    staff = await api.call("POST", "/v1/eligibility", as_="li", json=body)
    assert staff.body["held_by"] == [theirs.refund_id]  # support may look at it
    answer = await api.call("POST", "/v1/eligibility", as_=who, json=body)
    assert answer.status == 200 and answer.body["eligible"] is False, answer.body
    assert theirs.refund_id not in str(answer.body) and answer.body["held_by"] == []
    assert "another refund" in str(answer.body)
    refused = await api.request_refund(who, body)
    assert refused.status == 422, refused.body
    assert theirs.refund_id not in refused.body["detail"]
    assert "held or refunded by another refund" in refused.body["detail"]

    # Their own refund is named to them.
    own = await api.request_refund(who, {**body, "lines": [{"sku": "LAMP", "quantity": 1}]})
    assert own.status == 201, own.body
    again = await api.call("POST", "/v1/eligibility", as_=who, json=body)
    assert again.body["held_by"] == [own.body["refund_id"]]


def timing_of(reply: Any) -> dict[str, float]:
    said = {name.lower(): value for name, value in reply.headers.items()}
    return parse_server_timing(said.get("server-timing", ""))


async def test_an_answer_says_where_its_time_went_in_server_timing(
    api: Api, sandbox: Sandbox
) -> None:
    """Server-Timing (W3C) names each step of an answer with its duration: what the bench
    splits an acknowledgement by, and what a caller chasing a slow answer reads."""
    order = await sandbox.order(amount=30000, category="general", customer_id=customer())
    body = {"order_id": order["order_id"], "amount": 30000, "reason_code": "damaged"}
    prefer = {"Idempotency-Key": f"t-{uuid.uuid4().hex[:8]}", "Prefer": "respond-async"}
    started = time.monotonic()
    made = await api.call("POST", "/v1/refunds", as_="checkout", json=body, headers=prefer)
    waited_ms = (time.monotonic() - started) * 1000
    assert made.status == 202, made.body
    steps = timing_of(made)
    assert list(steps) == ["auth", "order", "ledger", "hold", "start", "opening"], steps
    assert all(ms >= 0 for ms in steps.values()) and sum(steps.values()) <= waited_ms

    read = await api.call("GET", f"/v1/refunds/{made.body['refund_id']}", as_="li")
    assert {"auth", "projection"} <= set(timing_of(read)), read.headers
    # A refusal says how far it got: the order fully held, nothing was started.
    other_key = {**prefer, "Idempotency-Key": f"t-{uuid.uuid4().hex[:8]}"}
    refused = await api.call("POST", "/v1/refunds", as_="checkout", json=body, headers=other_key)
    assert refused.status == 422, refused.body
    assert list(timing_of(refused)) == ["auth", "order", "ledger", "hold"]
    # Not to customers: which steps their refusal took is not theirs to read.
    owner = order["customer_id"]
    asked = await api.call("POST", "/v1/refunds", as_=owner, json=body, headers=other_key)
    assert asked.status == 422 and timing_of(asked) == {}, asked.headers


async def test_prefer_respond_async_answers_as_soon_as_the_refund_is_started(
    api: Api, sandbox: Sandbox, db: asyncpg.Pool, refunds: RefundClient
) -> None:
    """A checkout that only needs to know the refund exists (RFC 7240 respond-async) is
    answered 202 with the status the workflow opens with, as the workflow records it."""
    who = customer()
    order, body = await own_order(sandbox, who, 30000, 3000)
    key = f"async-{uuid.uuid4().hex[:8]}"
    prefer = {"Idempotency-Key": key, "Prefer": "wait=1, Respond-Async"}
    made = await api.call("POST", "/v1/refunds", as_="checkout", json=body, headers=prefer)
    assert made.status == 202, made.body
    refund_id = made.body["refund_id"]
    said = {name.lower(): value for name, value in made.headers.items()}
    assert said["preference-applied"] == "respond-async"
    assert said["location"] == f"/v1/refunds/{refund_id}"
    assert (made.body["state"], made.body["awaiting"]) == ("pending_review", "nothing")
    assert made.body["next_step"].startswith("The request is checked against the order")
    [opened] = made.body["timeline"]
    assert (opened["event"], opened["actor"], made.body["submitted_by"]) == (
        "requested", who, "checkout"
    )  # fmt: skip

    # A customer is sent where a customer can follow it: their /track.
    _, own_body = await own_order(sandbox, who, 30000, 3000)
    mine = await api.call("POST", "/v1/refunds", as_=who, json=own_body, headers=prefer)
    assert mine.status == 202, mine.body
    followed = await api.call("GET", mine.headers["Location"], as_=who)
    assert mine.headers["Location"].endswith("/track") and followed.status == 200

    # Read at once, the refund answers from its projection: never before its opening.
    right_after = await api.call("GET", said["location"], as_="li")
    assert right_after.status == 200 and right_after.body["timeline"][0]["seq"] == 1
    done = await eventually(
        lambda: api.call("GET", said["location"], as_="li"),
        lambda r: r.body["state"] == "completed",
    )
    # The answer's entry is the one the refund recorded (its time is the workflow's).
    recorded = {k: v for k, v in done.body["timeline"][0].items() if k != "at"}
    assert recorded == {k: v for k, v in opened.items() if k != "at"}
    assert (await audit_of(db, refund_id))[0][0] == "requested"
    # Three billable actions: no update, no patch marker (started on every path).
    # (The projection says completed as the workflow task records it; its history has it
    # once the task completes.)
    handle = refunds.temporal.get_workflow_handle(refund_id)
    await handle.result()
    assert history_cost(await handle.fetch_history()).breakdown == {
        "start": 1, "local activity tasks": 1, "search attribute upserts": 1,
    }  # fmt: skip

    again = await api.call("POST", "/v1/refunds", as_="checkout", json=body, headers=prefer)
    assert (again.status, again.body["state"]) == (200, "completed"), again.body
    # Asked again after a lost 202, the caller still learns where it is (a trial).
    assert again.headers["Location"] == f"/v1/refunds/{refund_id}"
    paid = await sandbox.refunds(order["order_id"])
    assert [p["amount"] for p in paid] == [3000]
