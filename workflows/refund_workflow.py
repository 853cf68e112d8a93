"""RefundWorkflow: one durable workflow per refund, the single source of truth for it.

Lifecycle (see workflows.states for the table): pending_review -> approved -> refunding ->
completed, or cancelled. Reviewer and customer actions are Updates whose validators consult
the transition table, so a refused action never reaches history. Escalation timers come from
the pinned policy. Every transition is appended to the timeline and written to the audit store
by an idempotent activity, in order, before the workflow waits or calls out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import names, wording
    from workflows.models import (
        ApproveInput,
        CancelInput,
        IssueRefundInput,
        ItemReceivedInput,
        ProviderRefundResult,
        RecordTransitionsInput,
        RefundWorkflowInput,
        RejectInput,
        RestockInput,
        RestockResult,
        StatusProjection,
        StatusQuery,
        StatusView,
        TimelineEntry,
    )
    from workflows.money import format_minor
    from workflows.policy import evaluate, parse_policy
    from workflows.states import (
        TERMINAL_STATES,
        Awaiting,
        CancelReason,
        RefundEvent,
        RefundState,
        check,
    )

# Writing the audit trail must eventually succeed: retry for as long as it takes.
_STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)
)
# The provider call is safe to retry because every attempt carries the same idempotency key.
_PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[names.PROVIDER_REFUSED_ERROR],
)
# Typical card settlement: the money is visible within 10 days of the provider accepting it.
_SETTLEMENT_TIME = timedelta(days=10)
# While an operator is needed, remind (re-publish the escalation) this often: never timer-less.
_OPERATOR_REMINDER = timedelta(hours=24)
_MAX_ESCALATION = 2


@workflow.defn
class RefundWorkflow:
    @workflow.init
    def __init__(self, inp: RefundWorkflowInput) -> None:
        self._inp = inp
        self._policy = parse_policy(inp.policy.document)
        self._requested_at = workflow.now()
        self._decision = evaluate(
            self._policy, inp.order, inp.resolved, inp.request.reason_code, self._requested_at
        )
        self._state = RefundState.PENDING_REVIEW
        self._cancel_reason: CancelReason | None = None
        self._awaiting = Awaiting.NOTHING
        self._escalation = 0
        self._amount = inp.resolved.amount
        self._timeline: list[TimelineEntry] = []
        self._recorded = 0
        self._item_received = False
        self._refunding_since: datetime | None = None
        self._provider_refund_id: str | None = None
        self._operator_note: str | None = None
        # What the client set at start (free); later changes are upserted before each wait.
        self._published = (RefundState.PENDING_REVIEW.value, 0, Awaiting.NOTHING.value)
        self._append(
            event="requested",
            from_state=None,
            actor=inp.request.requested_by,
            source=inp.request.channel,
            reason=f"{inp.request.reason_code}: refund of {self._money()} requested",
        )

    # --- run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: RefundWorkflowInput) -> StatusView:
        if not self._decision.eligible:
            reasons = "; ".join(o.message for o in self._decision.failed)
            self._apply(RefundEvent.DECLINE_INELIGIBLE, "policy", "policy", reasons)
        elif self._decision.auto_approve:
            self._apply(RefundEvent.AUTO_APPROVE, "policy", "policy", self._auto_reason())
        else:
            self._set_awaiting(Awaiting.REVIEWER)
            await self._await_review()

        if self._state is RefundState.APPROVED:
            await self._await_trigger()
        if self._state is RefundState.REFUNDING:
            await self._pay_refund()

        await self._flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush()
        return self._status()

    async def _await_review(self) -> None:
        """Wait for a reviewer; escalate on the policy's timers; expire at the end."""
        while self._state is RefundState.PENDING_REVIEW:
            await self._flush()
            if self._escalation == 0:
                deadline, summary = self._policy.review_sla, "review SLA"
            elif self._escalation == 1:
                deadline = self._policy.review_sla + self._policy.second_escalation
                summary = "second escalation"
            else:
                deadline, summary = self._policy.review_expiry, "review expiry"
            remaining = deadline - (workflow.now() - self._requested_at)
            if remaining > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: self._state is not RefundState.PENDING_REVIEW,
                        timeout=remaining,
                        timeout_summary=summary,
                    )
                except TimeoutError:
                    pass
            if self._state is not RefundState.PENDING_REVIEW:
                return
            if self._escalation < _MAX_ESCALATION:
                self._escalate("timer", f"no review decision within {_hours(deadline)}")
            else:
                self._apply(
                    RefundEvent.EXPIRE, "timer", "timer", f"no decision within {_hours(deadline)}"
                )

    async def _await_trigger(self) -> None:
        if self._policy.refund.trigger == "on_approval":
            self._apply(RefundEvent.START_REFUND, "policy", "workflow", "refund on approval")
            return
        self._set_awaiting(Awaiting.CUSTOMER)
        await self._flush()
        window = timedelta(days=self._policy.refund.item_return_window_days)
        try:
            await workflow.wait_condition(
                lambda: self._state is not RefundState.APPROVED,
                timeout=window,
                timeout_summary="item return window",
            )
        except TimeoutError:
            self._apply(
                RefundEvent.RETURN_WINDOW_ELAPSED,
                "timer",
                "timer",
                f"item not received within {window.days} days",
            )

    async def _pay_refund(self) -> None:
        self._refunding_since = workflow.now()
        self._set_awaiting(Awaiting.PAYMENT_PROVIDER)
        await self._flush()
        refund_id = self._inp.refund_id
        try:
            result = await workflow.execute_activity(
                names.ACTIVITY_ISSUE_PROVIDER_REFUND,
                IssueRefundInput(
                    refund_id=refund_id,
                    order_id=self._inp.order.order_id,
                    payment_reference=self._inp.order.payment_reference,
                    amount=self._amount,
                    currency=self._inp.resolved.currency,
                    idempotency_key=f"{refund_id}:refund",
                ),
                result_type=ProviderRefundResult,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_PROVIDER_RETRY,
                summary="provider refund",
            )
        except ActivityError as err:
            await self._wait_for_operator(err)
            return
        self._provider_refund_id = result.provider_refund_id
        if self._item_received:
            await self._restock()
        self._apply(
            RefundEvent.PROVIDER_CONFIRMED,
            "payment-provider",
            "payment",
            f"provider refund {result.provider_refund_id} {result.status}",
        )

    async def _restock(self) -> None:
        for line in self._inp.resolved.lines:
            await workflow.execute_activity(
                names.ACTIVITY_RESTOCK_LINE,
                RestockInput(
                    refund_id=self._inp.refund_id,
                    sku=line.sku,
                    quantity=line.quantity,
                    idempotency_key=f"{self._inp.refund_id}:restock:{line.sku}",
                ),
                result_type=RestockResult,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_STORE_RETRY,
                summary=f"restock {line.sku}",
            )

    async def _wait_for_operator(self, err: ActivityError) -> None:
        """The provider refused for good: a person must look. Escalate and keep a timer."""
        cause = err.cause
        self._operator_note = cause.message if isinstance(cause, ApplicationError) else str(err)
        self._set_awaiting(Awaiting.OPERATOR)
        self._escalate("payment-provider", f"provider refused the refund: {self._operator_note}")
        while True:
            await self._flush()
            try:
                await workflow.wait_condition(
                    lambda: False, timeout=_OPERATOR_REMINDER, timeout_summary="operator reminder"
                )
            except TimeoutError:
                self._escalate("timer", "still waiting for an operator")

    # --- updates ------------------------------------------------------------------------

    @workflow.update
    def approve(self, inp: ApproveInput) -> StatusView:
        if inp.amount is not None:
            self._amount = inp.amount
        reason = f"approved {self._money()}"
        if inp.amount is not None and inp.amount < self._inp.resolved.amount:
            reason += f" (requested {format_minor(self._inp.resolved.amount, self._currency)})"
        self._apply(RefundEvent.APPROVE, inp.reviewer, inp.source, reason)
        return self._status()

    @approve.validator
    def _validate_approve(self, inp: ApproveInput) -> None:
        check(self._state, RefundEvent.APPROVE)
        if inp.amount is not None and inp.amount > self._inp.resolved.amount:
            raise ValueError(
                f"cannot approve {format_minor(inp.amount, self._currency)}: more than the"
                f" {format_minor(self._inp.resolved.amount, self._currency)} requested"
            )

    @workflow.update
    def reject(self, inp: RejectInput) -> StatusView:
        self._apply(RefundEvent.REJECT, inp.reviewer, inp.source, inp.reason)
        return self._status()

    @reject.validator
    def _validate_reject(self, inp: RejectInput) -> None:
        check(self._state, RefundEvent.REJECT)

    @workflow.update
    def cancel(self, inp: CancelInput) -> StatusView:
        self._apply(RefundEvent.WITHDRAW, inp.actor, inp.source, inp.reason)
        return self._status()

    @cancel.validator
    def _validate_cancel(self, inp: CancelInput) -> None:
        if self._state is RefundState.REFUNDING:
            raise ValueError("cannot cancel: the refund has been sent to the payment provider")
        check(self._state, RefundEvent.WITHDRAW)

    @workflow.update
    def item_received(self, inp: ItemReceivedInput) -> StatusView:
        self._item_received = True
        self._apply(RefundEvent.START_REFUND, inp.actor, inp.source, "returned item received")
        return self._status()

    @item_received.validator
    def _validate_item_received(self, inp: ItemReceivedInput) -> None:
        if self._policy.refund.trigger != "on_item_received":
            raise ValueError(
                f"policy {self._inp.policy.name} v{self._inp.policy.version} refunds on approval:"
                " no returned item is expected"
            )
        if self._state is not RefundState.APPROVED:
            raise ValueError(
                f"the refund is {self._state.value}: an item can be received only once approved"
            )
        check(self._state, RefundEvent.START_REFUND)

    @workflow.query
    def status(self, query: StatusQuery) -> StatusView:
        view = self._status()
        return view if query.include_timeline else view.model_copy(update={"timeline": []})

    # --- state changes ------------------------------------------------------------------

    def _apply(self, event: RefundEvent, actor: str, source: str, reason: str) -> None:
        transition = check(self._state, event)
        previous = self._state
        self._state = transition.to
        self._cancel_reason = transition.cancel_reason
        if self._state in TERMINAL_STATES or self._state is RefundState.APPROVED:
            self._awaiting = Awaiting.NOTHING
        self._append(event.value, previous, actor, source, reason)

    def _escalate(self, actor: str, reason: str) -> None:
        self._escalation = min(self._escalation + 1, _MAX_ESCALATION)
        if self._awaiting is Awaiting.OPERATOR:
            self._escalation = _MAX_ESCALATION
        self._append(
            "escalated", self._state, actor, "timer", f"level {self._escalation}: {reason}"
        )

    def _set_awaiting(self, awaiting: Awaiting) -> None:
        self._awaiting = awaiting

    def _append(
        self, event: str, from_state: RefundState | None, actor: str, source: str, reason: str
    ) -> None:
        self._timeline.append(
            TimelineEntry(
                seq=len(self._timeline) + 1,
                event=event,
                from_state=from_state,
                state=self._state,
                at=workflow.now(),
                actor=actor,
                source=source,
                reason=reason,
                escalation_level=self._escalation,
            )
        )

    def _publish(self) -> None:
        """Bring search attributes and the Web UI's current details in step with the state.

        Called before every wait and at the end rather than on every change, so one workflow
        task that moves through several states costs one upsert, not one per state.
        """
        workflow.set_current_details(self._details())
        current = (self._state.value, self._escalation, self._awaiting.value)
        if current == self._published:
            return
        workflow.upsert_search_attributes(
            [
                names.SA_REFUND_STATE.value_set(self._state.value),
                names.SA_ESCALATION_LEVEL.value_set(self._escalation),
                names.SA_AWAITING.value_set(self._awaiting.value),
            ]
        )
        self._published = current

    async def _flush(self) -> None:
        """Publish the state, then write unrecorded timeline entries to the audit store.

        The store ignores entries it already has (by refund id and sequence), so a retried
        activity never records a transition twice.
        """
        self._publish()
        upto = len(self._timeline)
        if self._recorded >= upto:
            return
        await workflow.execute_activity(
            names.ACTIVITY_RECORD_TRANSITIONS,
            RecordTransitionsInput(
                refund_id=self._inp.refund_id,
                entries=self._timeline[self._recorded : upto],
                projection=self._projection(),
            ),
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=_STORE_RETRY,
            summary="audit",
        )
        self._recorded = max(self._recorded, upto)

    # --- views --------------------------------------------------------------------------

    @property
    def _currency(self) -> str:
        return self._inp.resolved.currency

    def _money(self) -> str:
        return format_minor(self._amount, self._currency)

    def _auto_reason(self) -> str:
        limit = self._policy.approval.auto_approve_limit
        within = format_minor(limit, self._currency)
        return f"auto-approved: {self._money()} is within the limit of {within}"

    def _eta(self) -> datetime | None:
        if self._state is RefundState.PENDING_REVIEW:
            return self._requested_at + self._policy.review_sla
        if self._state is RefundState.APPROVED and self._awaiting is Awaiting.CUSTOMER:
            return None
        if self._state is RefundState.REFUNDING and self._refunding_since is not None:
            return self._refunding_since + _SETTLEMENT_TIME
        return None

    def _status(self) -> StatusView:
        notes = [o.message for o in self._decision.outcomes]
        if self._operator_note:
            notes.append(f"Payment provider: {self._operator_note}")
        return StatusView(
            refund_id=self._inp.refund_id,
            refund_key=self._inp.request.refund_key,
            order_id=self._inp.order.order_id,
            state=self._state,
            cancel_reason=self._cancel_reason,
            amount=self._amount,
            requested_amount=self._inp.resolved.amount,
            currency=self._currency,
            awaiting=self._awaiting,
            escalation_level=self._escalation,
            policy_version=self._inp.policy.label,
            reason_code=self._inp.request.reason_code,
            channel=self._inp.request.channel,
            evidence_required=self._decision.evidence_required,
            provider_refund_id=self._provider_refund_id,
            timeline=list(self._timeline),
            next_step=wording.next_step(self._state, self._awaiting),
            eta=self._eta(),
            message=wording.message(
                self._state, self._cancel_reason, self._amount, self._currency, self._escalation
            ),
            policy_notes=notes,
        )

    def _projection(self) -> StatusProjection:
        return StatusProjection(
            refund_id=self._inp.refund_id,
            refund_key=self._inp.request.refund_key,
            order_id=self._inp.order.order_id,
            state=self._state,
            amount=self._amount,
            currency=self._currency,
            awaiting=self._awaiting,
            escalation_level=self._escalation,
            policy_version=self._inp.policy.label,
            reason_code=self._inp.request.reason_code,
            channel=self._inp.request.channel,
            requested_at=self._requested_at,
            updated_at=workflow.now(),
        )

    def _details(self) -> str:
        lines = [
            f"**{self._state.value}** · {self._money()} · order {self._inp.order.order_id}",
            f"awaiting: {self._awaiting.value} · escalation level {self._escalation}",
            f"next: {wording.next_step(self._state, self._awaiting)}",
            f"policy: {self._inp.policy.label}",
        ]
        return "\n\n".join(lines)


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} h"
