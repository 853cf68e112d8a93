"""What a refund's wording is made from (MessageFacts) and the notices told to customers and
subscribers (Notice): contracts, re-exported by workflows.models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from workflows.states import CancelReason, RefundState
from workflows.vocabulary import Locale, left_out_while_none

NO_ETA: dict[str, None] = {"eta": None, "eta_earliest": None, "eta_kind": None}
"""The facts (and status fields) of no ETA: a stopped refund's, an event's of a returned
item's deadline (subscribers' schema v1 knows only a review's and a payment's)."""


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MessageFacts(_Contract):
    """What the wording of a refund's status depends on: the part of the status object
    every channel (tracking page, support reply, notification) renders its text from."""

    refund_id: str
    order_id: str
    state: RefundState
    cancel_reason: CancelReason | None = None
    amount: int
    currency: str
    locale: Locale = "en"
    escalation_level: int = 0
    item_return_required: bool = False
    """Approved, and the policy pays only once the item is back: the customer must act."""
    payment_failed: bool = False  # refused or failed (or the guard held it); an operator decides
    action_required: str | None = None  # the provider's instructions (requires_action)
    payment_reversed: bool = False  # the provider took back what it paid; an operator decides
    asked_amount: int | None = left_out_while_none()  # approved less: what was asked for
    paid_elsewhere: bool | None = left_out_while_none()
    """Completed by an operator's word that the customer was paid another way (True), not
    by the provider: no payment-method wording and no card ETA. None otherwise."""
    received: bool = False
    """Just asked, before anyone is asked to act: the first notice says it was received (the
    policy's verdict follows in moments), not that it waits for review."""
    cancelled_by_staff: bool = False
    """Withdrawn by staff, not by who asked or submitted it (workflows/refund/views.py)."""
    declined_because: str | None = left_out_while_none()
    """Declined by the policy: its failed rules' own words (English), for the customer to
    read why (a trial read only "is not eligible under the refund policy"). None otherwise."""
    declined_in_locale: str | None = left_out_while_none()
    """The same reasons in the customer's language when it is not English (a trial: a
    zh-CN customer was told no reason); None otherwise (workflows/decline_words.py)."""
    eta: datetime | None = None
    eta_earliest: datetime | None = None
    eta_kind: Literal["review", "payment", "return"] | None = None
    item_held: bool | None = left_out_while_none()
    """Closed without a refund while the warehouse holds its returned item (True): the
    customer is told so (a trial: "rejected after review", no word of their item). None
    otherwise."""
    stopped: bool | None = left_out_while_none()
    """Temporal ended the refund's workflow before the refund ended (client.review_context
    .as_stopped): with our team, worded without a delay it does not have (a trial read "It
    has taken longer than it should" six minutes in). None otherwise."""


class Notice(_Contract):
    """One state change as it is told to customers and subscribers (the outbox)."""

    seq: int
    """The audit entry this notice belongs to."""
    event: str
    at: datetime
    facts: MessageFacts
