"""RefundWorkflow: one durable workflow per refund, the single source of truth for it.

Lifecycle (see workflows.states for the table): pending_review -> approved -> refunding ->
completed, or cancelled. Reviewer and customer actions are Updates whose validators consult
the transition table, so a refused action never reaches history. Escalation timers come from
the pinned policy. Every transition is appended to the timeline and written to the audit store
by an idempotent activity, in order, before the workflow waits or calls out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from workflows import names, wording
    from workflows.models import (
        ApproveInput,
        CancelInput,
        CheckRefundInput,
        FindProviderRefundsInput,
        IssueRefundInput,
        ItemReceivedInput,
        MessageFacts,
        Notice,
        OperatorCancelInput,
        OperatorRetryInput,
        ProviderRefundResult,
        ProviderRefunds,
        ProviderSettlement,
        RecordTransitionsInput,
        RefundWorkflowInput,
        RejectInput,
        ReserveInput,
        ReserveResult,
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
_PROVIDER_CALL_TIMEOUT = timedelta(seconds=15)
# How long the in-process (local activity) provider call may take, retries included, before
# the refund moves to the durable, timer-watched activity path.
_FAST_PATH_BUDGET = timedelta(seconds=10)
_INVENTORY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=[names.INVENTORY_REFUSED_ERROR],
)
_PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=[names.PROVIDER_REFUSED_ERROR],
)
# Typical card settlement: the money is visible within 10 days of the provider accepting it.
_SETTLEMENT_TIME = timedelta(days=10)
# While an operator is needed, remind (re-publish the escalation) this often: never timer-less.
_OPERATOR_REMINDER = timedelta(hours=24)
# Polling a pending provider refund when no webhook arrives: 30 s, doubling, at most hourly.
_FIRST_POLL = timedelta(seconds=30)
_LAST_POLL = timedelta(hours=1)
_MAX_ESCALATION = 2
T = TypeVar("T")


@workflow.defn
class RefundWorkflow:
    @workflow.init
    def __init__(self, inp: RefundWorkflowInput) -> None:
        self._inp = inp
        self._policy = parse_policy(inp.policy.document)
        self._requested_at = workflow.now()
        self._decision = evaluate(
            self._policy,
            inp.order,
            inp.resolved,
            inp.request.reason_code,
            inp.asked_at or self._requested_at,
        )
        self._state = RefundState.PENDING_REVIEW
        self._cancel_reason: CancelReason | None = None
        self._awaiting = Awaiting.NOTHING
        self._escalation = 0
        # Fees (policy v2 on) are kept back from the start. Every policy pinned before fees
        # existed evaluates to a fee of 0, so refunds in flight keep their amount.
        self._max_amount = inp.resolved.amount - self._decision.fee
        self._amount = self._max_amount
        self._timeline: list[TimelineEntry] = []
        self._notices: list[Notice] = []
        self._recorded = 0
        self._item_received = False
        self._refunding_since: datetime | None = None
        self._provider_refund_id: str | None = None
        self._operator_note: str | None = None
        self._operator_action: str | None = None
        self._payment_attempt = 1
        self._reserved = False
        self._local_fast_path = False
        self._tried_fast_path = False
        self._settlements: dict[str, ProviderSettlement] = {}
        self._settled_by: dict[str, str] = {}
        # What the client set at start (free); later changes are upserted before each wait.
        self._published = (RefundState.PENDING_REVIEW.value, 0, Awaiting.NOTHING.value)
        self._append(
            event="requested",
            from_state=None,
            actor=inp.request.requested_by,
            source=inp.request.channel,
            reason=f"{inp.request.reason_code}: refund of {self._money()} requested",
        )
        self._notice("requested")

    # --- run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: RefundWorkflowInput) -> StatusView:
        self._local_fast_path = workflow.patched("local-fast-path")
        if not self._decision.eligible:
            reasons = "; ".join(o.message for o in self._decision.failed)
            self._apply(RefundEvent.DECLINE_INELIGIBLE, "policy", "policy", reasons)
        elif not await self._reserve() or self._state is not RefundState.PENDING_REVIEW:
            pass  # declined (not enough left to refund), or withdrawn while reserving
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

    async def _reserve(self) -> bool:
        """Hold the amount against the order's capture (invariant 2) before any approval."""
        if not workflow.patched("reserve-before-approval"):
            self._reserved = True  # refunds started before reservations existed
            return True
        result = await self._store_call(
            names.ACTIVITY_RESERVE_REFUND,
            ReserveInput(
                refund_id=self._inp.refund_id,
                order_id=self._inp.order.order_id,
                amount=self._amount,
                currency=self._currency,
                captured_amount=self._inp.order.captured_amount,
            ),
            ReserveResult,
            "reserve",
        )
        self._reserved = result.reserved
        if result.reserved or self._state is not RefundState.PENDING_REVIEW:
            return result.reserved
        self._apply(
            RefundEvent.DECLINE_OVER_REFUND,
            "refundflow",
            "refundflow",
            f"only {format_minor(max(result.remaining, 0), self._currency)} of order"
            f" {self._inp.order.order_id} is still refundable",
        )
        return False

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
            if self._state is not RefundState.APPROVED:
                return  # the item arrived (or the customer withdrew) as the window closed
            self._apply(
                RefundEvent.RETURN_WINDOW_ELAPSED,
                "timer",
                "timer",
                f"item not received within {window.days} days",
            )

    async def _pay_refund(self) -> None:
        """Have the provider pay, exactly once, whatever fails; a person decides on refusal."""
        self._refunding_since = workflow.now()
        while True:
            self._set_awaiting(Awaiting.PAYMENT_PROVIDER)
            # On the fast path the whole payment usually fits in this workflow task: publish
            # search attributes once at the end instead of before and after.
            await self._flush(publish=not self._fast_path_allowed())
            outcome = await self._issue_provider_refund()
            if outcome is not None and outcome.status == "pending":
                outcome = await self._await_settlement(outcome)
            if outcome is not None and outcome.status == "succeeded":
                self._provider_refund_id = outcome.provider_refund_id
                break
            if outcome is not None:
                self._operator_note = f"refund {outcome.provider_refund_id} failed: " + (
                    outcome.failure_code or "no reason given"
                )
            decision = await self._wait_for_operator()
            if decision == "cancel":
                return
            if decision == "paid":
                self._provider_refund_id = self._paid_elsewhere()
                break
            self._payment_attempt += 1
        how = self._settled_by.get(self._provider_refund_id or "", "provider answer")
        if self._item_received:
            if workflow.patched("record-payment-before-restock"):
                # The money has moved: make that durable in the audit before the warehouse.
                self._append(
                    "provider_paid",
                    self._state,
                    "payment-provider",
                    "payment",
                    f"provider refund {self._provider_refund_id} succeeded ({how})",
                )
                await self._flush()
            await self._restock()
        self._apply(
            RefundEvent.PROVIDER_CONFIRMED,
            "payment-provider",
            "payment",
            f"provider refund {self._provider_refund_id} succeeded ({how})",
        )

    async def _issue_provider_refund(self) -> ProviderRefundResult | None:
        """One payment attempt; None if the provider refused for good (reason noted)."""
        refund_id = self._inp.refund_id
        key = f"{refund_id}:refund"
        if self._payment_attempt > 1:
            key += f":{self._payment_attempt}"
        request = IssueRefundInput(
            refund_id=refund_id,
            order_id=self._inp.order.order_id,
            payment_reference=self._inp.order.payment_reference,
            amount=self._amount,
            currency=self._currency,
            idempotency_key=key,
            payment_attempt=self._payment_attempt,
            # After a fast-path try, the provider may have committed: look before sending.
            look_up_first=self._tried_fast_path,
        )
        if self._fast_path_allowed():
            self._tried_fast_path = True
            try:
                return await workflow.execute_local_activity(
                    names.ACTIVITY_ISSUE_PROVIDER_REFUND,
                    # A local activity re-runs from attempt 1 if the worker dies: always look.
                    request.model_copy(update={"look_up_first": True}),
                    result_type=ProviderRefundResult,
                    start_to_close_timeout=_PROVIDER_CALL_TIMEOUT,
                    schedule_to_close_timeout=_FAST_PATH_BUDGET,
                    retry_policy=_PROVIDER_RETRY,
                    summary="provider refund (fast path)",
                )
            except (ActivityError, ApplicationError, ActivityTimeout) as err:
                # A local activity's failure arrives as the activity's own ApplicationError
                # (or a timeout), a regular activity's as an ActivityError wrapping it.
                if _provider_refused(err):
                    self._operator_note = _failure_text(err)
                    return None
                # Slow or failing provider: continue on the durable path, timer-watched.
            request = request.model_copy(update={"look_up_first": True})
        self._publish()  # the wait may be long: let operators see where the refund is
        call = workflow.start_activity(
            names.ACTIVITY_ISSUE_PROVIDER_REFUND,
            request,
            result_type=ProviderRefundResult,
            # The adapter gives up on one HTTP call after 10 s; a worker that dies mid-call is
            # noticed after this long and the call retried (looking up first).
            start_to_close_timeout=_PROVIDER_CALL_TIMEOUT,
            retry_policy=_PROVIDER_RETRY,
            summary="provider refund",
        )
        # Transient failures are retried for as long as it takes; meanwhile the refund SLA
        # timer still escalates, so a provider outage never leaves a refund unwatched.
        if workflow.patched("watch-provider-call"):
            await self._escalating_wait(call.done, "provider not answering")
        try:
            return await call
        except ActivityError as err:
            self._operator_note = _failure_text(err)
            return None

    def _fast_path_allowed(self) -> bool:
        """First payment attempt of a refund started with the fast path: try it in-process."""
        return self._local_fast_path and self._payment_attempt == 1 and not self._tried_fast_path

    async def _await_settlement(self, pending: ProviderRefundResult) -> ProviderRefundResult:
        """The provider answered `pending`: wait for a webhook (signal), poll as a fallback."""
        refund_key = pending.provider_refund_id
        self._append(
            "provider_pending",
            self._state,
            "payment-provider",
            "payment",
            f"provider refund {refund_key} pending settlement",
        )
        await self._flush()
        poll_every = _FIRST_POLL
        while refund_key not in self._settlements:
            try:
                await workflow.wait_condition(
                    lambda: refund_key in self._settlements,
                    timeout=poll_every,
                    timeout_summary="poll provider",
                )
            except TimeoutError:
                polled = await workflow.execute_activity(
                    names.ACTIVITY_CHECK_PROVIDER_REFUND,
                    CheckRefundInput(refund_id=self._inp.refund_id, provider_refund_id=refund_key),
                    result_type=ProviderRefundResult,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=_STORE_RETRY,
                    summary="poll provider",
                )
                if polled.status != "pending":
                    self.provider_settled(
                        ProviderSettlement(
                            provider_refund_id=refund_key,
                            status=polled.status,
                            failure_code=polled.failure_code,
                            source="poll",
                        )
                    )
                poll_every = min(poll_every * 2, _LAST_POLL)
                self._escalate_if_stalled()
                await self._flush()
        settled = self._settlements[refund_key]
        return pending.model_copy(
            update={"status": settled.status, "failure_code": settled.failure_code}
        )

    async def _escalating_wait(self, done: Callable[[], bool], what: str) -> None:
        while not done():
            try:
                await workflow.wait_condition(
                    done, timeout=self._policy.refund_sla, timeout_summary="refund SLA"
                )
            except TimeoutError:
                self._escalate("timer", f"{what} within {_hours(self._policy.refund_sla)}")
                await self._flush()

    def _escalate_if_stalled(self) -> None:
        assert self._refunding_since is not None
        waited = workflow.now() - self._refunding_since
        level_due = min(_MAX_ESCALATION, int(waited / self._policy.refund_sla))
        if level_due > self._escalation:
            self._escalate("timer", f"refund not settled after {_hours(waited)}")

    async def _restock(self) -> None:
        """Return each refunded line to stock once (keyed per line); a refusal does not undo
        the refund: it is recorded and escalated for the warehouse to sort out."""
        for line in self._inp.resolved.lines:
            try:
                await self._restock_line(line.sku, line.quantity)
            except ActivityError as err:
                cause = err.cause.message if isinstance(err.cause, ApplicationError) else str(err)
                self._escalate("inventory", f"restock of {line.sku} refused: {cause}", "inventory")

    async def _restock_line(self, sku: str, quantity: int) -> None:
        await workflow.execute_activity(
            names.ACTIVITY_RESTOCK_LINE,
            RestockInput(
                refund_id=self._inp.refund_id,
                sku=sku,
                quantity=quantity,
                idempotency_key=f"{self._inp.refund_id}:restock:{sku}",
            ),
            result_type=RestockResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_INVENTORY_RETRY,
            summary=f"restock {sku}",
        )

    async def _wait_for_operator(self) -> str:
        """The provider refused or failed for good: a person must look. Returns their choice."""
        self._set_awaiting(Awaiting.OPERATOR)
        self._escalation = _MAX_ESCALATION
        self._append(
            "escalated",
            self._state,
            "payment-provider",
            "payment",
            f"level {self._escalation}: payment failed: {self._operator_note}",
        )
        self._operator_action = None
        # Refunds that started waiting before this exit existed wait for the operator only.
        paid_exit = workflow.patched("operator-paid-exit")

        def paid() -> bool:
            return paid_exit and self._paid_elsewhere() is not None

        while self._operator_action is None and not paid():
            await self._flush()
            try:
                await workflow.wait_condition(
                    lambda: self._operator_action is not None or paid(),
                    timeout=_OPERATOR_REMINDER,
                    timeout_summary="operator reminder",
                )
            except TimeoutError:
                self._escalate("timer", "still waiting for an operator")
        if self._operator_action is None:
            # Reconciliation found the provider paid after all: no operator needed any more.
            self._operator_note = None
            self._set_awaiting(Awaiting.PAYMENT_PROVIDER)
            return "paid"
        action, self._operator_action = self._operator_action, None
        if action == "retry":
            self._operator_note = None
        return action

    def _paid_elsewhere(self) -> str | None:
        """A provider refund for this refund that settled as succeeded, learned by signal."""
        for provider_refund_id, settlement in self._settlements.items():
            if settlement.status == "succeeded":
                return provider_refund_id
        return None

    # --- signals ------------------------------------------------------------------------

    @workflow.signal(name=names.SIGNAL_PROVIDER_SETTLED)
    def provider_settled(self, settlement: ProviderSettlement) -> None:
        """The provider's final word on a pending refund. Repeats are ignored (first wins),
        and it may arrive before the provider call that created the refund returns."""
        if settlement.provider_refund_id not in self._settlements:
            self._settlements[settlement.provider_refund_id] = settlement
            self._settled_by[settlement.provider_refund_id] = f"settled via {settlement.source}"

    # --- updates ------------------------------------------------------------------------

    @workflow.update
    def approve(self, inp: ApproveInput) -> StatusView:
        if inp.amount is not None:
            self._amount = inp.amount
        reason = f"approved {self._money()}"
        if inp.amount is not None and inp.amount < self._max_amount:
            reason += f" (requested {format_minor(self._max_amount, self._currency)})"
        if self._policy.authority:
            reason += f" as {inp.role}"
        self._apply(RefundEvent.APPROVE, inp.reviewer, inp.source, reason)
        return self._status()

    @approve.validator
    def _validate_approve(self, inp: ApproveInput) -> None:
        check(self._state, RefundEvent.APPROVE)
        if not self._reserved:
            raise ValueError(
                "the refund is still being checked against the order; try again in a moment"
            )
        if inp.amount is not None and inp.amount > self._max_amount:
            raise ValueError(
                f"cannot approve {format_minor(inp.amount, self._currency)}: more than the"
                f" {format_minor(self._max_amount, self._currency)} refundable for this request"
            )
        self._check_authority(inp)

    def _check_authority(self, inp: ApproveInput) -> None:
        """The pinned policy's approval limits by role (none in policies without them)."""
        authority = self._policy.authority
        if not authority:
            return
        amount = inp.amount if inp.amount is not None else self._amount
        limit = authority.get(inp.role)
        if limit is None:
            raise ValueError(
                f"unknown role {inp.role!r}: policy {self._inp.policy.name}"
                f" v{self._inp.policy.version} knows {', '.join(sorted(authority))}"
            )
        if amount > limit:
            needed = self._policy.approver_for(amount)
            raise ValueError(
                f"{inp.reviewer} ({inp.role}) may approve up to"
                f" {format_minor(limit, self._currency)}; approving"
                f" {format_minor(amount, self._currency)} needs "
                + (f"the {needed} role" if needed else "a role the policy does not have")
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

    @workflow.update
    def operator_retry(self, inp: OperatorRetryInput) -> StatusView:
        self._append("operator_retry", self._state, inp.operator, inp.source, "retry the refund")
        self._operator_action = "retry"
        return self._status()

    @operator_retry.validator
    def _validate_operator_retry(self, inp: OperatorRetryInput) -> None:
        self._require_operator_needed("retry")

    @workflow.update
    async def operator_cancel(self, inp: OperatorCancelInput) -> StatusView:
        # Prove with the provider that no money moved before the refund may be cancelled.
        found = await workflow.execute_activity(
            names.ACTIVITY_FIND_PROVIDER_REFUNDS,
            FindProviderRefundsInput(refund_id=self._inp.refund_id),
            result_type=ProviderRefunds,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_STORE_RETRY,
            summary="prove no money moved",
        )
        live = [r for r in found.refunds if r.status != "failed"]
        if live:
            raise ApplicationError(
                f"cannot cancel: provider refund {live[0].provider_refund_id} is"
                f" {live[0].status}, so money may have moved; retry instead"
            )
        try:  # another operator may have acted while we asked the provider
            self._require_operator_needed("cancel")
        except ValueError as err:
            raise ApplicationError(str(err)) from None
        self._apply(RefundEvent.OPERATOR_CANCEL, inp.operator, inp.source, inp.reason)
        self._operator_action = "cancel"
        return self._status()

    @operator_cancel.validator
    def _validate_operator_cancel(self, inp: OperatorCancelInput) -> None:
        self._require_operator_needed("cancel")
        check(self._state, RefundEvent.OPERATOR_CANCEL)

    def _require_operator_needed(self, action: str) -> None:
        if self._awaiting is not Awaiting.OPERATOR or self._operator_action is not None:
            raise ValueError(
                f"cannot {action}: the refund is {self._state.value}, awaiting"
                f" {self._awaiting.value}; operators act only after a payment failure"
            )

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
        self._notice(event.value)

    def _notice(self, event: str) -> None:
        """Tell the customer and subscribers about the state change just appended (outbox)."""
        self._notices.append(
            Notice(seq=len(self._timeline), event=event, at=workflow.now(), facts=self._facts())
        )

    def _escalate(self, actor: str, reason: str, source: str = "timer") -> None:
        self._escalation = min(self._escalation + 1, _MAX_ESCALATION)
        if self._awaiting is Awaiting.OPERATOR:
            self._escalation = _MAX_ESCALATION
        self._append("escalated", self._state, actor, source, f"level {self._escalation}: {reason}")

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

    async def _flush(self, publish: bool = True) -> None:
        """Publish the state, then write unrecorded timeline entries to the audit store.

        The store ignores entries it already has (by refund id and sequence), so a retried
        activity never records a transition twice.
        """
        if publish:
            self._publish()
        upto = len(self._timeline)
        if self._recorded >= upto:
            return
        await self._store_call(
            names.ACTIVITY_RECORD_TRANSITIONS,
            RecordTransitionsInput(
                refund_id=self._inp.refund_id,
                entries=self._timeline[self._recorded : upto],
                projection=self._projection(),
                notices=[n for n in self._notices if self._recorded < n.seq <= upto],
            ),
            int,
            "audit",
        )
        self._recorded = max(self._recorded, upto)
        # Written to the outbox with their entries: no need to keep them in memory.
        self._notices = [n for n in self._notices if n.seq > self._recorded]

    async def _store_call(self, name: str, arg: Any, result_type: type[T], summary: str) -> T:
        """Our own Postgres, idempotent by key: short enough to run as a local activity
        (no round trip through the server; all local activities of one workflow task count
        as one billable action). Refunds started before that change keep regular ones."""
        execute = (
            workflow.execute_local_activity if self._local_fast_path else workflow.execute_activity
        )
        return await execute(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=_STORE_RETRY,
            summary=summary,
        )

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

    def _eta(self) -> tuple[datetime | None, datetime | None, str | None]:
        """(earliest, latest, kind): a review decision is due by the next SLA deadline; the
        money arrives within the payment rail's settlement time after it is sent."""
        if self._state is RefundState.PENDING_REVIEW:
            # The next deadline: review SLA, then the second escalation, then expiry.
            deadlines = [
                self._policy.review_sla,
                self._policy.review_sla + self._policy.second_escalation,
                self._policy.review_expiry,
            ]
            due = self._requested_at + deadlines[min(self._escalation, 2)]
            return None, due, "review"
        rail = self._policy.settlement_for(self._inp.order.payment_rail)
        if self._state is RefundState.REFUNDING and self._awaiting is not Awaiting.OPERATOR:
            earliest, latest = rail.window(self._refunding_since or workflow.now())
            return earliest, latest, "payment"
        if self._state is RefundState.COMPLETED:
            # The provider has paid; the money reaches the customer within the rail's time.
            paid_at = self._timeline[-1].at if self._timeline else workflow.now()
            earliest, latest = rail.window(paid_at)
            return earliest, latest, "payment"
        return None, None, None

    def _facts(self) -> MessageFacts:
        earliest, latest, kind = self._eta()
        return MessageFacts(
            refund_id=self._inp.refund_id,
            order_id=self._inp.order.order_id,
            state=self._state,
            cancel_reason=self._cancel_reason,
            amount=self._amount,
            currency=self._currency,
            locale=self._inp.request.locale,
            escalation_level=self._escalation,
            item_return_required=self._state is RefundState.APPROVED
            and self._policy.refund.trigger == "on_item_received",
            payment_failed=self._awaiting is Awaiting.OPERATOR,
            eta=latest,
            eta_earliest=earliest,
            eta_kind=kind,
        )

    def _status(self) -> StatusView:
        facts = self._facts()
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
            provider_failure=self._operator_note if self._awaiting is Awaiting.OPERATOR else None,
            timeline=list(self._timeline),
            next_step=wording.next_step(self._state, self._awaiting),
            eta=facts.eta,
            message=wording.customer_message(facts),
            policy_notes=notes,
            locale=facts.locale,
            action_by=wording.action_by(self._state, self._awaiting, self._decision.approval_by),
            eta_earliest=facts.eta_earliest,
            eta_kind=facts.eta_kind,
            payment_rail=self._inp.order.payment_rail,
            fee=self._decision.fee,
            approval_by=self._decision.approval_by,
            support_reply=wording.support_reply(facts),
            facts=facts,
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


def _root_cause(err: ActivityError | ApplicationError | ActivityTimeout) -> BaseException | None:
    return err.cause if isinstance(err, ActivityError) else err


def _provider_refused(err: ActivityError | ApplicationError | ActivityTimeout) -> bool:
    cause = _root_cause(err)
    return isinstance(cause, ApplicationError) and cause.type == names.PROVIDER_REFUSED_ERROR


def _failure_text(err: ActivityError | ApplicationError | ActivityTimeout) -> str:
    cause = _root_cause(err)
    return cause.message if isinstance(cause, ApplicationError) else str(cause or err)


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} h"
