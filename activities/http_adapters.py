"""HTTP adapters for the payment provider, inventory and order system.

They speak the sandbox's API, which is shaped like a real provider's (idempotency keys in
an `Idempotency-Key` header, JSON errors with a code). Transient failures raise
ExternalSystemUnavailable; permanent ones ExternalSystemRefused.

Each call is an OpenTelemetry client span that sends its W3C trace context (`traceparent`)
along: a child of the activity's span when tracing is on (client/tracing.py); when it is
off the span records nothing and no header is added.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from activities.ports import ExternalSystemRefused, ExternalSystemUnavailable, error_text
from workflows import names
from workflows.activity_contracts import NO_MONEY
from workflows.models import (
    IssueRefundInput,
    OrderSnapshot,
    ProviderRefundResult,
    RestockInput,
    RestockResult,
)
from workflows.money import format_minor

# One HTTP call gives up after this long, so that a lookup plus a create (two calls) always
# end before the activity's 15 s start-to-close timeout starts another attempt.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=6)
_tracer = trace.get_tracer("refundflow.http")


class HttpService:
    """One external system behind a base URL, sharing a connection pool."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, system: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._system = system

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        allow_404: bool = False,
    ) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        url = f"{self._base}{path}"
        with _tracer.start_as_current_span(
            f"{method} {self._system}",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, "refundflow.system": self._system},
        ) as span:
            propagate.inject(headers)  # traceparent: the system's own logs can join our trace
            try:
                async with self._session.request(
                    method, url, json=json, params=params, headers=headers, timeout=DEFAULT_TIMEOUT
                ) as response:
                    body = await response.json(content_type=None)
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, ValueError) as err:
                raise ExternalSystemUnavailable(
                    f"{self._system} unreachable at {self._base}:"
                    f" {error_text(err, DEFAULT_TIMEOUT.total)}"
                ) from err
            span.set_attribute("http.response.status_code", status)
            if status >= 400 and not (status == 404 and allow_404):
                span.set_status(Status(StatusCode.ERROR))
        if status == 404 and allow_404:
            return None
        if status >= 500 or status == 429:
            raise ExternalSystemUnavailable(f"{self._system} answered {status}")
        if status >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise ExternalSystemRefused(
                f"{self._system} refused ({status}): {error.get('message', body)}",
                code=str(error.get("code", status)),
            )
        return body


