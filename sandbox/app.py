"""The sandbox's HTTP API: /orders, /payments, /inventory and the customer's /notifications
inbox, each shaped like a real service."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from activities.signing import InvalidSignature, verify
from sandbox import cancellations, reversals
from sandbox.faults import Call, CallLog, CallOutcome, Faults, call_subject, roll
from sandbox.store import SandboxError, SandboxStore
from workflows.events import SubscriberEvent
from workflows.money import Currency
from workflows.verification import repeated

STORE = web.AppKey("store", SandboxStore)
# One-element list so the current settings can be swapped atomically at run time.
FAULTS = web.AppKey("faults", list)
# How often each fault actually fired, per system: lets a test prove its fault was exercised.
INJECTED = web.AppKey("injected", dict)
# Every call about a refund, per refund: lets a test prove what a caller did (sandbox.faults).
CALLS = web.AppKey("calls", CallLog)
# Verifies refundflow's signature on customer notifications ("" accepts unsigned ones).
NOTIFY_SECRET = web.AppKey("notify_secret", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderLineSpec(_Body):
    sku: Annotated[
        str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    ]
    quantity: Annotated[StrictInt, Field(gt=0, le=10_000)] = 1
    unit_price: Annotated[StrictInt, Field(ge=0, le=10**12)]
    category: Annotated[str, Field(min_length=1, max_length=64)] = "general"


class CreateOrder(_Body):
    currency: Currency = "USD"
    amount: Annotated[StrictInt, Field(gt=0, le=10**12)] | None = None
    """Shortcut for a one-line order of this amount."""
    category: Annotated[str, Field(min_length=1, max_length=64)] = "general"
    lines: Annotated[list[OrderLineSpec], Field(min_length=1, max_length=100)] | None = None
    delivered_days_ago: Annotated[StrictInt, Field(ge=0, le=3650)] | None = 3
    payment_rail: Literal["card", "wallet", "bank_transfer"] = "card"
    customer_id: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
        | None
    ) = None
    """Who placed the order (default: a new customer, cust_ and 16 hex digits)."""


class CreateRefund(_Body):
    payment_reference: Annotated[str, Field(min_length=1, max_length=64)]
    amount: Annotated[StrictInt, Field(gt=0)]
    currency: Currency
    metadata: dict[str, str] = {}


class CreateRestock(_Body):
    sku: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[StrictInt, Field(gt=0)]
    reference: Annotated[str, Field(min_length=1, max_length=128)]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SandboxError as err:
        return _error(err.status, err.code, err.message)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return _error(400, "invalid_request", f"{where}: {first['msg']}")
    except ValueError as err:
        return _error(400, "invalid_request", str(err))


@web.middleware
async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply the current faults of the system this path belongs to, and log the call."""
    system = {
        "payments": "payment",
        "inventory": "inventory",
        "orders": "orders",
        "notifications": "notifications",
    }.get(request.path.strip("/").split("/")[0])
    if system is None:
        return await handler(request)
    faults = request.app[FAULTS][0].for_system(system)
    call, refund_id = await _log_call(request, system)

    def fired(kind: str) -> None:
        counts = request.app[INJECTED].setdefault(system, {})
        counts[kind] = counts.get(kind, 0) + 1

    if faults.latency_ms:
        fired("latency")
        await asyncio.sleep(faults.latency_ms / 1000)
    first_tries = refund_id is not None and (
        request.app[CALLS].count(system, refund_id) <= faults.fail_first_calls
    )
    if roll(faults.error_rate) or first_tries:
        fired("errors")
        _answered(call, 503, "injected_error")
        return _error(503, "unavailable", f"{system} is temporarily unavailable (injected)")
    try:
        response = await handler(request)
    except Exception as err:
        status = err.status if isinstance(err, SandboxError) else 400
        if status == 402:
            fired("refusals")  # refused for good (`payment.refuse`)
        _answered(call, status, "answered")
        raise
    call, forgotten = _observe(request, system, call, response)
    if forgotten:
        fired("forgotten_keys")
    if call is not None:
        call.status = response.status  # done; the answer may still be held back
    if request.method == "POST" and faults.response_delay_ms:
        fired("delayed_responses")
        await asyncio.sleep(faults.response_delay_ms / 1000)
        if request.transport is None or request.transport.is_closing():
            _answered(call, response.status, "lost")  # the caller gave up or died meanwhile
            return response
    if request.method == "POST" and roll(faults.lose_response_rate):
        # The work is committed; the caller never hears about it.
        fired("lost_responses")
        _answered(call, response.status, "lost")
        if request.transport is not None:
            request.transport.close()
        return response
    _answered(call, response.status, "answered")
    return response


