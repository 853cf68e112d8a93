"""The actions on a refund: updates of its workflow, answered with its new status.

`source` is the system the action came from, as the audit records it (the HTTP API says
"api"); `issuer` is the identity provider that vouched for the person (their token's `iss`,
set by the API), recorded with the audit entry. The defaults are the contracts' own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities import order_ledger
from activities.audit_retries import same_entry
from activities.pg_store import PostgresRefundStore
from client import workflow_reads
from client.action_attestation import ActionSigner
from client.errors import (
    RefundActionRefused,
    RefundClosed,
    RefundflowError,
    RefundStopped,
    rpc_error,
)
from client.review_context import (
    ESCALATED_WHEN_ENDED,
    ITEM_LEFT_WITH_THE_WAREHOUSE,
    RECONCILIATION_CLOSES,
    left_to_a_person,
)
from client.settings import dev_stack_place
from workflows.models import (
    ApproveInput,
    CancelInput,
    ItemReceivedInput,
    OperatorCancelInput,
    OperatorPaidElsewhereInput,
    OperatorRetryInput,
    RejectInput,
    StatusView,
    TimelineEntry,
)
from workflows.money import format_minor
from workflows.refund.workflow import RefundWorkflow
from workflows.states import TERMINAL_STATES, Awaiting, RefundState
from workflows.vocabulary import FREE_TEXT_MAX_CHARS
from workflows.wording import closed_because

UPDATE_TIMEOUT = timedelta(seconds=30)
RETRY_OUTCOME_WAIT = timedelta(seconds=5)
"""How long an operator's retry waits for its attempt's outcome before answering that the
provider still has it (a provider answers in well under a second when it answers at once)."""
log = structlog.get_logger("refundflow.client")


class RefundActions:
    """Mixed into RefundClient, which holds the Temporal client."""

    temporal: Client
    _signer: ActionSigner | None = None

    async def approve(
        self,
        refund_id: str,
        reviewer: str,
        amount: int | None = None,
        role: str = "support",
        *,
        source: str = "support",
        issuer: str | None = None,
        evidence: str | None = None,
    ) -> StatusView:
        """Approve as `reviewer` acting in staff `role`; the refund's pinned policy says
        how much that role may approve, and above which amount `evidence` (what the
        reviewer checked) is needed."""
        who = {"reviewer": reviewer, "role": role, "source": source, "issuer": issuer}
        update = ApproveInput.model_validate({**who, "amount": amount, "evidence": evidence})
        return await self._update(refund_id, RefundWorkflow.approve, update)

    async def reject(
        self,
        refund_id: str,
        reviewer: str,
        reason: str,
        *,
        source: str = "support",
        issuer: str | None = None,
    ) -> StatusView:
        update = RejectInput(reviewer=reviewer, reason=reason, source=source, issuer=issuer)
        return await self._update(refund_id, RefundWorkflow.reject, update)

    async def cancel(
        self,
        refund_id: str,
        actor: str,
        reason: str,
        *,
        source: str = "support",
        issuer: str | None = None,
        for_customer: bool = False,
    ) -> StatusView:
        """Withdraw the refund; `for_customer`: a service acting for the order's customer."""
        update = CancelInput(
            actor=actor,
            reason=reason,
            source=source,
            issuer=issuer,
            for_customer=True if for_customer else None,
        )
        return await self._update(refund_id, RefundWorkflow.cancel, update)

    async def item_received(
        self,
        refund_id: str,
        actor: str = "warehouse",
        *,
        source: str = "warehouse",
        issuer: str | None = None,
    ) -> StatusView:
        update = ItemReceivedInput(actor=actor, source=source, issuer=issuer)
        try:
            return await self._update(refund_id, RefundWorkflow.item_received, update)
        except RefundClosed as err:  # closed unpaid: what to do with the item
            if not err.cancelled:
                raise
            raise RefundClosed(f"{err}{ITEM_LEFT_WITH_THE_WAREHOUSE}", cancelled=True) from None

    async def operator_retry(
        self, refund_id: str, operator: str, *, source: str = "operator", issuer: str | None = None
    ) -> StatusView:
        """Pay again; answered once the new attempt has an outcome (paid, refused again, or
        still with the provider after RETRY_OUTCOME_WAIT): a trial's retry answered "on its
        way" with a date while the provider had already refused it again."""
        update = OperatorRetryInput(operator=operator, source=source, issuer=issuer)
        answer = await self._update(refund_id, RefundWorkflow.operator_retry, update)
        return await self._attempt_outcome(refund_id, answer)

    async def _attempt_outcome(self, refund_id: str, answer: StatusView) -> StatusView:
        """The refund as recorded once its payment attempt has an outcome (it no longer
        waits on the provider: paid, or an operator again), polled from the projection; at
        most RETRY_OUTCOME_WAIT, then the latest record (a provider that answered
        "pending" still has it). A review: stopping at the first new entry answered a
        pending attempt as if decided."""
        if not self._database_url:
            return answer
        latest = answer
        deadline = asyncio.get_running_loop().time() + RETRY_OUTCOME_WAIT.total_seconds()
        while latest.awaiting is Awaiting.PAYMENT_PROVIDER and latest.state not in TERMINAL_STATES:
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.1)
            latest = await self._as_recorded(refund_id, answer) or answer
        return latest

    async def operator_paid_elsewhere(
        self,
        refund_id: str,
        operator: str,
        proof: str,
        *,
        source: str = "operator",
        issuer: str | None = None,
        despite_findings: bool = False,
    ) -> StatusView:
        """The customer was paid outside the provider: complete the refund with the proof.
        Refused when, by reconciliation's open finding of money the provider paid around
        refundflow, it would take the order's payouts above its capture; `despite_findings`
        (the finding is stale) passes it, and the proof says so. The workflow then counts
        the order's payouts as they are now (workflows/refund/within_capture.py)."""
        over = await self._over_paid_order(refund_id)
        if over and not despite_findings:
            raise RefundActionRefused(over)
        if over:  # the audit keeps that a person overrode it (the proof is what it records)
            said = " [recorded despite an open provider_money_above_ledger finding]"
            proof = proof[: FREE_TEXT_MAX_CHARS - len(said)] + said
        update = OperatorPaidElsewhereInput(
            operator=operator, proof=proof, source=source, issuer=issuer
        )
        return await self._update(refund_id, RefundWorkflow.operator_paid_elsewhere, update)

    async def _over_paid_order(self, refund_id: str) -> str | None:
        """Why paying `refund_id` elsewhere would take its order's payouts above the capture,
        by reconciliation's open finding of what the provider paid on it (None: it would
        not, or nothing says). A trial: the provider had paid 10.00 of an 80.00 order
        around refundflow, refused this 35.00 refund (25.00 left there), and an operator
        paid the 35.00 elsewhere: 90.00 out."""
        if not self._database_url:
            return None
        store = await self._store()
        view = await store.status_view(refund_id)
        if view is None or view.state in TERMINAL_STATES:
            return None  # a closed refund: the workflow says so (a trial got 140.00 of 100.00)
        kind = "provider_money_above_ledger"
        found = await store.findings(order_id=view.order_id, kind=kind, open_only=True, limit=1)
        if not found:
            return None
        captured = (await store.state_and_holds(view.order_id, refund_id)).captured_amount
        if captured is None:
            return None
        provider_paid = int(found[0].details["provider_paid"])
        elsewhere = await order_ledger.paid_elsewhere_on(store.pool, view.order_id, refund_id)
        out = provider_paid + elsewhere + view.amount
        if out <= captured:
            return None

        def money(amount: int) -> str:
            return format_minor(amount, view.currency)

        return (
            f"refused: the provider has paid {money(provider_paid)} of order {view.order_id}"
            f" (some around refundflow: {kind}, open)"
            + (f" and {money(elsewhere)} was paid elsewhere" if elsewhere else "")
            + f"; paying this refund's {money(view.amount)} elsewhere too makes"
            f" {money(out)} of the {money(captured)} captured. See `refundflow"
            f" anomalies --order {view.order_id}`: if that money reached this refund's customer,"
            " cancel it (`operator cancel`); only if the finding is stale, record it with"
            " --despite-findings (its audit entry says so; a refund on this release or later"
            " still counts the order's payouts itself)"
        )

    async def operator_cancel(
        self,
        refund_id: str,
        operator: str,
        reason: str,
        *,
        source: str = "operator",
        issuer: str | None = None,
    ) -> StatusView:
        update = OperatorCancelInput(operator=operator, reason=reason, source=source, issuer=issuer)
        return await self._update(refund_id, RefundWorkflow.operator_cancel, update)

    _database_url: str | None
    _store: Callable[[], Awaitable[PostgresRefundStore]]  # RefundClient's store

    async def _as_recorded(
        self, refund_id: str, answer: StatusView | None, fresher: bool = True
    ) -> StatusView | None:
        """An update's answer, or the refund as recorded since when that goes on from it
        (`fresher`; None: no answer). The answer is the status when the handler returned;
        the workflow task that ran it goes on before Temporal sends it: an operator's
        choice taken, or the provider's answer to an auto-approved refund (a refusal
        included), recorded in the projection by then. One projection read, never a query
        (which could replay a history); without a store, the answer as it is."""
        if answer is None or not fresher or not self._database_url:
            return answer
        try:
            recorded = await (await self._store()).status_view(refund_id)
        except Exception as err:  # the action was taken: a read that failed must not say not
            log.warning("refund.recorded_status_unread", refund_id=refund_id, error=repr(err))
            return answer
        if recorded is not None and _contradicts(recorded, answer):
            await self._refuse_if_superseded(refund_id, recorded)
        return recorded if recorded is not None and _goes_on_from(recorded, answer) else answer

    async def _closed_on_record(self, refund_id: str) -> StatusView | None:
        """The refund's recorded status when it is completed or cancelled (None: open, or
        unknown)."""
        if not self._database_url:
            return None
        try:
            recorded = await (await self._store()).status_view(refund_id)
        except Exception:  # only wording rides on it: the refusal stands either way
            return None
        return recorded if recorded is not None and recorded.state in TERMINAL_STATES else None

    async def _refuse_if_superseded(self, refund_id: str, recorded: StatusView) -> None:
        """The run that answered holds a state its refund's record has left: a Reset in
        Temporal to before the refund was paid or closed. Such a run records nothing and ends
        (activities/refund_activities.py, AUDIT_SUPERSEDED_ERROR): its answer is not the
        refund's, and the caller must hear that nothing changed."""
        try:
            description = await self._handle(refund_id).describe()
        except RPCError as err:
            log.warning("refund.run_unread", refund_id=refund_id, error=repr(err))
            return
        if description.status is WorkflowExecutionStatus.RUNNING:
            return
        raise RefundActionRefused(
            f"refused: nothing was recorded: refund {refund_id} is {recorded.state.value} on"
            " its record, written by an earlier run of its workflow; the run that took this"
            " action had been reset in Temporal to before that, and has ended. The refund"
            " stays as recorded"
        )

    async def _behind_its_record(self, handle: WorkflowHandle[Any, Any]) -> str:
        if not self._database_url:
            return ""
        try:
            records = await self._store()
        except Exception:  # only words ride on it: the refusal stands either way
            return ""
        return await workflow_reads.behind_its_record(handle, records)

    def _handle(self, refund_id: str) -> WorkflowHandle[Any, Any]:
        return self.temporal.get_workflow_handle(refund_id)

    async def _update(self, refund_id: str, update: Any, arg: Any) -> StatusView:
        handle = self._handle(refund_id)
        if self._signer is not None:  # vouch for the person the caller verified
            arg = arg.model_copy(update={"attestation": self._signer.attest(refund_id, arg)})
        try:
            result: StatusView = await handle.execute_update(
                update, arg, rpc_timeout=UPDATE_TIMEOUT
            )
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise RefundflowError(
                f"no answer from refund {refund_id} within {UPDATE_TIMEOUT.seconds} s; the action"
                f" may still be taken (`refundflow status {refund_id}` will say): is a"
                " worker running (`refundflow worker`, or `refundflow dev`"
                f" {dev_stack_place()})?"
            ) from None
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            behind = await self._behind_its_record(handle)
            raise RefundActionRefused(f"refused: {message}{behind}") from None
        except RPCError as err:
            raise await self._why_not(refund_id, rpc_error(refund_id, err)) from None
        return await self._as_recorded(refund_id, result) or result

    async def _why_not(self, refund_id: str, error: RefundflowError) -> RefundflowError:
        """ "Closed" for a refund whose record still says it is open means Temporal ended its
        workflow (terminated in the Web UI, timed out): say that, as its status does."""
        if not isinstance(error, RefundActionRefused):
            return error
        closed = await self._closed_on_record(refund_id)
        if closed is not None:  # just closed (also a Reset's run that ended): say how
            why = closed_because(closed)
            return RefundClosed(
                f"refused: refund {refund_id} is closed, {closed.state.value}"
                + (f" ({why})" if why else "")
                + ": nothing is left to do on it",
                cancelled=closed.state is RefundState.CANCELLED,
            )
        try:
            ended = await workflow_reads.abnormal_end(self._handle(refund_id))
        except RPCError:
            return error
        if ended is None:
            return error
        escalated = bool(self._database_url) and await left_to_a_person(self._store(), refund_id)
        return RefundStopped(
            f"refused: refund {refund_id} cannot move: Temporal ended its workflow ({ended}); "
            + (ESCALATED_WHEN_ENDED if escalated else RECONCILIATION_CLOSES)
        )


