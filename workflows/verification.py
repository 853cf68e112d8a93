"""Checking what a workflow start says about money before the refund acts on it.

Anyone with Temporal access can start a RefundWorkflow with any input. The client checks the
request at the edge, but the workflow must not depend on that (invariant 11): it verifies the
pinned policy's text against its hash, the hash against the policies the worker knows, and
the order snapshot against the order system. Pure: the activity supplies what it looked up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from workflows.models import OrderSnapshot, PinnedPolicy, ReserveInput, ReserveResult
from workflows.policy import policy_hash


class VerifyRequestInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    refund_id: str
    policy_hash: str
    order: OrderSnapshot
    """The snapshot the workflow was started with, to compare with the order system's."""


class VerifyRequestResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    problems: list[str] = []
    """Why the start cannot be trusted; empty when it can."""


class AdmitInput(BaseModel):
    """The start's check and the refund's hold in one store call (one local activity: one
    activation, one marker event and one codec pass fewer than two)."""

    model_config = ConfigDict(frozen=True)

    verify: VerifyRequestInput
    reserve: ReserveInput | None = None
    """None: the policy does not allow the refund, so nothing is held; the start is still
    checked first, as on the two-call path (an unverified start is declined as such)."""


class AdmitResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    problems: list[str] = []
    """Why the start cannot be trusted; when there are any, this attempt held nothing (an
    earlier attempt may have: the refund's decline releases it)."""
    reservation: ReserveResult | None = None
    """The hold's answer, when one was asked for and the start holds up."""


def policy_text_problem(pinned: PinnedPolicy) -> str | None:
    """The pinned text must be the text that was hashed (deterministic: runs in workflows)."""
    if policy_hash(pinned.document) != pinned.content_hash:
        return f"policy {pinned.label} does not match its hash"
    return None


CHECKED_FIELDS = ("currency", "captured_amount", "payment_reference", "payment_rail")
"""The order's fields a start's snapshot must share with the order system's. Its customer
too, where the snapshot names one (None is no claim: refunds started before snapshots
carried it, or an order the system links to a customer later; whose the order is now is
checked against `requested_by` by `not_for_its_customer`)."""


def order_differences(claimed: OrderSnapshot, actual: OrderSnapshot | None) -> list[str]:
    """What the start claims about the order that the order system does not say."""
    if actual is None:
        return [f"order {claimed.order_id} is unknown to the order system"]
    found = []
    for field in CHECKED_FIELDS:
        if getattr(claimed, field) != getattr(actual, field):
            found.append(f"{field} differs from the order system's")
    if claimed.customer_id is not None and claimed.customer_id != actual.customer_id:
        found.append("customer_id differs from the order system's")
    if _lines(claimed) != _lines(actual):
        found.append("order lines differ from the order system's")
    if claimed.delivered_at != actual.delivered_at:
        found.append("delivery time differs from the order system's")
    return [f"order {claimed.order_id}: {what}" for what in found]


def repeated_skus(order: OrderSnapshot) -> list[str]:
    """SKUs the order lists on more than one line. refundflow holds and refunds units per SKU
    (the ledger's lines are keyed by it): such an order is refused, with this said, rather
    than failing as it is held (a trial's TV on two lines: eligible, then a 503)."""
    return repeated(line.sku for line in order.lines)


def repeated(skus: Iterable[str]) -> list[str]:
    """The SKUs given more than once, each once, sorted (the sandbox's order check too)."""
    return sorted(sku for sku, times in Counter(skus).items() if times > 1)


def not_for_its_customer(requested_by: str, actual: OrderSnapshot | None) -> list[str]:
    """A refund is its order's customer's (the budgets, the history a reviewer weighs and
    who may track it go by `requested_by`): checked against the order system, whoever
    started it (RefundClient and the API refuse it before; a start made directly in Temporal
    is declined here). Named by field, never by value: the reasons are logged."""
    if actual is None or actual.customer_id is None or requested_by == actual.customer_id:
        return []
    return [f"order {actual.order_id}: requested_by is not the order's customer"]


def _lines(order: OrderSnapshot) -> list[tuple[str, int, int, str]]:
    return sorted((l.sku, l.quantity, l.unit_price, l.category) for l in order.lines)  # noqa: E741