async def _log_call(request: web.Request, system: str) -> tuple[Call | None, str | None]:
    """Start the call-log entry of a call about a refund (see sandbox.faults.CallLog)."""
    body: Any = None
    if request.method == "POST" and system in ("payment", "inventory"):
        try:
            body = await request.json()  # aiohttp keeps the body for the handler
        except ValueError:
            body = None
    kind, refund_id = call_subject(system, request.method, request.path, request.query, body)
    if kind is None or refund_id is None:
        return None, None
    key, traceparent = request.headers.get("Idempotency-Key"), request.headers.get("traceparent")
    return request.app[CALLS].start(system, refund_id, kind, key, traceparent), refund_id


def _answered(call: Call | None, status: int, outcome: CallOutcome) -> None:
    if call is not None:
        call.status = status
        call.outcome = outcome
        call.answered_at = time.time()


def _observe(
    request: web.Request, system: str, call: Call | None, response: web.StreamResponse
) -> tuple[Call | None, bool]:
    """Read a payment answer into the call log (CallLog.observe); True if the caller came
    back for a refund whose idempotency key the provider had already forgotten."""
    if system != "payment" or response.status >= 400 or not isinstance(response, web.Response):
        return call, False
    body = json.loads(response.body) if isinstance(response.body, bytes) else {}
    retention = request.app[FAULTS][0].payment.idempotency_retention_s
    return request.app[CALLS].observe(call, request.method, body, retention)


async def get_injected(request: web.Request) -> web.Response:
    return web.json_response(request.app[INJECTED])


async def get_calls(request: web.Request) -> web.Response:
    refund_id = request.query.get("refund_id")
    if not refund_id:
        raise SandboxError(400, "invalid_request", "give a refund_id")
    return web.json_response(request.app[CALLS].of(refund_id))


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[FAULTS][0].model_dump())


async def set_faults(request: web.Request) -> web.Response:
    body = await _json(request)
    if not isinstance(body, dict):
        raise SandboxError(400, "invalid_request", "send an object of SYSTEM.FIELD: value")
    current: Faults = request.app[FAULTS][0]
    request.app[FAULTS][0] = current.apply({str(k): v for k, v in body.items()})
    return web.json_response(request.app[FAULTS][0].model_dump())


async def clear_faults(request: web.Request) -> web.Response:
    request.app[FAULTS][0] = Faults()
    return web.json_response(request.app[FAULTS][0].model_dump())


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise SandboxError(400, "invalid_json", "request body is not valid JSON") from None


def _idempotency_key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    if not key or len(key) > 255:
        raise SandboxError(400, "idempotency_key_required", "send an Idempotency-Key header")
    return key


async def create_order(request: web.Request) -> web.Response:
    spec = CreateOrder.model_validate(await _json(request))
    if spec.lines is None:
        if spec.amount is None:
            raise SandboxError(400, "invalid_request", "give an amount or order lines")
        lines = [
            {
                "sku": f"SKU-{secrets.token_hex(3).upper()}",
                "quantity": 1,
                "unit_price": spec.amount,
                "category": spec.category,
            }
        ]
    else:
        lines = [line.model_dump() for line in spec.lines]
        # As refundflow needs an order system's orders to be (it refuses others).
        if twice := repeated(line.sku for line in spec.lines):
            raise SandboxError(
                400, "invalid_request", f"an order lists each SKU once: {', '.join(twice)}"
            )
    order = await request.app[STORE].create_order(
        currency=spec.currency,
        lines=lines,
        delivered_days_ago=spec.delivered_days_ago,
        payment_rail=spec.payment_rail,
        customer_id=spec.customer_id,
    )
    return web.json_response(order, status=201)


