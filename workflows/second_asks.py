"""Why a request the policy would approve alone waits for a reviewer because of the order's
other refunds: the same request under another key, or money a reviewer declined asked for
again. Pure: the store decides with them under the order's lock (activities/reserving.py
`_withheld`), `eligibility` ahead of time."""

from __future__ import annotations

from collections.abc import Sequence

from workflows.ledger import Hold, units_of, value_asked
from workflows.models import ReserveInput
from workflows.money import format_minor


def asked_again(request: ReserveInput, holds: Sequence[Hold]) -> str | None:
    """Why `request` is not paid without a reviewer when another refund of the order asks
    for just this, for the same reason: the same units of the same lines, or the same
    value when either asks by amount (None: none does).

    Each channel brings its own key (a storefront's Idempotency-Key, a ticket number), so
    one request made on the web and again through support is two keys. The ledger holds
    each unit once, but an order may have units to spare (one cable of three) and an
    amount holds no units: the second would be paid. Two such refunds may be two items
    alike, or one request made twice: a person tells them apart (reject with
    duplicate_request, or approve); the policy does not pay it alone. Values are compared
    as asked, before fees, so neither a fee nor a reviewer's approval for less hides the
    first. A cancelled refund's hold is released and not in `holds`: the request may then
    be made again."""
    if request.reason_code is None:
        return None
    asked, units = value_asked(request), units_of(request.lines)
    ask = (request.reason_code, bool(request.lines), units, asked)
    same = next((hold for hold in holds if _asks_the_same(hold, *ask)), None)
    if same is None:
        return None
    paid = "paid" if same.state == "consumed" else "open"
    return (
        f"refund {same.refund_id} ({paid}) asked for the same"
        f" {format_minor(asked, request.currency)} of order {request.order_id} for"
        f" {request.reason_code} under another key (the same request twice?): a reviewer"
        " decides"
    )


def alike(mine: Hold, others: Sequence[Hold]) -> list[Hold]:
    """The order's other refunds that ask for what `mine` does, for the same reason, as
    `asked_again` compares them: for a reviewer to see even when the policy would not have
    approved either alone (a trial: two requests for one shoe, each in review, neither
    naming the other)."""
    if mine.basis is None or mine.reason_code is None:
        return []
    asked = mine.requested_amount or mine.amount
    ask = (mine.reason_code, mine.basis == "lines", units_of(mine.lines), asked)
    return [hold for hold in others if _asks_the_same(hold, *ask)]


def _asks_the_same(
    hold: Hold, reason: str, by_lines: bool, units: list[tuple[str, int]], asked: int
) -> bool:
    """The same units of the same lines (both by lines), else the same value, asked before
    fees, for the same reason."""
    if hold.basis is None or hold.reason_code != reason:
        return False
    if by_lines and hold.basis == "lines":
        return units_of(hold.lines) == units
    return (hold.requested_amount or hold.amount) == asked


def cut_by_a_reviewer(request: ReserveInput, holds: Sequence[Hold]) -> str | None:
    """Why `request` is not paid without a reviewer when a reviewer approved another refund
    of the order, by amount or by lines, for less than it asked (None: none did). The
    declined rest of an amount is free on the order again, but asking again for it (under
    another key, for another reason) is the same money a reviewer declined; and after a
    reviewer cut a refund of some lines, a refund of the others is a person's call too:
    a person decides, not the policy."""
    if request.reason_code is None:
        return None
    cut = next((hold for hold in holds if hold.approved_less), None)
    if cut is None:
        return None
    return (
        f"refund {cut.refund_id} of order {request.order_id} was approved by a reviewer for"
        " less than it asked: a reviewer decides any further refund of the order"
    )
