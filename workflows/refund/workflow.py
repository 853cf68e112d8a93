"""RefundWorkflow: one durable workflow per refund, the single source of truth for it.

Lifecycle (see workflows.states for the table): pending_review -> approved -> refunding ->
completed, or cancelled. Reviewer and customer actions are Updates whose validators consult
the transition table, so a refused action never reaches history. Escalation timers come from
the pinned policy. Every transition is appended to the timeline and written to the audit store
by an idempotent activity, in order, before the workflow waits or calls out.

This module holds the handlers and the run's outline; the state and its transitions are in
`case`, what the outside sees in `views`, the payment loop in `payment`, the audit and
search attributes in `journal`, the patch ids in `patches`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import names
    from workflows.models import (
        ApproveInput,
        CancelInput,
        ItemReceivedInput,
        OperatorCancelInput,
        OperatorPaidElsewhereInput,
        OperatorRetryInput,
        ProviderSettlement,
        RefundWorkflowInput,
        RejectInput,
        StatusQuery,
        StatusView,
    )
    from workflows.refund import (
        admission,
        item_return,
        patches,
        provider_cancel,
        reversal,
        temporal_cancel,
        views,
        within_capture,
    )
    from workflows.refund.case import MAX_ESCALATION, ContinuedRefundInput, RefundCase
    from workflows.refund.journal import Journal
    from workflows.refund.payment import Payment, hours
    from workflows.rules import RuleOutcome
    from workflows.states import (
        Awaiting,
        OperatorDecision,
        RefundEvent,
        RefundState,
        TimelineEvent,
        check,
    )


@workflow.defn(name="RefundWorkflow")
class RefundWorkflow:
    @workflow.init
    def __init__(self, inp: RefundWorkflowInput | ContinuedRefundInput) -> None:
        self._case = RefundCase(inp, workflow.now)
        self._journal = Journal(self._case)
        self._payment = Payment(self._case, self._journal)
        if not isinstance(inp, ContinuedRefundInput):  # else on the timeline already
            admission.record_request(self._case)

    # --- run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: RefundWorkflowInput | ContinuedRefundInput) -> StatusView:
        try:
            if isinstance(inp, ContinuedRefundInput) and inp.reversal is not None:
                await reversal.reopened(self._case, self._journal, self._payment)
            elif isinstance(inp, ContinuedRefundInput):
                await self._resume()
            else:
                await self._lifecycle()
        except asyncio.CancelledError:
            # Raised where the refund was waiting when an operator pressed "Request
            # Cancellation" in the Web UI (or ran `temporal workflow cancel`).
            requested = workflow.cancellation_reason()
            if requested is None or not (
                self._case.p.all_above or workflow.patched(patches.CANCEL_REQUEST_IS_A_REFUND_EVENT)
            ):
                raise
            await temporal_cancel.on_cancel_request(
                self._case, self._journal, self._payment, requested
            )
        await self._journal.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._journal.flush()
        return views.status(self._case)

    async def _lifecycle(self) -> None:
        case = self._case
        if not await admission.admit(case, self._journal):
            pass  # declined (unverified, not eligible, not enough left), or withdrawn
        elif case.decision.auto_approve:
            case.apply(RefundEvent.AUTO_APPROVE, "policy", "policy", case.auto_reason())
        else:
            case.set_awaiting(Awaiting.REVIEWER)
            case.retell_request()
            await self._await_review()

        if case.p.state is RefundState.APPROVED:
            await self._await_trigger()
        if case.p.state is RefundState.REFUNDING:
            await self._payment.pay()

    async def _resume(self) -> None:
        """A continued run: the refund waits with the provider or for an operator, exactly
        where the last run left it (only those long waits continue as new)."""
        self._journal.local_fast_path = self._case.p.local_fast_path
        # Handlers that ran during the handover may have added entries: record them now.
        await self._journal.flush()
        await self._payment.pay(resume=True)

    async def _await_review(self) -> None:
        """Wait for a reviewer; escalate on the policy's deadline ladder; expire at the end."""
        case = self._case
        while case.p.state is RefundState.PENDING_REVIEW:
            await self._journal.flush()
            deadline = case.policy.review_deadline(case.p.escalation)
            summary = ("review SLA", "second escalation", "review expiry")[
                min(case.p.escalation, MAX_ESCALATION)
            ]
            remaining = deadline - (workflow.now() - case.p.requested_at)
            if remaining > timedelta(0):
                try:
                    # Also woken to audit a first approval (four eyes), which does not
                    # change the state; refunds without one wake as they always did.
                    await workflow.wait_condition(
                        lambda: (
                            case.p.state is not RefundState.PENDING_REVIEW or case.has_unrecorded()
                        ),
                        timeout=remaining,
                        timeout_summary=summary,
                    )
                    if case.p.state is RefundState.PENDING_REVIEW:
                        continue
                except TimeoutError:
                    pass
            if case.p.state is not RefundState.PENDING_REVIEW:
                return
            if case.p.escalation < MAX_ESCALATION:
                case.escalate("timer", f"no review decision within {hours(deadline)}")
            elif case.p.item_received:  # a receipt kept: expired, nobody would have it
                await item_return.remind_until_decided(case, self._journal, hours(deadline))
            else:
                case.apply(
                    RefundEvent.EXPIRE, "timer", "timer", f"no decision within {hours(deadline)}"
                )

    async def _await_trigger(self) -> None:
        case = self._case
        if case.policy.refund.trigger == "on_approval":
            case.apply(RefundEvent.START_REFUND, "policy", "workflow", "refund on approval")
            return
        if item_return.nothing_to_return(case) or item_return.paid_on_approval(case):
            return
        case.set_awaiting(Awaiting.CUSTOMER)
        await self._journal.flush()
        if item_return.paid_on_approval(case):  # the record kept the item (another run's)
            return
        window = timedelta(days=case.policy.refund.item_return_window_days)
        try:
            await workflow.wait_condition(
                lambda: case.p.state is not RefundState.APPROVED,
                timeout=window,
                timeout_summary="item return window",
            )
        except TimeoutError:
            if case.p.state is not RefundState.APPROVED:
                return  # the item arrived (or the customer withdrew) as the window closed
            case.apply(
                RefundEvent.RETURN_WINDOW_ELAPSED,
                "timer",
                "timer",
                f"item not received within {window.days} days",
            )

    # --- signals ------------------------------------------------------------------------

    @workflow.signal(name=names.SIGNAL_PROVIDER_SETTLED)
    def provider_settled(self, settlement: ProviderSettlement) -> None:
        """Word of a pending refund's end (webhook, poll, reconciliation): confirmed with the
        provider before it counts. Repeats are ignored (first wins), and it may arrive before
        the provider call that created the refund returns."""
        self._case.receive_settlement(settlement)

    # --- updates ------------------------------------------------------------------------

    @workflow.update
    def approve(self, inp: ApproveInput) -> StatusView:
        case = self._case
        if inp.amount is not None:
            case.p.amount = inp.amount
        checked = f"; evidence checked: {inp.evidence}" if inp.evidence else ""
        if inp.evidence:
            case.p.evidence = f"{inp.reviewer}: {inp.evidence}"
        args = (inp.reviewer, inp.role, inp.source, inp.issuer, checked)
        if case.first_of_two_approvals(*args):
            return views.status(case)
        reason = f"approved {case.money()}"
        if inp.amount is not None and inp.amount < case.p.max_amount:
            # Not "requested": the most payable is the request less fees (a trial read
            # "requested 85.72" in the audit beside "requested 100.00" in the status).
            reason += f" (of the {case.money(case.p.max_amount)} payable)"
        if case.policy.authority:
            reason += f" as {inp.role}"
        if case.p.approvals:
            reason += f", second approver after {case.p.approvals[0]}"
        reason += checked
        if case.p.escalation and workflow.patched(patches.APPROVAL_ENDS_ESCALATION):
            # Decided: nobody is late. Before the entry, so that it and its notice say the
            # level the status shows (a trial: approved at level 2, still escalated).
            case.p.escalation = 0
        case.apply(RefundEvent.APPROVE, inp.reviewer, inp.source, reason, inp.issuer)
        if views.awaits_item(case):  # answered as it waits: for the item (a trial
            case.set_awaiting(Awaiting.CUSTOMER)  # was told "moves on by itself")
        return views.status(case)

    @approve.validator
    def _validate_approve(self, inp: ApproveInput) -> None:
        refusal = self._case.approval_refusal(inp.reviewer, inp.role, inp.amount, inp.evidence)
        if refusal:
            raise ValueError(refusal)

    @workflow.update
    def reject(self, inp: RejectInput) -> StatusView:
        self._case.apply(RefundEvent.REJECT, inp.reviewer, inp.source, inp.reason, inp.issuer)
        return views.status(self._case)

    @reject.validator
    def _validate_reject(self, inp: RejectInput) -> None:
        check(self._case.p.state, RefundEvent.REJECT)
        if own := self._case.own_refund_refusal(inp.reviewer, "reject"):
            raise ValueError(own)

    @workflow.update
    def cancel(self, inp: CancelInput) -> StatusView:
        self._case.p.withdrawn_for_customer = bool(inp.for_customer)
        self._case.apply(RefundEvent.WITHDRAW, inp.actor, inp.source, inp.reason, inp.issuer)
        return views.status(self._case)

    @cancel.validator
    def _validate_cancel(self, inp: CancelInput) -> None:
        if self._case.p.state is RefundState.REFUNDING:
            raise ValueError("cannot cancel: the refund has been sent to the payment provider")
        check(self._case.p.state, RefundEvent.WITHDRAW)

    @workflow.update
    async def item_received(self, inp: ItemReceivedInput) -> StatusView:
        if not views.first_step_decided(self._case):
            # A reset run meets its reapplied receipt here (a trial: refused, so the refund
            # asked the customer for an item the warehouse held): taken once decided.
            await workflow.wait_condition(lambda: views.first_step_decided(self._case))
            if refusal := item_return.receipt_refusal(self._case):
                raise ApplicationError(refusal)
        item_return.receive(self._case, inp)
        if self._case.p.state is RefundState.PENDING_REVIEW:  # kept: still for a reviewer
            return views.status(self._case)
        return views.as_payment_starts(self._case)

    @item_received.validator
    def _validate_item_received(self, inp: ItemReceivedInput) -> None:
        refusal = item_return.receipt_refusal(self._case)
        if refusal:
            raise ValueError(refusal)

    @workflow.update
    def operator_retry(self, inp: OperatorRetryInput) -> StatusView:
        case = self._case
        case.append(
            TimelineEvent.OPERATOR_RETRY,
            case.p.state,
            inp.operator,
            inp.source,
            "retry the refund",
            inp.issuer,
        )
        case.p.operator_action = OperatorDecision.RETRY
        # What the operator sees in the answer: the refund is back with the provider (the
        # payment loop sets the same as it resumes, so nothing else changes).
        case.set_awaiting(Awaiting.PAYMENT_PROVIDER)
        # Asked where the update arrives (in the payment loop, a continued run's replay met
        # it after a local activity resolved a task early: no marker, a review found).
        if workflow.patched(patches.RETRY_STARTS_AFRESH):
            # A new payment: nobody acts while the provider has it; ETA and timers from now.
            case.p.refunding_since = workflow.now()
            case.p.escalation = 0
        return views.status(case)

    @operator_retry.validator
    def _validate_operator_retry(self, inp: OperatorRetryInput) -> None:
        self._require_operator_needed(OperatorDecision.RETRY)

    @workflow.update
    async def operator_cancel(self, inp: OperatorCancelInput) -> StatusView:
        if provider_cancel.pending_refund(self._case) is not None:
            await provider_cancel.cancel_pending(self._case, inp)
            return views.status(self._case)
        await self._prove_no_money_moved(OperatorDecision.CANCEL, "cancel")
        case = self._case
        case.apply(RefundEvent.OPERATOR_CANCEL, inp.operator, inp.source, inp.reason, inp.issuer)
        case.p.operator_action = OperatorDecision.CANCEL
        return views.status(case)

    @workflow.update
    async def operator_paid_elsewhere(self, inp: OperatorPaidElsewhereInput) -> StatusView:
        """The customer was paid outside the provider (proof recorded): the refund completes
        without a provider refund, once the provider shows none that could still pay."""
        await self._prove_no_money_moved(OperatorDecision.PAID_ELSEWHERE, "mark paid elsewhere")
        if workflow.patched(patches.PAID_ELSEWHERE_WITHIN_CAPTURE):
            await within_capture.prove_within_capture(self._case)
            self._require_operator_needed(OperatorDecision.PAID_ELSEWHERE, ApplicationError)
        case = self._case
        case.p.paid_elsewhere = f"by {inp.operator}, proof: {inp.proof}"
        case.append(
            TimelineEvent.PAID_ELSEWHERE,
            case.p.state,
            inp.operator,
            inp.source,
            f"paid outside the payment provider; proof: {inp.proof}",
            inp.issuer,
        )
        case.p.operator_action = OperatorDecision.PAID_ELSEWHERE
        return views.status(case)

    @operator_paid_elsewhere.validator
    def _validate_operator_paid_elsewhere(self, inp: OperatorPaidElsewhereInput) -> None:
        self._require_operator_needed(OperatorDecision.PAID_ELSEWHERE)

    async def _prove_no_money_moved(self, action: OperatorDecision, doing: str) -> None:
        """Ask the provider: a refund of its that is not failed or canceled may still pay,
        so closing or paying this refund another way is refused."""
        live = await provider_cancel.live_provider_refunds(self._case, "prove no money moved")
        if live:
            raise ApplicationError(provider_cancel.money_out_refusal(self._case, doing, live[0]))
        # Another operator may have acted while we asked the provider.
        refusal = self._case.operator_refusal(action)
        if refusal:
            raise ApplicationError(refusal)

    @operator_cancel.validator
    def _validate_operator_cancel(self, inp: OperatorCancelInput) -> None:
        if provider_cancel.pending_refund(self._case) is not None:
            return  # the provider is asked to cancel its refund first
        self._require_operator_needed(OperatorDecision.CANCEL)
        check(self._case.p.state, RefundEvent.OPERATOR_CANCEL)

    def _require_operator_needed(
        self, action: OperatorDecision, refused_as: type[Exception] = ValueError
    ) -> None:
        """Validators refuse with ValueError; a handler, after an await (another operator
        may have acted meanwhile), with ApplicationError, which fails only the update."""
        refusal = self._case.operator_refusal(action)
        if refusal:
            raise refused_as(refusal)

    @workflow.update(name=names.UPDATE_FIRST_STEP)
    async def first_step(self, query: StatusQuery) -> StatusView:
        """The status once the refund has checked its request and decided who acts next:
        what the requester's answer says (sent with the start, update-with-start, so a
        request is one round trip). Refunds past their first step answer at once."""
        await workflow.wait_condition(lambda: views.first_step_decided(self._case))
        return self.status(query)

    @workflow.query
    def status(self, query: StatusQuery) -> StatusView:
        view = views.status(self._case)
        return view if query.include_timeline else view.model_copy(update={"timeline": []})

    @workflow.query(name=names.QUERY_POLICY_RULES)
    def policy_rules(self) -> list[RuleOutcome]:
        """Every rule as this refund's decision stands: the policy's, and an auto-approval
        the store withheld (the same request twice, a spent budget), which the policy alone
        cannot say (a trial: the console read "Approved automatically" of one held back)."""
        return list(self._case.decision.outcomes)

    @workflow.query(name=names.QUERY_CARRY_OVER)
    def carry_over(self) -> ContinuedRefundInput:
        """The refund's start input and whole progress: what a run that reopens this
        refund after a provider reversal starts from (asked of the closed run)."""
        carried = {**dict(self._case.inp), "carried": self._case.p, "reversal": None}
        return ContinuedRefundInput(**carried)
