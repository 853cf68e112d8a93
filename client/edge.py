"""The edge: what RefundClient checks before a refund starts (invariant 11), and the keys
that make the same request one refund. No Temporal here; the order system and the answers
of the store come in as arguments.

Every refusal is InvalidRefundRequest (nothing was started) or RefundConflict (the key was
used for another request).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from activities.ports import ExternalSystemRefused, ExternalSystemUnavailable, OrderSystem
from client.errors import InvalidRefundRequest, RefundConflict, RefundflowError
from workflows.eligibility import REFUNDABLE_RULE, answer_for_resolved
from workflows.models import OrderSnapshot, PinnedPolicy, RefundRequest, ResolvedRefund, StatusView
from workflows.money import format_minor
from workflows.validation import RefundInputError, resolve_request


def refund_id_for(order_id: str, refund_key: str) -> str:
    """Workflow id from the business key: the same request converges on one workflow.

    Hashed so that whatever a channel puts in its key never shows up in Temporal.
    """
    digest = hashlib.sha256(f"{order_id}\x1f{refund_key}".encode()).hexdigest()
    return f"rf_{digest[:24]}"


def default_refund_key(
    order_id: str, amount: int | None, lines: list[tuple[str, int]] | None, reason_code: str
) -> str:
    """Key for a request that brought none: the request's own content, channel excluded, so
    the same refund asked for from the web and again through support is one refund."""
    material = f"{order_id}|{amount}|{sorted(lines or [])}|{reason_code}"
    return "auto-" + hashlib.sha256(material.encode()).hexdigest()[:16]


async def fetch_order(orders: OrderSystem, order_id: str) -> OrderSnapshot:
    """The order as the order system has it now; unknown or refused orders are the caller's
    mistake, an unreachable order system is not."""
    try:
        order = await orders.get_order(order_id)
    except ExternalSystemUnavailable as err:
        raise RefundflowError(str(err)) from None
    except ExternalSystemRefused as err:
        raise InvalidRefundRequest(str(err)) from None
    if order is None:
        raise InvalidRefundRequest(f"unknown order {order_id}")
    return order


def resolve(request: RefundRequest, order: OrderSnapshot) -> ResolvedRefund:
    """Lines, amount and currency of `request` checked against its order."""
    try:
        return resolve_request(request, order)
    except RefundInputError as err:
        raise InvalidRefundRequest(str(err)) from None


def check_still_refundable(
    policy: PinnedPolicy,
    request: RefundRequest,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
    remaining: int,
    asked_at: datetime,
) -> None:
    """Refuse a request for more than the order still has: other refunds hold the rest."""
    answer = answer_for_resolved(policy, request, order, resolved, remaining, asked_at)
    if any(r.rule_id == REFUNDABLE_RULE and not r.passed for r in answer.rules):
        raise InvalidRefundRequest(
            f"only {format_minor(max(remaining, 0), order.currency)} of order"
            f" {order.order_id} is still refundable; other refunds hold the rest"
        )


def same_request_or_conflict(
    status: StatusView, request: RefundRequest, order: OrderSnapshot, resolved: ResolvedRefund
) -> StatusView:
    """`status` when it is the refund `request` asks for; RefundConflict when its key was
    already used for a different request."""
    if (status.order_id, status.requested_amount, status.reason_code) != (
        order.order_id,
        resolved.amount,
        request.reason_code,
    ):
        raise RefundConflict(
            f"refund key {request.refund_key!r} was already used for a different request"
            f" on order {order.order_id} (refund {status.refund_id})"
        )
    return status
