"""Contracts (pydantic v2) of the activities that talk to the payment provider, the warehouse
and reconciliation: the ones that depend on no other contract. Apart from workflows.models
only to keep that module readable; workflows.models re-exports every name, so import them
from either.

Stored in workflow history like every contract: no card numbers, no secrets.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from workflows.vocabulary import left_out_while_none


class _Contract(BaseModel):
    # The same configuration as workflows.models' contracts (which this module cannot
    # import: workflows.models imports it).
    model_config = ConfigDict(frozen=True, extra="forbid")


# What a provider may say of a refund. pending and requires_action (the customer must act,
# e.g. give bank details: `instructions`) are not final; failed and canceled move no money.
ProviderStatus = Literal["succeeded", "pending", "requires_action", "failed", "canceled"]
NOT_FINAL: tuple[str, ...] = ("pending", "requires_action")
NO_MONEY: tuple[str, ...] = ("failed", "canceled")


class ProviderRefundResult(_Contract):
    provider_refund_id: str
    status: ProviderStatus
    amount: int
    currency: str
    idempotency_key: str | None = None
    failure_code: str | None = None
    instructions: str | None = None
    """For requires_action: what the customer must do (shown to them as the provider says)."""


class ProviderSettlement(_Contract):
    """Signal: the provider settled a pending refund (from a webhook, a poll or reconciliation)."""

    provider_refund_id: str
    status: Literal["succeeded", "failed", "canceled"]
    failure_code: str | None = None
    source: str = "signal"
    """webhook | poll | reconciliation, as each sender says; `signal`: one that named no
    sender (the Web UI's Send a Signal, `temporal workflow signal`), which the audit does not
    put on the provider's webhook (a trial's forged settlement read "by payment-provider via
    webhook"). Every sender refundflow has names itself."""


class CheckRefundInput(_Contract):
    refund_id: str
    provider_refund_id: str


class FindProviderRefundsInput(_Contract):
    refund_id: str
    payment_reference: str | None = left_out_while_none()
    """The refund's payment: a provider refund on another one is not its, whatever id was
    typed into it (None: any payment, as workflows before it asked)."""


class ProviderRefunds(_Contract):
    refunds: list[ProviderRefundResult]


class OrderPayoutsInput(_Contract):
    refund_id: str
    """The refund asking: its own hold and provider refunds are not counted."""
    order_id: str
    currency: str


class OrderPayouts(_Contract):
    """What an order's money looks like now, asked of the provider and the ledger at once
    (activities/order_payouts.py). Minor units of the order's currency."""

    captured_amount: int | None
    """The capture the order's ledger judges by (as first recorded); None: the ledger has
    none (a refund held before it kept captures), so the order the refund checked counts."""
    others_out: int
    """Paid, or still able to pay, for every other refund of the order: per refund the
    larger of its hold and what the provider paid or may pay for it, plus provider money
    on the order that no refund of ours accounts for."""
    provider_out: int
    """Of the order's money, what the provider paid or may still pay (not failed or
    canceled), whoever asked for it."""
    around: int = 0
    """Of `provider_out`, what names no refund of ours (a refund made at the provider's
    dashboard): money only reconciliation and this count know of."""


class RestockInput(_Contract):
    refund_id: str
    sku: str
    quantity: int
    idempotency_key: str


class RestockResult(_Contract):
    movement_id: str
    sku: str
    quantity: int


class AutoApproveBudget(_Contract):
    """The pinned policy's auto-approval budgets (`[budgets]`, v3 on), carried by a
    reservation so the store checks them under the lock. Minor units; None: no such bound."""

    per_order: int | None = None
    """The most auto-approved money on one order, all its refunds together."""
    per_customer: int | None = None
    """The most auto-approved money for one requester over `window_days`, per currency."""
    window_days: int = 30


class ReconcileInput(_Contract):
    heal: bool = True
    """Heal what is safe to heal (through the refund's own workflow); escalate the rest."""
    grace_seconds: int = 60
    """Ignore refunds changed this recently: they may simply be mid-flight."""


class ReconcileReport(_Contract):
    run_id: str
    refunds: int
    """Refunds known to refundflow when the run started."""
    provider_refunds: int
    findings: dict[str, int]
    """Count per kind of disagreement."""
    healed: int
    escalated: int
    seconds: float
    reported: int = 0
    """Findings of a run told not to heal (`--no-heal`): looked at, nothing changed."""
