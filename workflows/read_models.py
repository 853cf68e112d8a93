"""Read models (pydantic v2): what the store, the outbox and the report hand to their readers
(RefundClient, the CLI, services). Pure shapes, no I/O; activities/ builds them from rows and
client/ renders them.

Their JSON (`model_dump(mode="json")`, what `--json` prints) keeps the field order and value
formats of the rows they replace: timestamps as ISO 8601 text from `datetime.isoformat()`
(`+00:00`, not `Z`), states as their values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainSerializer

from workflows.models import ReconcileReport
from workflows.states import Awaiting, RefundState
from workflows.vocabulary import left_out_while_none

IsoDatetime = Annotated[
    datetime, PlainSerializer(lambda moment: moment.isoformat(), return_type=str, when_used="json")
]
"""A timestamp, written in JSON as `datetime.isoformat()` writes it."""

BucketUnit = Literal["hour", "day"]
"""How the report's series is bucketed."""


class _ReadModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ListedRefund(_ReadModel):
    """A refund as the status projection lists it (`refundflow list`)."""

    refund_id: str
    order_id: str
    state: RefundState
    amount: int
    currency: str
    awaiting: Awaiting
    escalation_level: int
    policy_version: str
    reason_code: str
    channel: str
    requested_at: IsoDatetime
    updated_at: IsoDatetime
    ended_in_temporal: str | None = left_out_while_none()
    """Staff's lists only: "terminated 2026-11-27 14:20:00 UTC" when Temporal ended this open
    refund's workflow (nothing moves it until reconciliation closes it)."""


class CustomerListedRefund(_ReadModel):
    """A customer's own refund as their list shows it: as `track` tells it (their words, the
    amount they are told), without staff's fields (who acts, escalation, policy version)."""

    refund_id: str
    order_id: str
    status: str
    """The state, in the customer's language."""
    amount: int
    currency: str
    requested_at: IsoDatetime


class AuditEntry(_ReadModel):
    """One recorded transition or timeline fact of a refund's append-only audit trail."""

    refund_id: str
    seq: int
    event: str
    from_state: RefundState | None
    to_state: RefundState
    at: IsoDatetime
    actor: str
    source: str
    reason: str
    escalation_level: int
    policy_version: str
    issuer: str | None = None
    """The identity provider that vouched for the actor (actions through the API)."""
    recorded_at: IsoDatetime


class CustomerStep(_ReadModel):
    at: IsoDatetime
    label: str
    """The state reached, in the customer's language."""


class CustomerView(_ReadModel):
    """What the customer may see of a refund (`workflows.wording.customer_view`): tracking,
    and the answer to a customer's own request. No staff, internal reasons, escalation,
    provider ids or policy internals."""

    refund_id: str
    order_id: str
    locale: str
    status: str
    """The state, in the customer's language."""
    amount: int
    currency: str
    asked_amount: int | None = left_out_while_none()
    """Approved for less than asked: what the customer asked for (before fees)."""
    message: str
    eta: IsoDatetime | None
    eta_earliest: IsoDatetime | None
    eta_kind: Literal["review", "payment", "return"] | None
    timeline: list[CustomerStep]


class Delivery(_ReadModel):
    """One event's delivery to one subscriber. Its timestamps are the ISO 8601 text Postgres
    wrote when it gathered the deliveries as JSON, kept exactly as written."""

    subscriber: str
    attempts: int
    delivered_at: str | None
    next_try_at: str | None
    last_error: str | None
    parked_at: str | None = None
    """Set once the subscriber's delivery budget ran out: a dead letter, left out of the
    refund's line until `refundflow subscribers replay` queues it again."""


class OutboxEvent(_ReadModel):
    """A refund's event in the outbox, with its delivery to every subscriber."""

    event_id: str
    seq: int
    type: str
    occurred_at: IsoDatetime
    payload: dict[str, Any]
    """What subscribers receive, as stored (a workflows.events.SubscriberEvent of its
    version, in JSON)."""
    deliveries: list[Delivery]


