"""Every route of the API refuses, with a problem and nothing changed, a caller without a
valid token (401: none, expired, not yet valid, another audience, another issuer, another
signing key, a shared-secret algorithm, no subject, not a JWT) and a caller whose verified
identity may not do it (403: the wrong role, staff or a service naming someone else than the
order's customer; a customer asking about another customer's refund or order is told it
does not exist: 404, 422)."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from client.refund_ids import refund_id_for
from tests.conftest import Sandbox
from tests.integration.api_support import Api, Reply
from tests.integration.helpers import eventually

pytestmark = pytest.mark.stack

OWNER, OTHER = "cust_owner", "cust_other"
LOOKALIKE = "CUST_OWNER"
"""Another customer, whose id differs from the owner's only in case: access is exact."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    allowed: str
    """A caller the route would serve: forged tokens are forged in its name."""
    forbidden: tuple[str, ...]
    """Callers with valid tokens whom the route refuses (403)."""
    body: dict[str, Any] | None = None
    unknown_to: tuple[str, ...] = ()
    """Customers asking about another's refund or order: told it does not exist (404 or
    422, as for an id nobody has), never that it is somebody else's (403)."""


REFUND = "{refund}"
ORDER = "{order}"
REQUEST = {"order_id": ORDER, "amount": 25000, "reason_code": "damaged"}
FOR_OTHER = {**REQUEST, "requested_by": OTHER}
FOR_OWNER = {**REQUEST, "requested_by": OWNER}
"""OWNER's order, naming OWNER: another customer sending it learns nothing either."""
"""A request on OWNER's order, for another customer."""
ROUTES = [
    Route("POST", "/v1/refunds", OWNER, ("reporting", "warehouse", "omar"), REQUEST, (OTHER,)),
    Route("POST", "/v1/refunds", OWNER, (OWNER, "li", "checkout"), FOR_OTHER),
    Route("POST", "/v1/refunds", OWNER, (), FOR_OWNER, (OTHER,)),
    Route("GET", "/v1/refunds", "li", ("warehouse",)),
    Route("GET", f"/v1/refunds?customer={OWNER}", OWNER, (OTHER,)),
    Route("GET", f"/v1/refunds/{REFUND}", "alice", (OWNER,), unknown_to=(OTHER,)),
    Route("GET", f"/v1/refunds/{REFUND}/track", OWNER, (), unknown_to=(OTHER,)),
    Route("GET", f"/v1/refunds/{REFUND}/audit", "li", (OWNER, "warehouse"), unknown_to=(OTHER,)),
    Route("GET", f"/v1/refunds/{REFUND}/events", "li", (OWNER, "warehouse"), unknown_to=(OTHER,)),
    Route("GET", f"/v1/refunds/{REFUND}/review", "li", (OWNER, "warehouse"), unknown_to=(OTHER,)),
    Route(
        "POST",
        f"/v1/refunds/{REFUND}/approve",
        "li",
        (OWNER, "alice", "omar", "warehouse", "checkout", "reporting"),
        {},
        (OTHER,),
    ),
    Route(
        "POST",
        f"/v1/refunds/{REFUND}/reject",
        "li",
        (OWNER, "omar", "warehouse", "checkout", "reporting"),
        {"reason": "no damage visible"},
        (OTHER,),
    ),
    Route(
        "POST",
        f"/v1/refunds/{REFUND}/cancel",
        OWNER,
        ("omar", "warehouse", "reporting"),
        {"reason": "found it"},
        (OTHER,),
    ),
    Route(
        "POST",
        f"/v1/refunds/{REFUND}/received",
        "warehouse",
        (OWNER, "li", "omar"),
        unknown_to=(OTHER,),
    ),
    Route(
        "POST",
        f"/v1/refunds/{REFUND}/operator/retry",
        "omar",
        (OWNER, "li", "warehouse"),
        unknown_to=(OTHER,),
    ),
    Route(
        "POST",
        f"/v1/refunds/{REFUND}/operator/cancel",
        "omar",
        (OWNER, "li", "fang", "warehouse"),
        {"reason": "duplicate"},
        (OTHER,),
    ),
    Route(
        "POST",
        f"/v1/refunds/{REFUND}/operator/paid-elsewhere",
        "omar",
        (OWNER, "li", "fang", "warehouse"),
        {"proof": "bank transfer 123"},
        (OTHER,),
    ),
    Route("POST", "/v1/eligibility", OWNER, ("warehouse", "omar"), REQUEST, (OTHER,)),
    Route("POST", "/v1/eligibility", OWNER, (OWNER, "li", "checkout"), FOR_OTHER),
    Route("POST", "/v1/eligibility", OWNER, (), FOR_OWNER, (OTHER,)),
    Route("GET", "/v1/policies", "alice", ()),
    Route("GET", "/v1/policies/standard-v3", OWNER, ()),
]


