"""What the API's callers send (bodies) and the shapes it answers with that are its own;
everything else is the contracts of workflows.models and workflows.read_models."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from client.refund_ids import REFUND_ID_PATTERN
from workflows.models import (
    IDENTIFIER_PATTERN,
    ActorName,
    Channel,
    Identifier,
    Locale,
    PositiveMinor,
    ReasonCode,
    RefundLineRequest,
)
from workflows.money import Currency
from workflows.read_models import CustomerListedRefund, ListedRefund
from workflows.vocabulary import Statement

RefundPath = Annotated[str, Path(pattern=REFUND_ID_PATTERN, description="rf_ and 24 hex digits")]
IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=IDENTIFIER_PATTERN,
        description="The refund's business key: the same key and body are the same refund.",
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RefundRequestBody(_Body):
    """A refund request; its key is the Idempotency-Key header. Exactly one of `amount` or
    `lines`. A customer asks in their own name (`requested_by` is theirs, or left out);
    staff and services name the customer the refund is for."""

    order_id: Identifier
    amount: PositiveMinor | None = None
    lines: Annotated[list[RefundLineRequest], Field(max_length=100)] | None = None
    currency: Currency | None = None
    reason_code: ReasonCode
    channel: Channel = "api"
    requested_by: ActorName | None = None
    locale: Locale = "en"


class ApproveBody(_Body):
    amount: PositiveMinor | None = None
    """Approve less than requested; never more. The reviewer and role come from the token."""
    evidence: Statement | None = None
    """What the reviewer checked (photos in ticket 123): needed above the policy's
    evidence threshold, unless an earlier approval of the refund recorded it."""


class ReasonBody(_Body):
    reason: Statement


class PaidElsewhereBody(_Body):
    proof: Statement
    """What shows the customer was paid: a transfer reference, a credit note number."""
    despite_findings: bool = False
    """Record it although reconciliation's open `provider_money_above_ledger` finding says
    the order's payouts would then exceed its capture: only when that finding is stale
    (the proof recorded says it was overridden). A refund's workflow on this release or later
    still counts the order's payouts itself, asking the provider, and refuses above the
    capture; one still on an older worker build (pinned versioning) does not."""


class RefundPage(BaseModel):
    items: list[ListedRefund]
    next_cursor: str | None = None
    """Pass as `cursor` for the next page; null on the last page."""


class CustomerRefundPage(BaseModel):
    """A customer's own refunds, as `track` tells each one."""

    items: list[CustomerListedRefund]
    next_cursor: str | None = None
    """Pass as `cursor` for the next page; null on the last page."""


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}
