"""The payment loop: have the provider pay exactly once, whatever fails; a person decides
when the provider refuses for good. Then restock the returned lines, once each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from workflows import names
    from workflows.activity_contracts import NOT_FINAL
    from workflows.models import (
        CheckRefundInput,
        IssueRefundInput,
        ProviderRefundResult,
        ProviderSettlement,
    )
    from workflows.refund import (
        failures,
        lifetime,
        patches,
        provider_cancel,
        restock,
        settlement_hints,
    )
    from workflows.refund.case import MAX_ESCALATION, Progress, RefundCase
    from workflows.refund.fast_path import PROVIDER_CALL_TIMEOUT, pay_in_process
    from workflows.refund.journal import STORE_RETRY, Journal
    from workflows.states import Awaiting, OperatorDecision, RefundEvent, TimelineEvent

PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=[names.PROVIDER_REFUSED_ERROR],
)
# While an operator is needed, remind (re-publish the escalation) this often: never timer-less.
OPERATOR_REMINDER = timedelta(hours=24)
# Polling a pending provider refund when no webhook arrives: 30 s, doubling, at most hourly.
FIRST_POLL = timedelta(seconds=30)
LAST_POLL = timedelta(hours=1)
# Long-lived refunds: a refund pending for days is polled less often (hourly for a day, then
# every 6 h, daily after a week): 140 polls in 90 days instead of 2,160.
SLOWER_POLLS = ((timedelta(days=7), timedelta(hours=24)), (timedelta(days=1), timedelta(hours=6)))


class Payment:
    def __init__(self, case: RefundCase, journal: Journal) -> None:
        self.case = case
        self.journal = journal
        self.goes_on = False
        self.told_by_the_record = False
        """The last refusal was the guard's: the record, past this run, already told the
        customer (a reset run re-told "could not be paid yet" at each Reset, a trial)."""

    @property
    def p(self) -> Progress:
        return self.case.p

    async def pay(self, resume: bool = False, goes_on: bool = False) -> None:
        """Pay, exactly once, then record the provider's confirmation (and restock).
        `resume`: a continued run picks the wait up where the last run left it. `goes_on`:
        the same payment after a refused cancellation (patches.CANCEL_REFUSED_GOES_ON)."""
        self.goes_on = goes_on
        if not resume and not goes_on:
            self.p.refunding_since = workflow.now()
        while True:
            # A continued run resumes the wait it was in: a pending settlement, else the
            # operator wait (even if an operator acted during the handover: the action is
            # taken from there).
            if resume and self.p.pending_settlement is None:
                decision = await self._wait_for_operator(resume=True)
            else:
                outcome = await (self._resume_settlement() if resume else self._attempt())
                if outcome is not None and outcome.status == "succeeded":
                    self.p.provider_refund_id = outcome.provider_refund_id
                    break
                if outcome is not None:
                    self.p.refused_by = "payment-provider"
                    ended = "canceled" if outcome.status == "canceled" else "failed"
                    self.p.operator_note = f"refund {outcome.provider_refund_id} {ended}: " + (
                        outcome.failure_code or "no reason given"
                    )
                decision = await self._wait_for_operator()
            resume = False
            if decision is OperatorDecision.CANCEL:
                return
            if decision is OperatorDecision.PAID:
                self.p.provider_refund_id = self.case.paid_elsewhere()
                break
            if decision is OperatorDecision.PAID_ELSEWHERE:
                break  # the operator recorded who paid and the proof (p.paid_elsewhere)
            self.p.payment_attempt += 1
        await self._confirm()

    async def _attempt(self) -> ProviderRefundResult | None:
        """One payment attempt through to the provider's final word (None: refused)."""
        self.case.set_awaiting(Awaiting.PAYMENT_PROVIDER)
        self.p.sent_unanswered = True
        self.told_by_the_record = False
        fast = self._fast_path_allowed()
        if not (fast and self.p.record_with_payment):  # else written with the provider call
            # On the fast path the whole payment usually fits in this workflow task: publish
            # search attributes once at the end instead of before and after.
            await self.journal.flush(publish=not fast)
        outcome = await self._issue()
        self.p.sent_unanswered = False
        if outcome is not None and outcome.status in NOT_FINAL:
            outcome = await self._await_settlement(outcome)
        return outcome

    def _told_pending(self, refund_key: str) -> bool:
        """Whether this run recorded (and told) provider refund `refund_key` pending."""
        told = _pending_words(refund_key)
        return any(
            e.event == TimelineEvent.PROVIDER_PENDING and e.reason == told for e in self.p.timeline
        )

    async def _resume_settlement(self) -> ProviderRefundResult | None:
        pending = self.p.pending_settlement
        assert pending is not None, "a refund continues only while waiting"
        return await self._await_settlement(pending, resume=True)

    async def _confirm(self) -> None:
        paid = f"provider refund {self.p.provider_refund_id} succeeded"
        how = self.p.settled_by.get(self.p.provider_refund_id or "", "provider answer")
        who, via = "payment-provider", "payment"
        if self.p.paid_elsewhere:
            paid, how = "paid outside the payment provider", self.p.paid_elsewhere
            who, via = "operator", "operator"
        if self.p.item_received:
            if self.p.all_above or workflow.patched(patches.RECORD_PAYMENT_BEFORE_RESTOCK):
                # The money has moved: make that durable in the audit before the warehouse.
                self.case.append(
                    TimelineEvent.PROVIDER_PAID, self.p.state, who, via, f"{paid} ({how})"
                )
                await self.journal.flush()
            await restock.restock_lines(self.case)
        self.case.apply(RefundEvent.PROVIDER_CONFIRMED, who, via, f"{paid} ({how})")

    def _request(self) -> IssueRefundInput:
        refund_id = self.case.inp.refund_id
        key = attempt_key(refund_id, self.p.payment_attempt)
        return IssueRefundInput(
            refund_id=refund_id,
            order_id=self.case.inp.order.order_id,
            payment_reference=self.case.inp.order.payment_reference,
            amount=self.p.amount,
            currency=self.case.currency,
            idempotency_key=key,
            payment_attempt=self.p.payment_attempt,
            # After a fast-path try, the provider may have committed: look before sending.
            look_up_first=self.p.tried_fast_path,
            recorded_through=self.p.seq_base + len(self.p.timeline),
        )

    async def _issue(self) -> ProviderRefundResult | None:
        """One payment attempt; None if the provider refused for good (reason noted)."""
        request = self._request()
        if self._fast_path_allowed():
            self.p.tried_fast_path = True
            with_record = self.p.record_with_payment
            try:
                return await pay_in_process(self.case, self.journal, request, with_record)
            except (ActivityError, ApplicationError, ActivityTimeout) as err:
                # A local activity's failure arrives as the activity's own ApplicationError
                # (or a timeout), a regular activity's as an ActivityError wrapping it.
                if failures.provider_refused(err):
                    self._refused(err)
                    return None
                # Slow or failing provider: continue on the durable path, timer-watched.
            request = request.model_copy(update={"look_up_first": True})
            if with_record:
                # Whether the record was written is not known (the store down, or it refused
                # this run): written again, its refusals handled as always, before any pay.
                await self.journal.flush(publish=False)
        return await self._issue_durably(request)

    async def _issue_durably(self, request: IssueRefundInput) -> ProviderRefundResult | None:
        self.journal.publish()  # the wait may be long: let operators see where the refund is
        call: workflow.ActivityHandle[ProviderRefundResult] = workflow.start_activity(
            names.ACTIVITY_ISSUE_PROVIDER_REFUND,
            request,
            result_type=ProviderRefundResult,
            # The adapter gives up on one HTTP call after 10 s; a worker that dies mid-call is
            # noticed after this long and the call retried (looking up first).
            start_to_close_timeout=PROVIDER_CALL_TIMEOUT,
            retry_policy=PROVIDER_RETRY,
            summary="provider refund",
        )
        # Transient failures are retried for as long as it takes; meanwhile the refund SLA
        # timer still escalates, so a provider outage never leaves a refund unwatched.
        if self.p.all_above or workflow.patched(patches.WATCH_PROVIDER_CALL):
            await self._escalating_wait(call.done, "provider not answering")
        try:
            return await call
        except ActivityError as err:
            self._refused(err)
            return None

    def _refused(self, err: failures.ActivityFailure) -> None:
        self.p.operator_note = failures.text(err)
        self.p.refused_by = failures.refused_by(err)
        self.told_by_the_record = failures.code(err) == names.NOT_SENT_RECORD_MOVED_ON

    def _fast_path_allowed(self) -> bool:
        """First payment attempt of a refund started with the fast path: try it in-process."""
        return (
            self.journal.local_fast_path
            and self.p.payment_attempt == 1
            and not self.p.tried_fast_path
        )

    async def _await_settlement(
        self, pending: ProviderRefundResult, resume: bool = False
    ) -> ProviderRefundResult:
        """The provider answered `pending`: wait for a webhook (signal), poll as a fallback."""
        refund_key = pending.provider_refund_id
        self.p.waits_on = refund_key
        if not resume and not (self.goes_on and self._told_pending(refund_key)):
            self.case.append(
                TimelineEvent.PROVIDER_PENDING,
                self.p.state,
                "payment-provider",
                "payment",
                _pending_words(refund_key),
            )
            if pending.status == "pending":  # requires_action is told as such, below
                # The provider took it: now the customer hears when it should arrive.
                self.case.notice(TimelineEvent.PROVIDER_PENDING)
            await self.journal.flush()
            self.p.poll_every = FIRST_POLL
        if pending.status == "requires_action" and not resume:
            await self._customer_must_act(pending)
        if self.p.long_lived:
            self.p.pending_settlement = pending
        while refund_key not in self.p.settlements:
            try:
                await workflow.wait_condition(
                    lambda: refund_key in self.p.settlements or bool(self.p.hints),
                    timeout=self.p.poll_every,
                    timeout_summary="poll provider",
                )
            except TimeoutError:
                await self._poll(refund_key)
                self.p.poll_every = self._next_poll()
                self._escalate_if_stalled()
                await self.journal.flush()
                if refund_key not in self.p.settlements:
                    await lifetime.continue_if_long(self.case, self.journal)
                continue
            await settlement_hints.confirm_hints(self.case, self.journal)
            if refund_key not in self.p.settlements:  # many hints grow history too
                await lifetime.continue_if_long(self.case, self.journal)
        self.p.pending_settlement = self.p.waits_on = None
        self.p.provider_instructions = None
        settled = self.p.settlements[refund_key]
        return pending.model_copy(
            update={"status": settled.status, "failure_code": settled.failure_code}
        )

    async def _customer_must_act(self, answer: ProviderRefundResult) -> None:
        """The provider waits for the customer (requires_action): tell them, once per set
        of instructions, in their words; the refund goes on waiting for the provider."""
        instructions = answer.instructions or "follow the payment provider's instructions"
        if instructions == self.p.provider_instructions:
            return
        self.p.provider_instructions = instructions
        self.case.append(
            TimelineEvent.PROVIDER_REQUIRES_ACTION,
            self.p.state,
            "payment-provider",
            "payment",
            f"provider refund {answer.provider_refund_id} needs the customer: {instructions}",
        )
        self.case.notice(TimelineEvent.PROVIDER_REQUIRES_ACTION)
        await self.journal.flush()

    def _next_poll(self) -> timedelta:
        longest = LAST_POLL
        if self.p.long_lived and self.p.refunding_since is not None:
            pending_for = workflow.now() - self.p.refunding_since
            longest = next((every for age, every in SLOWER_POLLS if pending_for >= age), longest)
        return min(self.p.poll_every * 2, longest)

    async def _poll(self, provider_refund_id: str) -> None:
        polled = await workflow.execute_activity(
            names.ACTIVITY_CHECK_PROVIDER_REFUND,
            CheckRefundInput(
                refund_id=self.case.inp.refund_id, provider_refund_id=provider_refund_id
            ),
            result_type=ProviderRefundResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STORE_RETRY,
            summary="poll provider",
        )
        if polled.status == "requires_action":
            await self._customer_must_act(polled)
        elif polled.status == "pending":
            self.p.provider_instructions = None  # the customer did what was asked
        elif polled.status not in NOT_FINAL:
            self.case.record_settlement(
                ProviderSettlement(
                    provider_refund_id=provider_refund_id,
                    status=polled.status,
                    failure_code=polled.failure_code,
                    source="poll",
                )
            )

    async def _escalating_wait(self, done: Callable[[], bool], what: str) -> None:
        sla = self.case.policy.refund_sla
        while not done():
            try:
                await workflow.wait_condition(done, timeout=sla, timeout_summary="refund SLA")
            except TimeoutError:
                self.case.escalate("timer", f"{what} within {hours(sla)}")
                await self.journal.flush()

    def _escalate_if_stalled(self) -> None:
        assert self.p.refunding_since is not None
        waited = workflow.now() - self.p.refunding_since
        level_due = min(MAX_ESCALATION, int(waited / self.case.policy.refund_sla))
        if level_due > self.p.escalation:
            # The level's own deadline, not the time waited: a poll notices it up to an hour
            # late, and "after 72.0676 h" read as a precise figure (a trial).
            reached = (self.p.escalation + 1) * self.case.policy.refund_sla
            self.case.escalate("timer", f"refund not settled after {hours(reached)}")

    async def _wait_for_operator(self, resume: bool = False) -> OperatorDecision:
        """The provider refused or failed for good: a person must look. Returns their choice."""
        if provider_cancel.closed_by_operator(self.case):
            return OperatorDecision.CANCEL  # the operator had the provider cancel it
        if not resume:
            self.case.set_awaiting(Awaiting.OPERATOR)
            self.p.escalation = MAX_ESCALATION
            self.case.append(
                TimelineEvent.ESCALATED,
                self.p.state,
                self.p.refused_by,
                "payment",
                f"level {self.p.escalation}: payment failed: {self.p.operator_note}",
            )
            if not self.told_by_the_record:
                self.case.tell_escalation()
            self.p.operator_action = None
        # Refunds that started waiting before this exit existed wait for the operator only.
        paid_exit = self.p.all_above or workflow.patched(patches.OPERATOR_PAID_EXIT)

        def paid() -> bool:
            return paid_exit and self.case.paid_elsewhere() is not None

        while self.p.operator_action is None and not paid():
            await self.journal.flush()
            try:
                await workflow.wait_condition(
                    lambda: self.p.operator_action is not None or paid() or bool(self.p.hints),
                    timeout=OPERATOR_REMINDER,
                    timeout_summary="operator reminder",
                )
            except TimeoutError:
                self.case.escalate("timer", "still waiting for an operator")
            await settlement_hints.confirm_hints(self.case, self.journal)
            await lifetime.continue_if_long(self.case, self.journal)
        if self.p.operator_action is None:
            # Reconciliation found the provider paid after all: no operator needed any more.
            self.p.operator_note = None
            self.case.set_awaiting(Awaiting.PAYMENT_PROVIDER)
            return OperatorDecision.PAID
        action, self.p.operator_action = self.p.operator_action, None
        self.p.reversal_open = False  # decided: from here the refund's own words apply
        if action is OperatorDecision.RETRY:
            self.p.operator_note = None
        return action


def attempt_key(refund_id: str, attempt: int) -> str:
    """The idempotency key of a refund's payment attempt (the first: `rf_…:refund`)."""
    return f"{refund_id}:refund" + (f":{attempt}" if attempt > 1 else "")


def hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} h"


def _pending_words(refund_key: str) -> str:
    """The audit's words for a provider refund the provider left pending (also how a run
    finds it told already)."""
    return f"provider refund {refund_key} pending settlement"