@pytest.fixture(scope="module")
async def target(api: Api, sandbox: Sandbox) -> dict[str, str]:
    """A refund of OWNER's waiting for a reviewer (250.00: above support's authority)."""
    order = await sandbox.order(amount=30000, category="general", customer_id=OWNER)
    made = await api.request_refund(
        OWNER, {"order_id": order["order_id"], "amount": 25000, "reason_code": "damaged"}
    )
    assert made.status == 201, made.body
    assert made.body["status"] == "requested"
    return {"refund": made.body["refund_id"], "order": order["order_id"]}


async def snapshot(db: asyncpg.Pool, refund_id: str, order_id: str) -> tuple[Any, ...]:
    """Everything a refused call could have changed: the refund's audit and state, and the
    refunds of its order."""
    audit = await db.fetch(
        "SELECT seq, event, actor FROM refundflow.audit WHERE refund_id = $1 ORDER BY seq",
        refund_id,
    )
    refunds = await db.fetch(
        "SELECT refund_id, state FROM refundflow.refund_status WHERE order_id = $1"
        " ORDER BY refund_id",
        order_id,
    )
    return tuple(map(tuple, audit)), tuple(map(tuple, refunds))


def fill(value: Any, target: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.replace(REFUND, target["refund"]).replace(ORDER, target["order"])
    if isinstance(value, dict):
        return {k: fill(v, target) for k, v in value.items()}
    return value


def assert_problem(reply: Reply, status: int, kind: str, context: str) -> None:
    assert reply.status == status, (context, reply.status, reply.body)
    assert reply.problem_type == f"urn:refundflow:problem:{kind}", context
    assert reply.body["status"] == status and reply.body["detail"], context
    assert "Traceback" not in str(reply.body), context


def route_id(route: Route) -> str:
    named = (route.body or {}).get("requested_by")
    return f"{route.method} {route.path}" + (f" for {named}" if named else "")


@pytest.mark.parametrize("route", ROUTES, ids=route_id)
async def test_every_route_refuses_bad_tokens_and_wrong_callers_changing_nothing(
    route: Route, api: Api, target: dict[str, str], db: asyncpg.Pool
) -> None:
    path, body = fill(route.path, target), fill(route.body, target)
    before = await snapshot(db, target["refund"], target["order"])
    key = f"matrix-{uuid.uuid4().hex[:12]}"
    headers = {"Idempotency-Key": key} if route.path == "/v1/refunds" else None

    no_token = await api.call(route.method, path, json=body, headers=headers)
    assert_problem(no_token, 401, "unauthorized", "no token")
    assert no_token.headers["WWW-Authenticate"].startswith("Bearer")
    for how, token in api.forged(route.allowed).items():
        reply = await api.call(route.method, path, token=token, json=body, headers=headers)
        assert_problem(reply, 401, "unauthorized", how)
    for caller in route.forbidden:
        reply = await api.call(route.method, path, as_=caller, json=body, headers=headers)
        assert_problem(reply, 403, "forbidden", caller)
        assert reply.body["detail"].startswith("refused: ")
    lookalike = (LOOKALIKE,) if OTHER in route.unknown_to else ()
    for caller in (*route.unknown_to, *lookalike):
        reply = await api.call(route.method, path, as_=caller, json=body, headers=headers)
        if "{refund}" in route.path:
            assert_problem(reply, 404, "not-found", caller)
            assert reply.body["detail"] == f"no refund {target['refund']}"
        else:
            assert_problem(reply, 422, "bad-input", caller)
            assert reply.body["detail"] == f"unknown order {target['order']}"

    assert await snapshot(db, target["refund"], target["order"]) == before
    if headers:  # no refund was made under the key either
        made = refund_id_for(target["order"], key)
        assert (
            await db.fetchval(
                "SELECT count(*) FROM refundflow.reservations WHERE refund_id = $1", made
            )
            == 0
        )


async def test_a_refusal_on_another_customers_order_is_audited(
    api: Api, target: dict[str, str]
) -> None:
    """Logged as every authorization decision is, with who asked and about which order."""
    body = fill(REQUEST, target)
    refused = await api.call("POST", "/v1/eligibility", as_=OTHER, json=body)
    # Told as an order that does not exist; the log keeps why.
    assert_problem(refused, 422, "bad-input", OTHER)
    assert refused.body["detail"] == f"unknown order {target['order']}"
    log = api.home / "logs" / "api.log"

    def decisions(text: str) -> list[dict[str, Any]]:
        lines = (json.loads(line) for line in text.splitlines() if '"authz.decision"' in line)
        return [d for d in lines if d.get("order_id") == target["order"] and not d["allowed"]]

    found = await eventually(lambda: asyncio.to_thread(log.read_text), lambda t: any(decisions(t)))
    assert {(d["subject"], d["issuer"], d["action"]) for d in decisions(found)} >= {
        (OTHER, api.issuer, "eligibility")
    }