class HttpPaymentProvider:
    def __init__(self, service: HttpService) -> None:
        self._service = service

    async def refund(
        self, request: IssueRefundInput, *, look_up_first: bool = False
    ) -> ProviderRefundResult:
        """Create the refund; on a retry, first ask whether it already exists.

        After a timeout or lost response the provider may have committed. Its idempotency
        key would answer the repeat, but providers forget keys (Stripe after 24 h), so the
        lookup goes by our own refund id in the refund's metadata, which is kept forever.
        """
        if look_up_first:
            found = await self.find_refunds(request.refund_id, request.payment_reference)
            existing = this_refunds_payment(found, request)
            if existing is not None:
                return existing
        body = await self._service.call(
            "POST",
            "/v1/refunds",
            json={
                "payment_reference": request.payment_reference,
                "amount": request.amount,
                "currency": request.currency,
                "metadata": {"refund_id": request.refund_id, "order_id": request.order_id},
            },
            idempotency_key=request.idempotency_key,
        )
        return _provider_result(body)

    async def get_refund(self, provider_refund_id: str) -> ProviderRefundResult:
        return _provider_result(
            await self._service.call("GET", f"/v1/refunds/{provider_refund_id}")
        )

    async def cancel_refund(self, provider_refund_id: str) -> ProviderRefundResult:
        return _provider_result(
            await self._service.call("POST", f"/v1/refunds/{provider_refund_id}/cancel")
        )

    async def find_refunds(
        self, refund_id: str, payment_reference: str | None = None
    ) -> list[ProviderRefundResult]:
        """Every provider refund carrying our refund id in its metadata; on the payment
        `payment_reference` only, when given. Why: one made at the provider's dashboard on
        another payment, our id typed into it, was taken as this refund's payment (a review:
        completed, the customer told so, and their payment never refunded). Reconciliation
        still sees it, under our id, beside the one we send."""
        body = await self._service.call("GET", "/v1/refunds", params={"refund_id": refund_id})
        return [
            _provider_result(item)
            for item in body["data"]
            if payment_reference is None
            or item.get("payment_reference") in (None, payment_reference)
        ]

    async def list_refunds(self, order_id: str | None = None) -> list[dict[str, Any]]:
        params = {"order_id": order_id} if order_id else None
        body = await self._service.call("GET", "/v1/refunds", params=params)
        return [provider_row(item) for item in body["data"]]

    async def ledger_pages(
        self, page_size: int = 1000, order_id: str | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The whole ledger (reconciliation), or one order's refunds, page by page."""
        after: str | None = None
        while True:
            params = {"limit": str(page_size)}
            if order_id:
                params["order_id"] = order_id
            if after:
                params["starting_after"] = after
            body = await self._service.call("GET", "/v1/refunds", params=params)
            page = [provider_row(item) for item in body["data"]]
            if page:
                yield page
            if not body.get("has_more") or not page:
                return
            after = page[-1]["id"]


def this_refunds_payment(
    found: list[ProviderRefundResult], request: IssueRefundInput
) -> ProviderRefundResult | None:
    """Of the provider's refunds carrying this refund's id, the one that is its payment: any
    that has not failed, never a second (None: there is none, so one may be sent).

    One of another amount was made outside refundflow (someone at the provider's dashboard
    linked it by hand): taking it would complete the refund as paid in full, the customer
    told so, with 1.00 of 100.00 paid (a trial). Sending another would pay beside it. So
    neither: refused, and an operator has the provider reverse it."""
    live = [existing for existing in found if existing.status not in NO_MONEY]
    # The provider's list order is not ours to rely on: its own payment may be listed after
    # a dashboard refund of another amount.
    for existing in live:
        if (existing.amount, existing.currency) == (request.amount, request.currency):
            return existing
    if live:
        other = live[0]
        raise ExternalSystemRefused(
            f"provider refund {other.provider_refund_id} carries this refund's id but is"
            f" {format_minor(other.amount, other.currency)}, not"
            f" {format_minor(request.amount, request.currency)} (made outside refundflow?):"
            " not taken as this refund's payment, and no other refund is sent beside it."
            " Have the provider reverse it, then retry; refundflow cannot pay part of a refund",
            code=names.NOT_SENT_AMOUNT_MISMATCH,
        )
    return None


def provider_row(item: dict[str, Any]) -> dict[str, Any]:
    """A refund as the provider lists it, its currency an upper-case ISO 4217 code, as ours
    are, whatever case the provider writes (Stripe: "usd"). Every reading of the provider's
    refunds goes through here, so none compares currencies of two cases."""
    item["currency"] = str(item["currency"]).upper()
    return item


def _provider_result(body: dict[str, Any]) -> ProviderRefundResult:
    return ProviderRefundResult(
        provider_refund_id=body["id"],
        status=body["status"],
        amount=body["amount"],
        currency=provider_row(body)["currency"],
        idempotency_key=body.get("idempotency_key"),
        failure_code=body.get("failure_code"),
        instructions=(body.get("next_action") or {}).get("instructions"),
    )


class HttpInventory:
    def __init__(self, service: HttpService) -> None:
        self._service = service

    async def restock(self, request: RestockInput) -> RestockResult:
        body = await self._service.call(
            "POST",
            "/v1/restocks",
            json={"sku": request.sku, "quantity": request.quantity, "reference": request.refund_id},
            idempotency_key=request.idempotency_key,
        )
        return RestockResult(movement_id=body["id"], sku=body["sku"], quantity=body["quantity"])

    async def list_movements(self) -> list[dict[str, Any]]:
        body = await self._service.call("GET", "/v1/movements")
        return list(body["data"])


class HttpOrderSystem:
    def __init__(self, service: HttpService) -> None:
        self._service = service

    async def get_order(self, order_id: str) -> OrderSnapshot | None:
        body = await self._service.call("GET", f"/v1/orders/{order_id}", allow_404=True)
        return None if body is None else OrderSnapshot.model_validate(body)

    async def create_order(self, spec: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = await self._service.call("POST", "/v1/orders", json=spec)
        return body
