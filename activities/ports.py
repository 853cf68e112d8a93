"""Ports: the small interfaces the activities need from the outside world."""

from __future__ import annotations

from typing import Protocol

from workflows.models import (
    IssueRefundInput,
    OrderSnapshot,
    ProviderRefundResult,
    RecordTransitionsInput,
    ReserveInput,
    ReserveResult,
    RestockInput,
    RestockResult,
)
from workflows.read_models import AuditEntry


def error_text(err: BaseException, waited_s: float | None = None) -> str:
    """An error in one line for logs and delivery records. Some errors carry no message
    (asyncio's TimeoutError), and "TimeoutError: " told an operator nothing: a timeout says
    how long we waited, any other message-less error is named alone."""
    if message := str(err):
        return f"{type(err).__name__}: {message}"
    if isinstance(err, TimeoutError) and waited_s:
        return f"no answer within {waited_s:g} s (timed out)"
    return type(err).__name__


class ExternalSystemUnavailable(Exception):
    """A transient failure (timeout, 5xx, connection refused): safe to retry."""


class ExternalSystemRefused(Exception):
    """A permanent refusal (4xx): retrying the same call cannot succeed."""

    def __init__(self, message: str, code: str = "refused") -> None:
        super().__init__(message)
        self.code = code


class PaymentProvider(Protocol):
    async def refund(
        self, request: IssueRefundInput, *, look_up_first: bool = False
    ) -> ProviderRefundResult:
        """Refund against a captured payment; the idempotency key makes repeats harmless.

        With `look_up_first`, return an existing non-failed refund for the same refund id
        instead of creating one (the retry after a timeout or a lost response).
        """
        ...

    async def get_refund(self, provider_refund_id: str) -> ProviderRefundResult: ...

    async def find_refunds(
        self, refund_id: str, payment_reference: str | None = None
    ) -> list[ProviderRefundResult]:
        """Refunds carrying `refund_id` in their metadata (on that payment, when given)."""
        ...

    async def cancel_refund(self, provider_refund_id: str) -> ProviderRefundResult:
        """Cancel a refund that has not paid yet, where the provider allows it (Stripe: one
        that requires action); a refusal is ExternalSystemRefused with the reason."""
        ...


class Inventory(Protocol):
    async def restock(self, request: RestockInput) -> RestockResult:
        """Return units to stock, at most once per idempotency key."""
        ...


class OrderSystem(Protocol):
    async def get_order(self, order_id: str) -> OrderSnapshot | None:
        """The order as it is now, or None if there is no such order."""
        ...


class ReservationStore(Protocol):
    async def reserve(self, request: ReserveInput) -> ReserveResult:
        """Hold `amount` of the order's captured amount for this refund (idempotent)."""
        ...


class RefundStore(Protocol):
    async def record_transitions(self, batch: RecordTransitionsInput) -> int:
        """Append audit entries (ignoring ones already stored) and update the projection.

        Returns how many entries were newly written.
        """
        ...

    async def audit_trail(self, refund_id: str) -> list[AuditEntry]:
        """The refund's audit entries in sequence order."""
        ...