async def get_order(request: web.Request) -> web.Response:
    order = await request.app[STORE].get_order(request.match_info["order_id"])
    if order is None:
        raise SandboxError(404, "order_not_found", f"no order {request.match_info['order_id']}")
    return web.json_response(order)


async def create_refund(request: web.Request) -> web.Response:
    key = _idempotency_key(request)
    body = CreateRefund.model_validate(await _json(request))
    refund, created = await request.app[STORE].create_refund(
        key,
        body.payment_reference,
        body.amount,
        body.currency,
        body.metadata,
        request.app[FAULTS][0].payment,
    )
    return web.json_response(refund, status=201 if created else 200)


async def list_refunds(request: web.Request) -> web.Response:
    query = request.query
    try:
        limit = min(int(query.get("limit", "1000")), 10_000)
    except ValueError:
        raise SandboxError(400, "invalid_request", "limit must be a whole number") from None
    refunds = await request.app[STORE].list_refunds(
        order_id=query.get("order_id"),
        refund_id=query.get("refund_id"),
        after=query.get("starting_after"),
        limit=limit,
    )
    return web.json_response({"data": refunds, "has_more": len(refunds) == limit})


async def get_refund(request: web.Request) -> web.Response:
    refund = await request.app[STORE].get_refund(request.match_info["refund_id"])
    if refund is None:
        raise SandboxError(404, "refund_not_found", f"no refund {request.match_info['refund_id']}")
    return web.json_response(refund)


async def create_restock(request: web.Request) -> web.Response:
    key = _idempotency_key(request)
    body = CreateRestock.model_validate(await _json(request))
    movement, created = await request.app[STORE].restock(
        key, body.sku, body.quantity, body.reference
    )
    return web.json_response(movement, status=201 if created else 200)


async def list_movements(request: web.Request) -> web.Response:
    return web.json_response({"data": await request.app[STORE].list_movements()})


async def receive_notification(request: web.Request) -> web.Response:
    """The customer's inbox (stand-in for an e-mail/SMS gateway): verifies refundflow's
    signature when a secret is configured (SANDBOX_NOTIFY_SECRET), accepts only events of the
    published schema (workflows.events), keeps each event id once."""
    body = await request.read()
    secret = request.app[NOTIFY_SECRET]
    if secret:
        try:
            verify(secret, request.headers.get("Refundflow-Signature"), body)
        except InvalidSignature as err:
            raise SandboxError(401, "invalid_signature", str(err)) from None
    event = SubscriberEvent.model_validate_json(body)  # a ValidationError answers 400
    first = await request.app[STORE].receive_notification(event)
    return web.json_response({"received": True, "duplicate": not first})


async def list_notifications(request: web.Request) -> web.Response:
    rows = await request.app[STORE].notifications(request.query.get("refund_id"))
    return web.json_response({"data": rows})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def build_app(store: SandboxStore, notify_secret: str = "") -> web.Application:
    app = web.Application(middlewares=[errors_as_json, inject_faults])
    app[STORE] = store
    app[NOTIFY_SECRET] = notify_secret
    app[FAULTS] = [Faults()]
    app[INJECTED] = {}
    app[CALLS] = CallLog()
    app.router.add_get("/_sandbox/injected", get_injected)
    app.router.add_get("/_sandbox/calls", get_calls)
    app.router.add_get("/_sandbox/faults", get_faults)
    app.router.add_put("/_sandbox/faults", set_faults)
    app.router.add_delete("/_sandbox/faults", clear_faults)
    app.router.add_get("/health", health)
    app.router.add_post("/orders/v1/orders", create_order)
    app.router.add_get("/orders/v1/orders/{order_id}", get_order)
    app.router.add_post("/payments/v1/refunds", create_refund)
    app.router.add_get("/payments/v1/refunds", list_refunds)
    app.router.add_get("/payments/v1/refunds/{refund_id}", get_refund)
    app.router.add_post("/inventory/v1/restocks", create_restock)
    app.router.add_get("/inventory/v1/movements", list_movements)
    app.router.add_post("/notifications/v1/inbox", receive_notification)
    app.router.add_get("/_sandbox/inbox", list_notifications)
    reversals.add_routes(app, lambda app: app[STORE].pool)
    cancellations.add_routes(app, lambda a: a[STORE].pool, lambda a: a[FAULTS][0].payment.webhooks)
    return app
