"""Contracts (pydantic v2) for workflow inputs, updates, queries and activities.

Everything here is stored in workflow history: no card numbers, no secrets, no names or
addresses. Actors are staff handles or system names; customers appear only as opaque ids.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

# Activity contracts needing none here live apart; re-exported, importable from here too.
from workflows.activity_contracts import AutoApproveBudget as AutoApproveBudget
from workflows.activity_contracts import CheckRefundInput as CheckRefundInput
from workflows.activity_contracts import FindProviderRefundsInput as FindProviderRefundsInput
from workflows.activity_contracts import OrderPayouts as OrderPayouts
from workflows.activity_contracts import OrderPayoutsInput as OrderPayoutsInput
from workflows.activity_contracts import ProviderRefundResult as ProviderRefundResult
from workflows.activity_contracts import ProviderRefunds as ProviderRefunds
from workflows.activity_contracts import ProviderSettlement as ProviderSettlement
from workflows.activity_contracts import ReconcileInput as ReconcileInput
from workflows.activity_contracts import ReconcileReport as ReconcileReport
from workflows.activity_contracts import RestockInput as RestockInput
from workflows.activity_contracts import RestockResult as RestockResult
from workflows.facts import MessageFacts as MessageFacts
from workflows.facts import Notice as Notice
from workflows.money import Currency
from workflows.refund.patches import StartedOn
from workflows.states import Awaiting, CancelReason, RefundState
from workflows.vocabulary import CHANNELS as CHANNELS
from workflows.vocabulary import IDENTIFIER_PATTERN as IDENTIFIER_PATTERN
from workflows.vocabulary import LOCALES as LOCALES
from workflows.vocabulary import REASON_CODES as REASON_CODES
from workflows.vocabulary import ActorName as ActorName
from workflows.vocabulary import Channel as Channel
from workflows.vocabulary import FreeText as FreeText
from workflows.vocabulary import Identifier as Identifier
from workflows.vocabulary import Locale as Locale
from workflows.vocabulary import PaymentRail as PaymentRail
from workflows.vocabulary import PositiveMinor as PositiveMinor

# The words contracts are made of live apart (workflows.vocabulary); re-exported here.
from workflows.vocabulary import ReasonCode as ReasonCode
from workflows.vocabulary import left_out_while_none


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderLine(_Contract):
    sku: Identifier
    quantity: Annotated[StrictInt, Field(gt=0, le=10_000)]
    unit_price: Annotated[StrictInt, Field(ge=0, le=10**12)]
    """Price of one unit in minor units of the order's currency."""
    category: Annotated[str, Field(min_length=1, max_length=64)]


class OrderSnapshot(_Contract):
    """The order as the order system saw it when the refund was requested."""

    order_id: Identifier
    currency: Currency
    lines: list[OrderLine]
    captured_amount: Annotated[StrictInt, Field(ge=0)]
    payment_reference: Identifier
    """The provider's id for the captured payment (never a card number)."""
    delivered_at: datetime | None = None
    payment_rail: PaymentRail = "card"
    """How the customer paid: decides how long the refund takes to arrive."""
    customer_id: ActorName | None = None
    """Who placed the order, as the order system says (an opaque id; None: it does not say).
    The API lets customers ask only about their own orders, and staff only for this one."""


class RefundLineRequest(_Contract):
    sku: Identifier
    quantity: Annotated[StrictInt, Field(gt=0, le=10_000)]


class RefundRequest(_Contract):
    """What a channel asks for. Exactly one of `amount` or `lines`."""

    refund_key: Identifier
    """The business key: the same key from any channel means the same refund."""
    order_id: Identifier
    amount: PositiveMinor | None = None
    lines: Annotated[list[RefundLineRequest], Field(max_length=100)] | None = None
    currency: Currency | None = None
    """If given, must match the order's currency."""
    reason_code: ReasonCode
    channel: Channel
    requested_by: ActorName
    """Opaque customer id or staff handle, never a name or e-mail."""
    submitted_by: ActorName | None = None
    """Who submitted it for `requested_by`, when someone else did: a staff member or a
    service, from their verified identity (the API sets it). Four eyes: they may not decide
    on it either. Not part of what makes two requests the same."""
    locale: Locale = "en"
    """The customer's language: every message about this refund is rendered in it."""
    issuer: Annotated[str, Field(max_length=300)] | None = None
    """The identity provider that vouched for whoever made the request (the API sets it from
    the token): recorded on the `requested` entry, as on every other action's. Not part of
    what makes two requests the same."""
    note: FreeText | None = None
    """Kept for the contract's stability; the CLI sends none: free text about customers does
    not belong in workflow history (it is visible in the Web UI and kept with the refund)."""

    @model_validator(mode="after")
    def _amount_xor_lines(self) -> RefundRequest:
        if (self.amount is None) == (not self.lines):
            raise ValueError("give either an amount or refund lines, not both and not neither")
        if self.lines:
            skus = [line.sku for line in self.lines]
            if len(set(skus)) != len(skus):
                raise ValueError("each sku may appear only once in the refund lines")
        return self