def _goes_on_from(recorded: StatusView, answer: StatusView) -> bool:
    """Whether `recorded` is `answer` or `answer` gone further: it holds the answer's last
    entry (and perhaps entries after it). Not another run's (a Reset's abandoned run stays in
    the projection until the new run records), nor an older record of this one."""
    if not answer.timeline or not recorded.timeline:
        return False
    last = _mark(answer.timeline[-1])
    # At its own last entry too: the record then holds the whole trail, a reset run's
    # entries after another run's with the other's in their places and the audit's times
    # (a trial's answer left entries 4 and 5 out). By its time as well as its words: a
    # reset run's entry the audit took as the same (its approval in the same words) is not
    # this run's, whose later entries may differ (a review).
    return recorded.timeline[-1].seq >= last[0] and any(_mark(e) == last for e in recorded.timeline)


def _contradicts(recorded: StatusView, answer: StatusView) -> bool:
    """Whether the record holds another entry where the answer's last one is, and not the
    answer's own further on (a run that follows another run's same-state entries writes its
    own after them)."""
    if not answer.timeline:
        return False
    last = answer.timeline[-1]
    at_its_place = [e for e in recorded.timeline if e.seq == last.seq]
    if not at_its_place or _entry(at_its_place[0]) == _entry(last):
        return False
    return not any(_entry(e) == _entry(last) for e in recorded.timeline if e.seq > last.seq)


def _entry(entry: TimelineEntry) -> tuple[str, ...]:
    """What tells two entries apart, as the audit store does (an approval's words too)."""
    return same_entry(entry.event, entry.state.value, entry.actor, entry.reason)


def _mark(entry: TimelineEntry) -> tuple[int, str, str, datetime]:
    return entry.seq, entry.event, entry.actor, entry.at
