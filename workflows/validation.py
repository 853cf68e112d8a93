"""Checking a refund request against the order it refers to. Pure."""

from __future__ import annotations

from workflows.models import OrderLine, OrderSnapshot, RefundRequest, ResolvedRefund
from workflows.money import format_minor


class RefundInputError(ValueError):
    """A request that cannot be a refund of this order; nothing is started for it."""


class TooManyUnits(RefundInputError):
    """More units of a line than the order has: the edge adds what is left of it."""

    def __init__(self, message: str, sku: str, ordered: int) -> None:
        super().__init__(message)
        self.sku, self.ordered = sku, ordered


def resolve_request(request: RefundRequest, order: OrderSnapshot) -> ResolvedRefund:
    if request.order_id != order.order_id:
        raise RefundInputError(f"request is for order {request.order_id}, not {order.order_id}")
    if request.currency is not None and request.currency != order.currency:
        raise RefundInputError(
            f"currency {request.currency} does not match order {order.order_id},"
            f" which was paid in {order.currency}"
        )
    if request.amount is not None:
        if request.amount > order.captured_amount:
            raise RefundInputError(
                f"amount {format_minor(request.amount, order.currency)} is more than the"
                f" {format_minor(order.captured_amount, order.currency)} captured for order"
                f" {order.order_id}"
            )
        return ResolvedRefund(amount=request.amount, currency=order.currency)

    ordered = {line.sku: line for line in order.lines}
    refunded: list[OrderLine] = []
    for wanted in request.lines or []:
        line = ordered.get(wanted.sku)
        if line is None:
            raise RefundInputError(
                f"order {order.order_id} has no line with sku {wanted.sku}"
                + _skus_meant(wanted.sku, order)
            )
        if wanted.quantity > line.quantity:
            raise TooManyUnits(
                f"cannot refund {wanted.quantity} x {wanted.sku}: order {order.order_id}"
                f" has {line.quantity}",
                wanted.sku,
                line.quantity,
            )
        refunded.append(line.model_copy(update={"quantity": wanted.quantity}))
    amount = sum(line.unit_price * line.quantity for line in refunded)
    if amount <= 0:
        raise RefundInputError("the requested lines add up to nothing to refund")
    if amount > order.captured_amount:
        raise RefundInputError(
            f"lines add up to {format_minor(amount, order.currency)}, more than the"
            f" {format_minor(order.captured_amount, order.currency)} captured"
        )
    return ResolvedRefund(amount=amount, currency=order.currency, lines=refunded)


def _skus_meant(given: str, order: OrderSnapshot) -> str:
    """The order's own spelling of a SKU given in other case, with spaces or without its
    punctuation (`tv-55` or `TV55` for TV-55, a trial), else the SKUs it has: a caller who has
    the order may read its lines."""
    skus = sorted({line.sku for line in order.lines})
    same = [sku for sku in skus if _bare(sku) == _bare(given)]
    if same:
        return f" (did you mean {same[0]}?)"
    return f" (its lines: {', '.join(skus)})" if skus else ""


def _bare(sku: str) -> str:
    """A SKU without case, spaces or punctuation: how a person may mistype it."""
    return "".join(ch for ch in sku.casefold() if ch.isalnum())