class ValueShare(_Contract):
    """What an amount-only refund takes of one order line's value (sku `_order`: of the
    part of the capture no line accounts for)."""

    sku: str
    amount: Annotated[StrictInt, Field(gt=0, le=10**12)]


class ResolvedRefund(_Contract):
    """The request checked against the order: the amount that will be refunded and why."""

    amount: PositiveMinor
    currency: Currency
    lines: list[OrderLine] = []
    """Order lines being refunded (with refunded quantities); empty for an amount-only refund."""
    allocation: list[ValueShare] | None = left_out_while_none()
    """An amount-only refund: the ledger's split of its value over what each line still had
    when it was asked (workflows.allocation), which its fees are taken on and it holds.
    None: asked before this was kept (fees spread over the whole order by value)."""


class PinnedPolicy(_Contract):
    """The policy in force when the refund was requested, pinned for its whole life."""

    name: str
    version: int
    content_hash: str
    document: str
    """The policy file's text, so the workflow evaluates exactly what was hashed."""

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version}#{self.content_hash[:12]}"


class RefundWorkflowInput(_Contract):
    refund_id: Identifier
    request: RefundRequest
    order: OrderSnapshot
    resolved: ResolvedRefund
    policy: PinnedPolicy
    asked_at: datetime | None = None
    """When the request was made (the client's clock). The policy is evaluated as of then,
    so a backlog in front of the workers never closes a return window, and the eligibility
    answer given at that moment is the one that holds. None in refunds started before."""
    started_on: StartedOn | None = None
    """A roll-up patch whose new paths the refund takes from its start, asking none."""


class TimelineEntry(_Contract):
    seq: int
    """1-based position in this refund's audit trail."""
    event: str
    from_state: RefundState | None
    state: RefundState
    at: datetime
    actor: str
    source: str
    """The system the action came from: web, app, support, api, policy, timer, worker, ..."""
    reason: str
    escalation_level: int = 0
    issuer: str | None = None
    """The identity provider that vouched for `actor` (its token's `iss`), for actions that
    came through the API; None for the system's own steps and older entries."""


class StatusView(_Contract):
    """The one status object every channel renders from."""

    refund_id: str
    refund_key: str
    order_id: str
    state: RefundState
    cancel_reason: CancelReason | None
    amount: int
    """The amount that is (or will be) refunded, in minor units."""
    requested_amount: int
    currency: str
    awaiting: Awaiting
    escalation_level: int
    policy_version: str
    reason_code: str
    channel: str
    evidence_required: bool
    evidence: str | None = left_out_while_none()  # what APIs and CLIs before it read
    """Who recorded evidence and what they checked ("li: photos in ticket 123")."""
    provider_refund_id: str | None
    provider_failure: str | None = None
    """Why the provider refused or failed the refund, while an operator is needed."""
    requested_by: str | None = None
    """The customer the refund is for (opaque id; None in answers from older workers)."""
    submitted_by: str | None = None
    """Who submitted the request for them, when someone else did."""
    timeline: list[TimelineEntry]
    next_step: str
    eta: datetime | None
    message: str
    policy_notes: list[str] = []
    locale: Locale = "en"
    action_by: str = ""
    """Who must act next, in plain words (a support reviewer, the customer, nobody, ...)."""
    eta_earliest: datetime | None = None
    eta_kind: Literal["review", "payment", "return"] | None = None
    """review: when a decision is due (from the SLA); payment: when the money arrives."""
    payment_rail: PaymentRail = "card"
    fee: int = 0
    """Fees kept back under the policy (minor units): amount = requested - fee at most."""
    approval_by: str | None = None
    """The least senior role that may approve this refund, when a reviewer must."""
    support_reply: str = ""
    """What a support agent tells the customer: the same template as `message`."""
    facts: MessageFacts | None = None
    """The facts `message`, `support_reply` and notifications were rendered from."""


class StatusQuery(_Contract):
    """Query argument, kept as a model so fields (locale, audience) can be added later."""

    include_timeline: bool = True


class PersonsAction(_Contract):
    """An action by a person: the API verified who, and vouches for it (attestation)."""

    issuer: Annotated[str, Field(max_length=300)] | None = None
    """Who vouched for the person acting (their token's `iss`, via the API); audited."""
    attestation: Annotated[str, Field(max_length=200)] | None = left_out_while_none()
    """The API's signature of this action for this refund (client.action_attestation): a
    worker with keys refuses the action without it. Not audited: it proves, it says nothing."""


