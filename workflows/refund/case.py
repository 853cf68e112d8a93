"""One refund's state as a single serializable structure, and its pure transitions.

`RefundCase` holds what was decided at the start (the request, the pinned policy and its
evaluation) and `Progress`, everything that changes while the refund runs. Its methods are
the only way the state changes; they do no I/O and read the time from an injected clock
(plain values in unit tests, `workflow.now` in the workflow)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from workflows import wording
from workflows.budgets import withhold_auto_approval
from workflows.models import (
    Notice,
    ProviderRefundResult,
    ProviderSettlement,
    RefundWorkflowInput,
    TimelineEntry,
)
from workflows.money import format_minor
from workflows.policy import Policy, PolicyDecision, evaluate, policy_for
from workflows.refund import views
from workflows.refund.progress import Progress as Progress
from workflows.states import (
    TERMINAL_STATES,
    Awaiting,
    OperatorDecision,
    RefundEvent,
    RefundState,
    TimelineEvent,
    check,
)

# Escalation levels: 1 after the first deadline, 2 (the highest) when a person must act now.
MAX_ESCALATION = 2

Clock = Callable[[], datetime]
# How far before the workflow's start a request may say it was made (a backlog in front of
# the workers). A claimed request time is a money fact: bounded, never taken on trust.
MAX_REQUEST_LAG = timedelta(minutes=15)


def asked_at(inp: RefundWorkflowInput, started: datetime) -> datetime:
    """The time the policy is evaluated at: the client's request time, but never after the
    workflow started nor more than MAX_REQUEST_LAG before (invariant 11); older refunds
    without one use the start."""
    if inp.asked_at is None:
        return started
    return min(max(inp.asked_at, started - MAX_REQUEST_LAG), started)


class ContinuedRefundInput(RefundWorkflowInput):
    """A refund's start input plus its whole progress: what a long-lived refund hands to
    its next run (continue-as-new), so nothing but the run id changes."""

    carried: Progress
    reversal: ProviderSettlement | None = None
    """Set when the run reopens a completed refund: the provider's confirmed reversal of the
    refund it paid (workflows/refund/reversal.py). Never carried on to a later run."""


class RefundCase:
    """A refund: its fixed inputs, its policy decision and its progress."""

    def __init__(self, inp: RefundWorkflowInput, clock: Clock) -> None:
        self.inp = inp
        self.clock = clock
        # The money settings for the refund's currency (v4 on; earlier policies as written).
        self.policy: Policy = policy_for(inp.policy.document, inp.resolved.currency)
        carried = inp.carried if isinstance(inp, ContinuedRefundInput) else None
        # A continued run decides exactly as the first run did: as of the first start.
        requested_at = carried.requested_at if carried else clock()
        self.decision: PolicyDecision = evaluate(
            self.policy,
            inp.order,
            inp.resolved,
            inp.request.reason_code,
            asked_at(inp, requested_at),
        )
        if carried is not None and carried.withheld_because:  # as the first run was held
            why = carried.withheld_because
            self.decision = withhold_auto_approval(self.policy, self.decision, why, self.currency)
        # Fees (policy v2 on) are kept back from the start. Every policy pinned before fees
        # existed evaluates to a fee of 0, so refunds in flight keep their amount.
        max_amount = inp.resolved.amount - self.decision.fee
        self.p = carried or Progress(
            requested_at=requested_at, max_amount=max_amount, amount=max_amount
        )

    @property
    def currency(self) -> str:
        return self.inp.resolved.currency

    def is_its_amount(self, refund: ProviderRefundResult) -> bool:
        """Whether a provider refund is of this refund's amount and currency (ISO codes in
        any case), so it can be this refund's payment."""
        return (refund.amount, refund.currency.upper()) == (self.p.amount, self.currency)

    def money(self, amount: int | None = None) -> str:
        return format_minor(self.p.amount if amount is None else amount, self.currency)

    # --- transitions ----------------------------------------------------------------

    def apply(
        self,
        event: RefundEvent,
        actor: str,
        source: str,
        reason: str,
        issuer: str | None = None,
    ) -> None:
        """Move along the transition table (or raise InvalidTransition), record and notify.
        `issuer`: the identity provider that vouched for `actor` (API actions)."""
        transition = check(self.p.state, event)
        previous = self.p.state
        self.p.state = transition.to
        self.p.cancel_reason = transition.cancel_reason
        if self.p.state in TERMINAL_STATES or self.p.state is RefundState.APPROVED:
            self.p.awaiting = Awaiting.NOTHING
        self.append(event, previous, actor, source, reason, issuer)
        if self.p.state in TERMINAL_STATES and self.p.clear_escalation_on_close:
            self.p.escalation = 0  # nobody needs to act any more; the audit keeps the history
        # After the clearing: the notice tells the level the status shows (invariant 6; a
        # trial's refund.completed said level 2 while its status said 0).
        self.notice(event)

    def append(
        self,
        event: RefundEvent | TimelineEvent,
        from_state: RefundState | None,
        actor: str,
        source: str,
        reason: str,
        issuer: str | None = None,
    ) -> None:
        self.p.timeline.append(
            TimelineEntry(
                seq=self.p.seq_base + len(self.p.timeline) + 1,
                event=event.value,
                from_state=from_state,
                state=self.p.state,
                at=self.clock(),
                actor=actor,
                source=source,
                reason=reason,
                escalation_level=self.p.escalation,
                issuer=issuer,
            )
        )

    def notice(self, event: RefundEvent | TimelineEvent) -> None:
        """Tell the customer and subscribers about the entry just appended (outbox)."""
        self.p.notices.append(
            Notice(
                seq=self.p.seq_base + len(self.p.timeline),
                event=event.value,
                at=self.clock(),
                facts=views.facts(self),
            )
        )

    def retell_request(self) -> None:
        """The request's notice, while not yet sent, told as the refund now stands. A refund
        the store sent to a reviewer although its policy approves it by itself (a budget,
        the same request again, a reviewer's cut) was told "received" and no date, while
        `track` said it waits for a decision due by a date (a trial)."""
        self.p.notices = [
            n.model_copy(update={"facts": views.facts(self)})
            if n.event == TimelineEvent.REQUESTED.value
            else n
            for n in self.p.notices
        ]

    def escalate(self, actor: str, reason: str, source: str = "timer", tell: bool = True) -> None:
        """Raise the escalation level and record why; `tell`: customers and subscribers hear
        of a new level (not of staff matters such as an audit conflict)."""
        before = self.p.escalation
        self.p.escalation = min(self.p.escalation + 1, MAX_ESCALATION)
        if self.p.awaiting is Awaiting.OPERATOR:
            self.p.escalation = MAX_ESCALATION
        self.append(
            TimelineEvent.ESCALATED,
            self.p.state,
            actor,
            source,
            f"level {self.p.escalation}: {reason}",
        )
        if tell and self.p.escalation > before:
            self.tell_escalation()

    def tell_escalation(self) -> None:
        """A new escalation level (or a payment failure) is news for the customer and
        subscribers, not only for staff (refunds since the long-lived patch; a reminder at
        the same level is not news)."""
        if self.p.long_lived:
            self.notice(TimelineEvent.ESCALATED)

    def set_awaiting(self, awaiting: Awaiting) -> None:
        self.p.awaiting = awaiting

    def receive_settlement(self, settlement: ProviderSettlement) -> None:
        """A settlement signal: a hint to confirm with the provider, or (refunds started
        before hints were confirmed) the provider's word."""
        if not self.p.confirm_hints:
            self.record_settlement(settlement)
        elif settlement.provider_refund_id not in self.p.settlements:
            self.p.hints.setdefault(settlement.provider_refund_id, settlement)

    def record_settlement(self, settlement: ProviderSettlement) -> None:
        """The provider's final word on one of its refunds; repeats are ignored."""
        if settlement.provider_refund_id not in self.p.settlements:
            self.p.settlements[settlement.provider_refund_id] = settlement
            self.p.settled_by[settlement.provider_refund_id] = f"settled via {settlement.source}"

    def paid_elsewhere(self) -> str | None:
        """A provider refund for this refund that settled as succeeded, learned by signal."""
        for provider_refund_id, settlement in self.p.settlements.items():
            if settlement.status == "succeeded":
                return provider_refund_id
        return None

    def has_unrecorded(self) -> bool:
        return self.p.recorded < len(self.p.timeline)

    def unrecorded(self) -> tuple[list[TimelineEntry], list[Notice]]:
        """Timeline entries the audit store does not have yet, and their notices."""
        entries = self.p.timeline[self.p.recorded :]
        if not entries:
            return [], []
        notices = [n for n in self.p.notices if entries[0].seq <= n.seq <= entries[-1].seq]
        return entries, notices

    def mark_recorded(self, upto: int) -> None:
        """The audit store has the timeline up to this position (not sequence number)."""
        self.p.recorded = max(self.p.recorded, upto)
        # Written to the outbox with their entries: no need to keep them in memory.
        recorded_seq = self.p.seq_base + self.p.recorded
        self.p.notices = [n for n in self.p.notices if n.seq > recorded_seq]

    def follow_other_run(self, first_clash: int, stored_upto: int, why: str) -> None:
        """The audit store holds entries from another run of this refund (a workflow reset
        in the Web UI) from `first_clash` to `stored_upto`, where this run was about to write
        its own. Entries before `first_clash` are the same in both runs. The trail is
        append-only: this run's entries from there move after the stored ones, and the
        conflict is escalated so a person sees that two runs acted."""
        at = first_clash - self.p.seq_base - 1  # timeline position of the first clash
        shift = stored_upto - first_clash + 1
        self.p.timeline[at:] = [
            e.model_copy(update={"seq": e.seq + shift}) for e in self.p.timeline[at:]
        ]
        self.p.notices = [
            n.model_copy(update={"seq": n.seq + shift}) if n.seq >= first_clash else n
            for n in self.p.notices
        ]
        self.p.seq_base += shift
        self.mark_recorded(at)
        self.escalate("audit", why, "audit", tell=False)

    # --- rules asked by the update validators -----------------------------------------

    def approval_refusal(
        self, reviewer: str, role: str, amount: int | None, evidence: str | None = None
    ) -> str | None:
        """Why this approval may not happen now; None when it may."""
        check(self.p.state, RefundEvent.APPROVE)
        if own := self.own_refund_refusal(reviewer, "approve"):
            return own
        if _same_person(reviewer, *self.p.approvals):
            return (
                f"{reviewer} has already approved this refund: a second, different person"
                " must approve it"
            )
        if (
            not self.p.approvals
            and amount is not None
            and self.needs_second_approver(self.p.amount)
            and not self.needs_second_approver(amount)
        ):
            # Cut below the four-eyes threshold, one person would decide what needs two.
            return (
                f"two people must approve this {self.money()} refund: approving"
                f" {self.money(amount)} of it alone would decide all of it; approve it as the"
                " first of two (the second approver may approve less)"
            )
        if self.p.approvals and amount is not None and amount > self.p.amount:
            return (
                f"cannot approve {self.money(amount)}: the first approver approved {self.money()}"
            )
        if not self.p.reserved:
            return "the refund is still being checked against the order; try again in a moment"
        if amount is not None and amount > self.p.max_amount:
            return (
                f"cannot approve {self.money(amount)}: more than the"
                f" {self.money(self.p.max_amount)} refundable for this request"
            )
        approving = amount if amount is not None else self.p.amount
        # Approving less decides the whole refund: it takes the authority for all of it, or
        # a reviewer could cut a refund down to their own limit (a trial: support paid 200.00
        # of a 255.00 refund that needs a lead).
        # The same for evidence (a trial: 490.00 of a 600.00 refund approved without it).
        refusal = self.policy.authority_refusal(
            reviewer, role, self.p.amount, self.currency
        ) or self.evidence_refusal(self.p.amount, evidence)
        if refusal and approving < self.p.amount:
            refusal += f" (approving less than its {self.money()} decides all of it)"
        return refusal

    def evidence_refusal(self, amount: int, evidence: str | None) -> str | None:
        """Above the policy's evidence threshold an approval says what was checked, unless
        an earlier approval of this refund (four eyes) recorded it."""
        limit = self.policy.approval.evidence_required_above
        if amount <= limit or (evidence and evidence.strip()) or self.p.evidence:
            return None
        above = (
            f"for {self.currency} refunds (the policy sets no {self.currency} limits)"
            if self.policy.uncovered
            else f"above {self.money(limit)}"
        )
        return (
            f"evidence is required {above}: say what you checked (the console's Evidence"
            " field; `approve --evidence TEXT` in the CLI)"
        )

    def needs_second_approver(self, amount: int) -> bool:
        limit = self.policy.approval.second_approver_above
        return limit is not None and amount > limit

    def first_of_two_approvals(
        self, reviewer: str, role: str, source: str, issuer: str | None = None, checked: str = ""
    ) -> bool:
        """Record a first approval where the policy wants two people; True if it was one
        (the refund then waits for a second, different approver)."""
        if self.p.approvals or not self.needs_second_approver(self.p.amount):
            return False
        self.p.approvals.append(reviewer)
        limit = self.money(self.policy.approval.second_approver_above)
        why = f"above {limit} a second person must approve"
        if self.policy.uncovered:
            why = f"the policy sets no {self.currency} limits, so a second person must approve"
        self.append(
            TimelineEvent.FIRST_APPROVAL,
            self.p.state,
            reviewer,
            source,
            f"approved {self.money()} as {role}; {why}{checked}",
            issuer,
        )
        return True

    def own_refund_refusal(self, reviewer: str, action: str) -> str | None:
        """Four eyes: nobody decides on a refund they asked for themselves (invariant 10).
        Names compare without case and surrounding space, so "Cust_1 " is still cust_1."""
        request = self.inp.request
        if _same_person(reviewer, request.requested_by):
            return f"{reviewer} requested this refund and cannot {action} it: another person must"
        if request.submitted_by and _same_person(reviewer, request.submitted_by):
            return (
                f"{reviewer} submitted this refund for {request.requested_by} and cannot"
                f" {action} it: another person must"
            )
        return None

    def operator_refusal(self, action: OperatorDecision) -> str | None:
        """Operators act only on a refund that waits for one after a payment failure."""
        if self.p.awaiting is not Awaiting.OPERATOR or self.p.operator_action is not None:
            doing = (
                "mark it paid elsewhere" if action is OperatorDecision.PAID_ELSEWHERE else action
            )
            when = "after a payment failure"
            if action is OperatorDecision.CANCEL:
                when += " or while the provider's refund is pending"
            return f"cannot {doing}: {self._where_it_stands()}; operators act only {when}"
        return None

    def _where_it_stands(self) -> str:
        """The refund's state as an operator reads it in a refusal (no enum names)."""
        state, awaiting, chosen = self.p.state, self.p.awaiting, self.p.operator_action
        if state in (RefundState.COMPLETED, RefundState.CANCELLED):
            return f"the refund is {state.value} (closed)"
        if awaiting is Awaiting.OPERATOR and chosen is not None:
            return f"an operator has already chosen: {chosen.value.replace('_', ' ')}"
        who = wording.action_by(state, awaiting, None)
        retried = ""
        if awaiting is Awaiting.PAYMENT_PROVIDER and self.p.payment_attempt > 1:
            # A trial's paid-elsewhere lost the race to another operator's retry and read
            # only "waiting for the payment provider".
            retried = f" paying again on an operator's retry (attempt {self.p.payment_attempt}),"
        return f"the refund is {state.value},{retried} waiting for {who}"

    def auto_reason(self) -> str:
        limit = self.policy.approval.auto_approve_limit
        return f"auto-approved: {self.money()} is within the limit of {self.money(limit)}"


def _same_person(name: str, *others: str) -> bool:
    """Names as people type them: case and surrounding space do not make another person."""
    return any(name.strip().casefold() == other.strip().casefold() for other in others)
