"""Approvals and withdrawals through the HTTP API: authority and four eyes from the verified
identity, who may withdraw whose refund, and services and staff listing refunds (split
from test_api_refunds.py)."""

from __future__ import annotations

import asyncpg
import pytest

from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.test_api_refunds import audit_of, customer, own_order, pending
from workflows.read_models import CustomerView

pytestmark = pytest.mark.stack


async def test_support_cannot_approve_above_its_limit_and_a_lead_can(
    api: Api, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    made = await pending(api, sandbox, customer(), amount=25000)
    refund_id = made["refund_id"]
    before = await audit_of(db, refund_id)
    refused = await api.call("POST", f"/v1/refunds/{refund_id}/approve", as_="alice", json={})
    assert refused.status == 403 and refused.problem_type == "urn:refundflow:problem:forbidden"
    assert "alice (support) may approve up to 200.00 USD" in refused.body["detail"]
    # Not even by claiming a role or a reviewer in the body: the body has no such fields.
    claimed = await api.call(
        "POST",
        f"/v1/refunds/{refund_id}/approve",
        as_="alice",
        json={"role": "finance", "reviewer": "fang"},
    )
    assert claimed.status == 422, claimed.body
    assert await audit_of(db, refund_id) == before
    status = await api.call("GET", f"/v1/refunds/{refund_id}", as_="alice")
    assert status.body["state"] == "pending_review"
    # More than the refund is the refund's refusal (409, as acting on a closed one), not a
    # role's: a trial read a 403 beside a 409 for the same kind of mistake.
    above = await api.call(
        "POST", f"/v1/refunds/{refund_id}/approve", as_="li", json={"amount": 25001}
    )
    assert above.status == 409, above.body
    assert "cannot approve 250.01 USD: more than the 250.00 USD" in above.body["detail"]
    assert await audit_of(db, refund_id) == before

    approved = await api.call("POST", f"/v1/refunds/{refund_id}/approve", as_="li", json={})
    assert approved.status == 200, approved.body
    assert approved.body["state"] in ("approved", "refunding", "completed")
    audit = await api.call("GET", f"/v1/refunds/{refund_id}/audit", as_="li")
    approval = [e for e in audit.body if e["event"] == "approve"]
    assert [(e["actor"], e["source"], "as lead" in e["reason"]) for e in approval] == [
        ("li", "api", True)
    ]
    # Who vouched for li is on the record too (the audit's hash covers it).
    assert [e["issuer"] for e in approval] == [api.issuer]


async def test_the_requester_cannot_approve_or_reject_their_own_refund(
    api: Api, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=30000, category="general", customer_id="bob")
    body = {"order_id": order["order_id"], "amount": 15000, "reason_code": "damaged"}
    # bob (support) asks for a refund in his own name, as a customer of the shop.
    made = await api.request_refund("checkout", {**body, "requested_by": "bob"})
    assert made.status == 201 and made.body["state"] == "pending_review", made.body
    refund_id = made.body["refund_id"]
    assert made.headers["Location"] == f"/v1/refunds/{refund_id}"  # staff's status
    actions: tuple[tuple[str, dict[str, str]], ...] = (
        ("approve", {}),
        ("reject", {"reason": "mine"}),
    )
    await refused_then_approved(api, db, refund_id, "bob", actions, "bob requested", "alice")


async def test_staff_who_submit_a_refund_for_a_customer_cannot_approve_it(
    api: Api, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    who = customer()
    _, body = await own_order(sandbox, who, 30000, 25000)
    made = await api.request_refund("li", {**body, "requested_by": who})
    assert made.status == 201 and made.body["submitted_by"] == "li", made.body
    refund_id = made.body["refund_id"]
    said = "li submitted this refund for the customer"
    await refused_then_approved(api, db, refund_id, "li", (("approve", {}),), said, "fang")


async def refused_then_approved(
    api: Api,
    db: asyncpg.Pool,
    refund_id: str,
    who: str,
    actions: tuple[tuple[str, dict[str, str]], ...],
    said: str,
    other: str,
) -> None:
    """Each action by `who` refused (403, saying `said`), nothing recorded; then `other`
    approves it."""
    before = await audit_of(db, refund_id)
    for action, payload in actions:
        own = await api.call("POST", f"/v1/refunds/{refund_id}/{action}", as_=who, json=payload)
        assert own.status == 403, own.body
        assert said in own.body["detail"]
    assert await audit_of(db, refund_id) == before
    approved = await api.call("POST", f"/v1/refunds/{refund_id}/approve", as_=other, json={})
    assert approved.status == 200, approved.body


async def test_a_customer_withdraws_their_own_refund(
    api: Api, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    owner = customer()
    refund_id = (await pending(api, sandbox, owner))["refund_id"]
    before = await audit_of(db, refund_id)
    # A reason the audit would keep as nothing is refused, and nothing changes.
    for blank in ("   ", "\t"):
        refused = await api.call(
            "POST", f"/v1/refunds/{refund_id}/cancel", as_=owner, json={"reason": blank}
        )
        assert refused.status == 422, refused.body
        assert refused.body["detail"].startswith("reason: must say something"), refused.body
    # Nor one that would display reversed (a trial stored U+202E in a rejection's reason).
    reversed_text = {"reason": "bidi \u202e txet"}
    refused = await api.call(
        "POST", f"/v1/refunds/{refund_id}/cancel", as_=owner, json=reversed_text
    )
    assert refused.status == 422, refused.body
    assert refused.body["detail"] == (
        "reason: must not contain bidirectional controls (U+202E): the audit trail would read"
        " otherwise than it was written"
    ), refused.body
    assert await audit_of(db, refund_id) == before
    done = await api.call(
        "POST", f"/v1/refunds/{refund_id}/cancel", as_=owner, json={"reason": "found it"}
    )
    assert done.status == 200, done.body
    # Answered in the customer's own words, as tracking shows it: the status object names
    # staff, their reasons and the policy's notes, which a customer may not read.
    tracked = await api.call("GET", f"/v1/refunds/{refund_id}/track", as_=owner)
    # Every field (asked_amount only after an approval for less, which this is not).
    fields = set(CustomerView.model_fields) - {"asked_amount"}
    assert done.body == tracked.body and set(done.body) == fields
    assert "was withdrawn" in done.body["message"]
    staff = await api.call("GET", f"/v1/refunds/{refund_id}", as_="li")
    assert (staff.body["state"], staff.body["cancel_reason"]) == ("cancelled", "withdrawn")
    assert ("withdraw", owner) in await audit_of(db, refund_id)
    # A workflow refusal (already cancelled) is a problem too, and changes nothing.
    again = await api.call(
        "POST", f"/v1/refunds/{refund_id}/cancel", as_=owner, json={"reason": "again"}
    )
    assert again.status == 409 and again.problem_type == "urn:refundflow:problem:refused"


async def test_a_service_withdraws_for_the_customer_and_staff_for_the_team(
    api: Api, sandbox: Sandbox
) -> None:
    """The shop's own cancel button (a service) is the customer's withdrawal, also for a
    refund support submitted; support withdrawing one is "cancelled by our team"."""
    owner = customer()
    _, body = await own_order(sandbox, owner, 30000, 25000)
    by_support = await api.request_refund("li", {**body, "requested_by": owner})
    refund_id = by_support.body["refund_id"]
    done = await api.call(
        "POST", f"/v1/refunds/{refund_id}/cancel", as_="checkout", json={"reason": "in the app"}
    )
    assert done.status == 200, done.body
    told = (await api.call("GET", f"/v1/refunds/{refund_id}/track", as_=owner)).body
    assert "was withdrawn" in told["message"] and "our team" not in told["message"]
    assert done.body["timeline"][-1]["actor"] == "checkout"  # staff still see who did it
    other = (await pending(api, sandbox, owner))["refund_id"]
    await api.call("POST", f"/v1/refunds/{other}/cancel", as_="bob", json={"reason": "dup"})
    told = (await api.call("GET", f"/v1/refunds/{other}/track", as_=owner)).body
    assert "was cancelled by our team; no money moved" in told["message"]


async def test_services_request_for_a_customer_and_staff_list_a_page_at_a_time(
    api: Api, sandbox: Sandbox
) -> None:
    who = customer()
    made = []
    for n in range(3):
        order = await sandbox.order(amount=30000, category="general", customer_id=who)
        body = {"order_id": order["order_id"], "amount": 6000, "reason_code": "damaged"}
        # A service acts for the order's customer: named, or taken from the order.
        wrong = await api.request_refund("checkout", {**body, "requested_by": customer()})
        assert wrong.status == 403 and f"is {who}'s" in wrong.body["detail"], wrong.body
        reply = await api.request_refund("checkout", {**body, "requested_by": who} if n else body)
        assert reply.status == 201, reply.body
        assert (reply.body["requested_by"], reply.body["submitted_by"]) == (who, "checkout")
        made.append(reply.body["refund_id"])
    first = await api.call("GET", f"/v1/refunds?customer={who}&limit=2", as_="li")
    assert first.status == 200 and len(first.body["items"]) == 2
    cursor = first.body["next_cursor"]
    rest = await api.call("GET", f"/v1/refunds?customer={who}&limit=2&cursor={cursor}", as_="li")
    assert rest.body["next_cursor"] is None
    seen = [i["refund_id"] for i in first.body["items"] + rest.body["items"]]
    assert seen == list(reversed(made))  # newest request first, each once
    # A cursor belongs to its listing (a trial: reused with other filters, it paged from
    # an unrelated position).
    other = await api.call("GET", f"/v1/refunds?state=pending_review&cursor={cursor}", as_="li")
    assert other.status == 422 and "it pages another listing" in other.body["detail"], other.body
    for query in (
        "cursor=nonsense",
        "cursor=WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgIlx1MDAwMCJd",
        "customer=%00",
    ):
        bad = await api.call("GET", f"/v1/refunds?{query}", as_="li")
        assert bad.status == 422, (query, bad.body)
        assert bad.problem_type == "urn:refundflow:problem:bad-input"
