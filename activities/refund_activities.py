"""The Temporal activities: thin wrappers that bind log context and translate errors."""

from __future__ import annotations

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit_retries import AuditConflict, RecordClosedAhead, same_entry
from activities.log_context import activity_log_context
from activities.ports import (
    ExternalSystemRefused,
    Inventory,
    PaymentProvider,
    RefundStore,
    ReservationStore,
)
from workflows import names
from workflows.models import (
    CheckRefundInput,
    FindProviderRefundsInput,
    IssueRefundInput,
    ProviderRefundResult,
    ProviderRefunds,
    RecordTransitionsInput,
    ReserveInput,
    ReserveResult,
    RestockInput,
    RestockResult,
)
from workflows.recorded_payment import RecordAndPayInput

log = structlog.get_logger("refundflow.activities")


class RefundActivities:
    def __init__(
        self,
        store: RefundStore,
        payment: PaymentProvider,
        inventory: Inventory,
        reservations: ReservationStore,
    ) -> None:
        self._store = store
        self._payment = payment
        self._inventory = inventory
        self._reservations = reservations

    @activity.defn(name=names.ACTIVITY_RESERVE_REFUND)
    async def reserve_refund(self, request: ReserveInput) -> ReserveResult:
        with activity_log_context(request.refund_id):
            result = await self._reservations.reserve(request)
            log.info("reservation", reserved=result.reserved, remaining=result.remaining)
            return result

    @activity.defn(name=names.ACTIVITY_RECORD_TRANSITIONS)
    async def record_transitions(self, batch: RecordTransitionsInput) -> int:
        with activity_log_context(batch.refund_id):
            try:
                written = await self._store.record_transitions(batch)
            except RecordClosedAhead as err:
                raise _superseded(batch, err.seq, err.event, err.to_state, None) from err
            except AuditConflict as err:
                if not batch.conflict_is_final:
                    raise  # older refunds: retried, visibly, until someone looks
                raise await self._conflict(batch, err) from err
            log.info(
                "transitions_recorded",
                written=written,
                received=len(batch.entries),
                state=batch.projection.state.value,
            )
            return written

    async def _conflict(
        self, batch: RecordTransitionsInput, err: AuditConflict
    ) -> ApplicationError:
        """Where the stored trail and this run's part, for the workflow to write its entries
        after the other run's; or, when the other run's entries from there moved the refund
        to another state (approved, paid, closed), that this run must not record at all: it
        holds a state the refund has left (a Reset in Temporal to before it)."""
        trail = await self._store.audit_trail(batch.refund_id)
        stored = {e.seq: same_entry(e.event, e.to_state.value, e.actor, e.reason) for e in trail}
        first_clash = min(  # the same entry as the store tells retries
            e.seq
            for e in batch.entries
            if e.seq in stored
            and stored[e.seq] != same_entry(e.event, e.state.value, e.actor, e.reason)
        )
        last = trail[-1]
        log.warning("audit_conflict", first_clash=first_clash, stored_upto=last.seq)
        held = [e.to_state for e in trail if e.seq < first_clash][-1:]  # where the runs part
        if any([e.to_state] != held for e in trail if e.seq >= first_clash):
            [ours] = [e for e in batch.entries if e.seq == first_clash]
            unrecorded = f"{ours.event} -> {ours.state.value} not recorded"
            return _superseded(batch, last.seq, last.event, last.to_state.value, unrecorded)
        # The other run kept a returned item's receipt (a reset without its updates
        # reapplied, a trial): this run holds it too, or it would ask the customer for it.
        # Only when it does: a conflict as before is two details, which an older worker's
        # workflow reads (a review: three on every conflict failed its tasks mid-deploy).
        kept = any(e.event == "item_received" for e in trail if e.seq >= first_clash)
        return ApplicationError(
            str(err), first_clash, last.seq, *([True] if kept else []),
            type=names.AUDIT_CONFLICT_ERROR, non_retryable=True,
        )  # fmt: skip

    @activity.defn(name=names.ACTIVITY_ISSUE_PROVIDER_REFUND)
    async def issue_provider_refund(self, request: IssueRefundInput) -> ProviderRefundResult:
        with activity_log_context(request.refund_id):
            # A retry may follow a commit whose answer was lost: look before sending again.
            look_up_first = (
                request.look_up_first or activity.info().attempt > 1 or request.payment_attempt > 1
            )
            try:
                result = await self._payment.refund(request, look_up_first=look_up_first)
            except ExternalSystemRefused as err:
                log.warning("provider_refused", code=err.code, error=str(err))
                raise ApplicationError(
                    str(err), err.code, type=names.PROVIDER_REFUSED_ERROR, non_retryable=True
                ) from err
            log.info(
                "provider_refund_issued",
                provider_refund_id=result.provider_refund_id,
                status=result.status,
                amount=result.amount,
                currency=result.currency,
            )
            return result

    @activity.defn(name=names.ACTIVITY_RECORD_AND_PAY)
    async def record_and_issue_provider_refund(
        self, request: RecordAndPayInput
    ) -> ProviderRefundResult:
        """`record_transitions`, then `issue_provider_refund`, in one call. A record the
        store refuses (an audit conflict, a run that a reset superseded) raises as it does
        there, and nothing is sent to the provider; a retry writes nothing twice."""
        await self.record_transitions(request.record)
        return await self.issue_provider_refund(request.pay)

    @activity.defn(name=names.ACTIVITY_CHECK_PROVIDER_REFUND)
    async def check_provider_refund(self, request: CheckRefundInput) -> ProviderRefundResult:
        with activity_log_context(request.refund_id):
            result = await self._payment.get_refund(request.provider_refund_id)
            log.info("provider_refund_checked", status=result.status)
            return result

    @activity.defn(name=names.ACTIVITY_CANCEL_PROVIDER_REFUND)
    async def cancel_provider_refund(self, request: CheckRefundInput) -> ProviderRefundResult:
        """An operator cancels a refund still pending with the provider: the provider's
        refusal (it paid meanwhile, or does not cancel refunds in that status) is final."""
        with activity_log_context(request.refund_id):
            try:
                result = await self._payment.cancel_refund(request.provider_refund_id)
            except ExternalSystemRefused as err:
                log.warning("provider_cancel_refused", code=err.code, error=str(err))
                raise ApplicationError(
                    str(err), err.code, type=names.PROVIDER_REFUSED_ERROR, non_retryable=True
                ) from err
            log.info("provider_refund_cancel_asked", status=result.status)
            return result

    @activity.defn(name=names.ACTIVITY_FIND_PROVIDER_REFUNDS)
    async def find_provider_refunds(self, request: FindProviderRefundsInput) -> ProviderRefunds:
        with activity_log_context(request.refund_id):
            found = await self._payment.find_refunds(request.refund_id, request.payment_reference)
            log.info("provider_refunds_found", count=len(found))
            return ProviderRefunds(refunds=found)

    @activity.defn(name=names.ACTIVITY_RESTOCK_LINE)
    async def restock_line(self, request: RestockInput) -> RestockResult:
        with activity_log_context(request.refund_id):
            try:
                result = await self._inventory.restock(request)
            except ExternalSystemRefused as err:
                log.warning("restock_refused", code=err.code, error=str(err))
                raise ApplicationError(
                    str(err), err.code, type=names.INVENTORY_REFUSED_ERROR, non_retryable=True
                ) from err
            log.info("restocked", sku=result.sku, quantity=result.quantity)
            return result


def _superseded(
    batch: RecordTransitionsInput, seq: int, event: str, state: str, unrecorded: str | None
) -> ApplicationError:
    """The run holds a state its refund's record has left: it must record nothing more (the
    workflow ends failed with these words, for whoever looks in the Web UI)."""
    return ApplicationError(
        f"refund {batch.refund_id} is {state} on its record (entry {seq}, {event}), written"
        " by an earlier run of its workflow. This run was reset to before that: it holds"
        f" {batch.projection.state.value} and records nothing"
        + (f" ({unrecorded})" if unrecorded else "")
        + "; the record stands",
        state,
        type=names.AUDIT_SUPERSEDED_ERROR,
        non_retryable=True,
    )
