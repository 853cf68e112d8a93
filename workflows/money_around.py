"""Money refunded on an order around refundflow, as reconciliation's newest run found it: no
refund of that order is then approved by the policy alone.

The provider's dashboard, another tool, a colleague with the provider's login: a refund made
there is money refundflow's ledger does not know the items of. The provider still caps the
order at its capture, but a request for an item the dashboard already refunded would be
auto-approved and paid again. A person looks first (the mission's information gap)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from workflows.money import format_minor

KINDS = ("paid_above_capture", "provider_money_above_ledger")
"""The findings that say money left the order around refundflow, the louder first."""


class MoneyAround(BaseModel):
    """One open finding of money around refundflow on an order."""

    model_config = ConfigDict(frozen=True)

    kind: str
    found_at: datetime
    beyond: int
    """Minor units: above the capture (paid_above_capture), or paid by the provider beyond
    what refundflow's refunds account for (provider_money_above_ledger)."""
    currency: str


def money_around_refusal(order_id: str, around: Sequence[MoneyAround]) -> str | None:
    """Why a refund of `order_id` is not approved by the policy alone (None: no open finding
    of money around refundflow on the order)."""
    if not around:
        return None
    first = min(around, key=lambda found: KINDS.index(found.kind))
    money = format_minor(first.beyond, first.currency)
    what = (
        f"has paid out {money} more than its capture"
        if first.kind == "paid_above_capture"
        else f"had {money} refunded by the payment provider that refundflow's refunds do not"
        " account for (at its dashboard?)"
    )
    return (
        f"order {order_id} {what}, as reconciliation found on"
        f" {first.found_at:%Y-%m-%d %H:%M} UTC ({first.kind}): a reviewer checks this refund"
        " is not for what was refunded there"
    )