class Subscriber(_ReadModel):
    """A subscriber with its backlog; its secret is never listed."""

    name: str
    url: str
    active: bool
    created_at: IsoDatetime
    pending: int
    delivered: int
    parked: int
    """Deliveries parked after the budget ran out (dead letters), awaiting a replay."""
    oldest_parked_at: IsoDatetime | None
    oldest_parked_event: str | None
    oldest_parked_error: str | None = None
    """Why the oldest parked event failed, its last time."""
    last_error: str | None = None
    """Why an event still retried failed, the one tried most often (None: none is failing;
    parked events have their own line)."""
    last_error_attempts: int | None = None
    """How many times that event was tried."""
    max_attempts: int
    max_age_seconds: int
    """The delivery budget: attempts, and time since an event's first attempt."""
    previous_secret_valid_until: IsoDatetime | None
    """During a secret rotation: until when the replaced secret still signs too."""


class AddedSubscriber(_ReadModel):
    """A subscriber just added, or its secret just rotated, with its signing secret (the
    only time it is shown)."""

    name: str
    url: str
    secret: str
    active: bool
    created_at: IsoDatetime
    max_attempts: int
    max_age_seconds: int
    previous_secret_valid_until: IsoDatetime | None = None
    """Until when the replaced secret still signs deliveries (beside this one)."""
    subscribed_before: bool = False
    """`add`: the name was subscribed before (active, or removed and now back), so its URL
    and budget may have changed; a script reads it here rather than from the wording."""


class ReplayedDeliveries(_ReadModel):
    """Parked deliveries queued again (`refundflow subscribers replay`)."""

    subscriber: str
    event_ids: list[str]


class Finding(_ReadModel):
    """A disagreement a reconciliation run found, and what it did about it."""

    finding_id: int
    run_id: str
    kind: str
    refund_id: str | None
    order_id: str | None
    details: dict[str, Any]
    action: Literal["healed", "escalated", "reported"]
    created_at: IsoDatetime
    open: bool
    """Still standing: the newest finished run found it and did not heal it, or (a parked
    subscriber event) the event is still parked. A row of an older run is not open."""
    first_found_at: IsoDatetime
    """The first finding of this kind for this refund (or order), in any run."""
    acknowledged_by: str | None = left_out_while_none()
    """Who said it is dealt with outside refundflow (`refundflow acknowledge`), while its
    details are still those acknowledged; None: nobody."""
    acknowledged_reason: str | None = left_out_while_none()
    acknowledged_at: IsoDatetime | None = left_out_while_none()


class LedgerLine(_ReadModel):
    """One line of an order's ledger: what every refund of the order holds (open refunds)
    and has refunded (completed ones) of it. sku `_order` is the part of the capture that no
    line accounts for (shipping, ...); its quantity is 0."""

    sku: str
    quantity: int
    """Units ordered."""
    value: int
    """The line's worth in minor units (quantity x unit price)."""
    held_quantity: int
    held_amount: int
    """The money open refunds hold for this line: each refund's hold shared over its lines
    in proportion to their worth."""
    refunded_quantity: int
    """Units closed by completed refunds, even one approved for less than their worth."""
    refunded_amount: int
    """The money completed refunds paid for this line (shared as `held_amount` is): a unit
    approved for 1.50 of its 300.00 shows 1.50."""
    refunds: list[str]
    """The refunds holding or having refunded any of it, oldest first."""


class OrderLedger(_ReadModel):
    """An order's ledger (`refundflow status` shows it under the refund): the money held and
    refunded against its capture, and per line the units and value (workflows/ledger.py)."""

    order_id: str
    currency: str
    captured_amount: int
    held: int
    """Money reserved by open refunds (after fees), with what was paid and then taken back
    by the provider (`taken_back`, part of it: its refund is open again)."""
    refunded: int
    """Money paid by completed refunds."""
    taken_back: int = 0
    """Money paid, then taken back by the provider (a reversal): its refund is open again
    and an operator decides. Part of `held`: still reserved, so not refundable again."""
    refunds: list[str]
    """Every refund of the order that holds or has refunded something, oldest first."""
    lines: list[LedgerLine]