class ApproveInput(PersonsAction):
    reviewer: ActorName
    role: ActorName = "support"
    """The reviewer's staff role; the pinned policy says how much each role may approve."""
    amount: PositiveMinor | None = None
    """Approve a lower amount than requested; never more."""
    source: str = "support"
    evidence: FreeText | None = left_out_while_none()  # what workers before it read
    """What the reviewer checked (photos in ticket 123): needed above the policy's
    evidence_required_above, unless an earlier approval of the refund recorded it."""


class RejectInput(PersonsAction):
    reviewer: ActorName
    reason: FreeText
    source: str = "support"


class CancelInput(PersonsAction):
    actor: ActorName
    reason: FreeText
    source: str = "support"
    for_customer: bool | None = left_out_while_none()
    """True: a service withdraws it for the customer (the API sets it for services, which
    act for the order's customer), so it is worded as the customer's withdrawal."""


class ItemReceivedInput(PersonsAction):
    actor: ActorName = "warehouse"
    source: str = "warehouse"


# --- activities -------------------------------------------------------------------------


class StatusProjection(_Contract):
    """The row that listing reads; written with every audited transition."""

    refund_id: str
    refund_key: str
    order_id: str
    state: RefundState
    amount: int
    currency: str
    awaiting: Awaiting
    escalation_level: int
    policy_version: str
    reason_code: str
    channel: str
    requested_at: datetime
    updated_at: datetime
    item_received: bool = False
    """The returned item arrived: each refunded line must be restocked (reconciliation)."""


class RecordTransitionsInput(_Contract):
    refund_id: str
    entries: list[TimelineEntry]
    projection: StatusProjection
    notices: list[Notice] = []
    """State changes among `entries`, written to the outbox in the same transaction."""
    conflict_is_final: bool = False
    """The workflow handles an audit conflict (it re-sequences after the stored entries):
    fail at once with the store's last sequence number instead of retrying forever."""
    view: StatusView | None = None
    """The whole status as of these entries: what `status` and `track` read from the store
    (None from workflows older than that; readers then ask the workflow)."""


class IssueRefundInput(_Contract):
    refund_id: str
    order_id: str
    payment_reference: str
    amount: PositiveMinor
    currency: Currency
    idempotency_key: str
    """Derived from the refund id, never from the run id, so every retry reuses it."""
    payment_attempt: int = 1
    """1 for the first try; an operator's retry after a definite failure is 2, 3, ..."""
    look_up_first: bool = False
    """Ask the provider for an existing refund before creating one (set after any try that
    may have committed)."""
    recorded_through: int | None = left_out_while_none()
    """The sequence number of the run's last audit entry, written before this is sent: a
    record past it that left the provider (a run reset to before it) is not paid on."""


class ReserveInput(_Contract):
    refund_id: str
    order_id: str
    amount: PositiveMinor
    currency: Currency
    captured_amount: int
    """From the order snapshot: the most that may ever be refunded on this order."""
    requested_amount: PositiveMinor | None = None
    """Value asked for, before fees (None: `amount`): what an amount-only refund takes from
    the lines, so splitting never wins back a fee."""
    lines: list[OrderLine] = []
    """The refunded lines (refunded quantities); empty for an amount-only refund."""
    order_lines: list[OrderLine] = []
    """The order's lines: an amount-only refund is allocated over them by value."""
    reason_code: str | None = None
    """None: a refund started before the order ledger; only the order total is checked."""
    final_sale_categories: list[str] = []
    """From the pinned policy: lines an amount-only refund may reach only for seller fault."""
    seller_fault: bool = True
    """The reason is the seller's fault (workflows.policy.SELLER_FAULT_REASONS)."""
    requested_by: ActorName | None = None
    """Who asked (None: a refund reserved before budgets): per-customer budgets and history."""
    auto_approve: bool = False
    """The pinned policy would approve this refund automatically, budgets aside."""
    budget: AutoApproveBudget | None = None
    """The pinned policy's auto-approval budgets (None: none, before v3)."""
    allocation: list[ValueShare] | None = left_out_while_none()
    """ResolvedRefund.allocation: held as split, if each share still fits its line."""


class ReserveResult(_Contract):
    reserved: bool
    remaining: int
    """What is still refundable on the order after this reservation (or without it)."""
    refused_because: str | None = None
    """One line naming what is held or refunded, and by which refunds, when refused."""
    auto_approve_refused_because: str | None = None
    """One line naming the auto-approval budget that is used up, when the policy would
    approve automatically but a budget does not allow it: a reviewer decides."""


class OperatorRetryInput(PersonsAction):
    operator: ActorName
    source: str = "operator"


class OperatorPaidElsewhereInput(PersonsAction):
    operator: ActorName
    proof: FreeText
    """What shows the customer was paid: a transfer reference, a credit note number."""
    source: str = "operator"


class OperatorCancelInput(PersonsAction):
    operator: ActorName
    reason: FreeText
    source: str = "operator"
