"""The sandbox behaves like a real provider where refundflow's guarantees depend on it."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.conftest import Sandbox, unique_key

pytestmark = pytest.mark.stack


async def post_refund(
    sandbox: Sandbox, key: str, payment_reference: str, amount: int, currency: str = "USD"
) -> tuple[int, dict[str, Any]]:
    async with sandbox.http.post(
        f"{sandbox.base}/payments/v1/refunds",
        json={"payment_reference": payment_reference, "amount": amount, "currency": currency},
        headers={"Idempotency-Key": key},
    ) as response:
        return response.status, await response.json()


async def test_idempotency_key_returns_the_same_refund_and_refuses_other_parameters(
    sandbox: Sandbox,
) -> None:
    order = await sandbox.order(amount=5000)
    key = unique_key("idem")
    first = await post_refund(sandbox, key, order["payment_reference"], 2000)
    repeat = await post_refund(sandbox, key, order["payment_reference"], 2000)
    other = await post_refund(sandbox, key, order["payment_reference"], 2500)
    assert first[0] == 201 and repeat[0] == 200
    assert first[1]["id"] == repeat[1]["id"]
    assert other[0] == 409 and other[1]["error"]["code"] == "idempotency_key_reused"
    assert len(await sandbox.refunds(order["order_id"])) == 1


async def test_cumulative_refunds_never_exceed_the_capture_even_concurrently(
    sandbox: Sandbox,
) -> None:
    order = await sandbox.order(amount=10000)
    results = await asyncio.gather(
        *(post_refund(sandbox, unique_key("c"), order["payment_reference"], 3000) for _ in range(8))
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [201, 201, 201] + [422] * 5
    refused = next(body for status, body in results if status == 422)
    assert refused["error"]["code"] == "amount_exceeds_captured"
    assert sum(r["amount"] for r in await sandbox.refunds(order["order_id"])) == 9000


async def test_restock_is_once_per_key(sandbox: Sandbox) -> None:
    key = unique_key("restock")
    reference = unique_key("ref")
    for _ in range(3):
        async with sandbox.http.post(
            f"{sandbox.base}/inventory/v1/restocks",
            json={"sku": "MUG-1", "quantity": 2, "reference": reference},
            headers={"Idempotency-Key": key},
        ) as response:
            assert response.status in (200, 201)
    assert len(await sandbox.movements(reference)) == 1


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (
            {"payment_reference": "pay_x", "amount": 1, "currency": "USD"},
            {},
            "idempotency_key_required",
        ),
        (
            {"payment_reference": "pay_x", "amount": 0, "currency": "USD"},
            {"Idempotency-Key": "k"},
            "invalid_request",
        ),
        (
            {"payment_reference": "pay_x", "amount": 1, "currency": "USD"},
            {"Idempotency-Key": "k-404"},
            "payment_not_found",
        ),
    ],
)
async def test_bad_provider_calls_get_json_errors(
    sandbox: Sandbox, body: dict[str, Any], headers: dict[str, str], code: str
) -> None:
    async with sandbox.http.post(
        f"{sandbox.base}/payments/v1/refunds", json=body, headers=headers
    ) as response:
        assert 400 <= response.status < 500
        assert (await response.json())["error"]["code"] == code


async def test_unknown_order_is_404(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sandbox.base}/orders/v1/orders/ord_missing") as response:
        assert response.status == 404


async def test_an_order_lists_each_sku_once(sandbox: Sandbox) -> None:
    """A trial's order with TV on two lines was eligible, then its request failed as it was
    held (a 503): the stand-in refuses such an order, as refundflow refuses one from a real
    order system (client/edge.fetch_order)."""
    lines = [
        {"sku": "TV", "quantity": 1, "unit_price": 100},
        {"sku": "TV", "quantity": 1, "unit_price": 200},
    ]
    async with sandbox.http.post(
        f"{sandbox.base}/orders/v1/orders", json={"currency": "USD", "lines": lines}
    ) as response:
        assert response.status == 400
        said = (await response.json())["error"]
    assert said["code"] == "invalid_request" and "lists each SKU once: TV" in said["message"]