class CustomerSpend(_ReadModel):
    """A customer's refunds in one currency over a recent window (minor units)."""

    currency: str
    refunds: int
    """Refunds that hold or were paid money (cancelled ones are not counted)."""
    amount: int
    """Their money, held or refunded, after fees."""
    auto_approved: int
    """Of which approved automatically (what the per-customer budget counts)."""


class ClosedRequest(_ReadModel):
    """Another refund of the same order that closed without paying (rejected, withdrawn,
    expired, ...): what a reviewer of a new request on that order must see, since a request
    refused once may simply be asked again under a new key."""

    refund_id: str
    amount: int
    currency: str
    reason_code: str
    """What it was asked for."""
    cancel_reason: str | None
    closed_at: IsoDatetime
    closed_by: str
    said: str
    """The reason recorded when it closed (a reviewer's rejection note, say)."""


class CustomerHistory(_ReadModel):
    """The requester's other refunds over a recent window, across orders: what a reviewer
    weighs beside the refund in front of them (`refundflow status`)."""

    customer: str
    """As budgets compare it (lower case)."""
    window_days: int
    totals: list[CustomerSpend]
    """One entry per currency; empty when the customer has no other refund in the window."""


class Reconciliation(ReconcileReport):
    """A reconciliation run's report with the findings it recorded (`refundflow reconcile`)."""

    details: list[Finding]


class TimeToRefund(_ReadModel):
    """Seconds from the request to the provider's first confirmation, over completed refunds."""

    p50: float | None
    p90: float | None
    count: int


class MoneyTotals(_ReadModel):
    """The report's money in one currency, minor units, refund amounts after fees."""

    currency: str
    refunded: int
    """Paid to customers: refunds that completed."""
    open: int
    """Refunds on their way (not final yet): what may still be paid."""
    not_paid: int
    """Refunds that ended cancelled (rejected, withdrawn, expired): nothing was paid."""


class SeriesBucket(_ReadModel):
    """One hour or day of the report's series, by when refunds were requested."""

    start: IsoDatetime
    completed: int
    cancelled: int
    open: int
    """Every state that is not final."""
    p50_time_to_refund_seconds: float | None

    def by_outcome(self) -> dict[str, int]:
        """The counts by outcome: completed, cancelled, open."""
        return {"completed": self.completed, "cancelled": self.cancelled, "open": self.open}


class RefundReport(_ReadModel):
    """`refundflow report`: refund metrics for refunds requested in [since, until)
    (client.report.build_report says how each is computed)."""

    since: IsoDatetime | None
    until: IsoDatetime | None
    generated_at: IsoDatetime
    refunds: int
    by_state: dict[str, int]
    by_reason: dict[str, dict[str, int]]
    time_to_refund_seconds: TimeToRefund
    sla_breaches: int
    escalation_rate: float
    duplicate_refunds: int
    duplicate_orders: list[str] = []
    """The orders behind `duplicate_refunds` (a trial: the alarm said "investigate now" and
    named nothing to investigate)."""
    acknowledged_orders: list[str] = []
    """Of `duplicate_orders`, those whose standing findings were all acknowledged: dealt
    with outside refundflow (a trial: the banner said "investigate now" for them too)."""
    reopen_rate: float
    refused: int = 0
    """Refused requests (rejected, declined, expired in review): the reopen rate's base."""
    reopened: int = 0
    """Of those, the ones whose order was asked again after."""
    reversals: int = 0
    """Payments the provider took back after confirming them (each reopened its refund)."""
    money: list[MoneyTotals] = []
    """Per currency (a sum across currencies means nothing), in currency order."""
    bucket: BucketUnit
    series: list[SeriesBucket]
