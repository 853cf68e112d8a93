"""What a refund looks like from outside: status, message facts, ETA, projection, details.

Pure functions of a RefundCase: the query, the audit projection, the Web UI's current
details and every notification are built here, from the same state (invariant 6).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from workflows import decline_words, wording
from workflows.models import MessageFacts, StatusProjection, StatusView
from workflows.policy import REVIEW_EXPIRY_LEVEL
from workflows.states import Awaiting, CancelReason, RefundState

if TYPE_CHECKING:
    from workflows.refund.case import RefundCase


def eta(case: RefundCase) -> tuple[datetime | None, datetime | None, str | None]:
    """(earliest, latest, kind): a review decision is due by the next deadline of the
    policy's ladder; a returned item by the end of its window; the money arrives within the
    payment rail's settlement time after it is sent (or, once paid, after the payment). A
    payment an operator made another way has no rail to time it by."""
    p = case.p
    if received(case):
        return None, None, None  # no review to wait for: the approval follows at once
    if p.state is RefundState.PENDING_REVIEW:
        if p.item_received and p.escalation >= REVIEW_EXPIRY_LEVEL:
            return None, None, None  # the expiry: a kept receipt holds it off (no date)
        return None, p.requested_at + case.policy.review_deadline(p.escalation), "review"
    if p.state is RefundState.APPROVED and awaits_item(case):
        # A trial: the customer was asked for the item without a date, then read "closed:
        # the item was not returned in time". The window's timer starts once the approval
        # is recorded, so its end is never before the date told.
        window = timedelta(days=case.policy.refund.item_return_window_days)
        approved_at = next(
            (
                e.at
                for e in reversed(p.timeline)
                if e.state is RefundState.APPROVED and e.from_state is not RefundState.APPROVED
            ),
            case.clock(),
        )
        return None, approved_at + window, "return"
    rail = case.policy.settlement_for(case.inp.order.payment_rail)
    if p.state is RefundState.REFUNDING and _provider_took_it(case):
        earliest, latest = rail.window(p.refunding_since or case.clock())
        return earliest, latest, "payment"
    if p.state is RefundState.COMPLETED and not p.paid_elsewhere:
        paid_at = p.timeline[-1].at if p.timeline else case.clock()
        earliest, latest = rail.window(paid_at)
        return earliest, latest, "payment"
    return None, None, None


def told_escalation(case: RefundCase) -> int:
    """The level the customer is told: a refund the provider has within its settlement SLA
    is on track, whatever staff were alerted to meanwhile (a cancellation refused in
    Temporal: the customer read "taking longer than expected at the payment provider" of a
    refund on time, a review)."""
    p = case.p
    if p.state is not RefundState.REFUNDING or p.awaiting is Awaiting.OPERATOR:
        return p.escalation
    # Not started yet (the notice of the refund's start: a staff matter such as an audit
    # conflict read "taking longer than expected at the payment provider", a review), or
    # within the settlement SLA: on track.
    if p.refunding_since is None or case.clock() - p.refunding_since < case.policy.refund_sla:
        return 0
    return p.escalation


def _provider_took_it(case: RefundCase) -> bool:
    """The payment is with the provider, which took it, and waits for nobody else: only then
    are arrival dates told. Not while it is sent (a refusal may follow in a second), not
    while the customer must act (the dates count from when they do), not for an operator."""
    p = case.p
    waiting = p.awaiting is Awaiting.PAYMENT_PROVIDER and p.provider_instructions is None
    return waiting and not p.sent_unanswered


def awaits_item(case: RefundCase) -> bool:
    """Whether the refund, once approved, waits for its returned item: its policy pays once
    the item is back, and no receipt was kept from before the approval (`item_return`)."""
    awaits = case.policy.refund.awaits_item(case.inp.request.reason_code)
    return awaits and not case.p.item_received


def first_step_decided(case: RefundCase) -> bool:
    """Whether the refund has checked its request and decided who acts next (the
    requester's answer waits for this: `RefundWorkflow.first_step`)."""
    p = case.p
    return not (p.state is RefundState.PENDING_REVIEW and p.awaiting is Awaiting.NOTHING)


def received(case: RefundCase) -> bool:
    """Just asked, and nobody asked to act yet: the policy's verdict and the hold follow in
    moments. Told "received", without a review date: a refund the policy approves or
    declines moves on at once (a declined one was told "waiting for review, a decision is
    due by …", a trial), and one for a reviewer is told again once it waits for one
    (`RefundCase.retell_request`)."""
    return not first_step_decided(case) and not case.p.escalation


def declined_because(case: RefundCase) -> str | None:
    """The policy's reasons for declining the refund, as its rules word them (the return
    window, a final sale): terms the customer agreed to, no internal control."""
    if not _declined(case):
        return None
    return decline_words.in_english(case.decision.failed)


def declined_in_locale(case: RefundCase) -> str | None:
    """The same reasons in the customer's language, when it is not English."""
    if not _declined(case):
        return None
    order, locale = case.inp.order, case.inp.request.locale
    return decline_words.in_locale(case.decision.failed, case.policy, order, locale)


def _declined(case: RefundCase) -> bool:
    p = case.p
    return p.state is RefundState.CANCELLED and p.cancel_reason is CancelReason.INELIGIBLE


def cancelled_by_staff(case: RefundCase) -> bool:
    """Withdrawn by someone other than who asked for the refund or submitted it for them:
    support, or an operator in Temporal. (Names compare as the four-eyes rule compares them.
    A service withdraws for the customer: the API says so, CancelInput.for_customer.)"""
    p = case.p
    if p.state is not RefundState.CANCELLED or p.cancel_reason is not CancelReason.WITHDRAWN:
        return False
    if p.withdrawn_for_customer:
        return False
    entry = wording.withdrawal(p.timeline)
    request = case.inp.request
    askers = {n.strip().casefold() for n in (request.requested_by, request.submitted_by) if n}
    return entry is not None and entry.actor.strip().casefold() not in askers


def asked_for_more(case: RefundCase) -> int | None:
    """What the customer asked for (before any fee), once a reviewer approved less than the
    request allows; else None."""
    p = case.p
    paying = p.state in (RefundState.APPROVED, RefundState.REFUNDING, RefundState.COMPLETED)
    return case.inp.resolved.amount if paying and p.amount < p.max_amount else None


def _first_approver(case: RefundCase) -> str:
    """Who gave the first of two approvals, while the refund waits for the second."""
    p = case.p
    return p.approvals[0] if p.approvals and p.state is RefundState.PENDING_REVIEW else ""


def _pending_at_the_provider(case: RefundCase) -> str | None:
    """The provider refund a refund waits on (pending, or the customer must act): staff's
    status said null while its timeline named it (a trial)."""
    return case.p.waits_on if case.p.state is RefundState.REFUNDING else None


def _who_acts(case: RefundCase) -> str:
    p = case.p
    four_eyes = case.needs_second_approver(p.amount)
    first = _first_approver(case)
    asked = p.provider_instructions is not None
    return wording.action_by(
        p.state,
        p.awaiting,
        case.decision.approval_by,
        first,
        four_eyes,
        customer_asked=asked,
        # Late with the provider as the customer is told: a level raised for another reason
        # (a refused cancel within the SLA) is no lateness to chase (a review).
        escalation=told_escalation(case),
    )


def told_amount(case: RefundCase) -> int:
    """The amount the customer's words name: the request's (after fees) until it is finally
    approved, and of a refund that closed without paying; then what it pays. The first of
    two approvers may approve less: that is not yet the customer's refund."""
    p = case.p
    unpaid = p.state is RefundState.CANCELLED and p.cancel_reason is not CancelReason.PAYMENT_FAILED
    return p.max_amount if p.state is RefundState.PENDING_REVIEW or unpaid else p.amount


def facts(case: RefundCase) -> MessageFacts:
    earliest, latest, kind = eta(case)
    if latest is not None and latest < case.clock():
        # A date already past is no ETA: the provider still holding the refund past its
        # rail's window, the escalation's notice told the customer that window (a trial).
        earliest, latest, kind = None, None, None
    p = case.p
    return MessageFacts(
        refund_id=case.inp.refund_id,
        order_id=case.inp.order.order_id,
        state=p.state,
        cancel_reason=p.cancel_reason,
        amount=told_amount(case),
        currency=case.currency,
        locale=case.inp.request.locale,
        escalation_level=told_escalation(case),
        item_return_required=p.state is RefundState.APPROVED and awaits_item(case),
        payment_failed=p.awaiting is Awaiting.OPERATOR,
        payment_reversed=p.awaiting is Awaiting.OPERATOR and p.reversal_open,
        received=received(case),
        cancelled_by_staff=cancelled_by_staff(case),
        declined_because=declined_because(case),
        declined_in_locale=declined_in_locale(case),
        asked_amount=asked_for_more(case),
        paid_elsewhere=True if p.state is RefundState.COMPLETED and p.paid_elsewhere else None,
        item_held=True if p.state is RefundState.CANCELLED and p.item_received else None,
        action_required=p.provider_instructions
        if p.awaiting is Awaiting.PAYMENT_PROVIDER
        else None,
        eta=latest,
        eta_earliest=earliest,
        eta_kind=kind,
    )


def status(case: RefundCase) -> StatusView:
    """The one status object every channel renders from."""
    told = facts(case)
    p, inp, decision = case.p, case.inp, case.decision
    notes = [o.message for o in decision.outcomes]
    if p.operator_note and p.state is not RefundState.COMPLETED:
        # Not "Payment provider:": the note may be refundflow's own guard's, which the
        # provider never saw (a trial read the guard's words under the provider's name).
        # Not on a paid refund either: a trial read an old refusal on one paid elsewhere.
        notes.append(f"Payment: {p.operator_note}")
    if first := _first_approver(case):
        notes.append(f"Approved by {first}; a second, different person must approve.")
    return StatusView(
        refund_id=inp.refund_id,
        refund_key=inp.request.refund_key,
        order_id=inp.order.order_id,
        state=p.state,
        cancel_reason=p.cancel_reason,
        amount=p.amount,
        requested_amount=inp.resolved.amount,
        currency=case.currency,
        awaiting=p.awaiting,
        escalation_level=p.escalation,
        policy_version=inp.policy.label,
        reason_code=inp.request.reason_code,
        channel=inp.request.channel,
        evidence_required=decision.evidence_required,
        evidence=p.evidence,
        provider_refund_id=p.provider_refund_id or _pending_at_the_provider(case),
        provider_failure=p.operator_note if p.awaiting is Awaiting.OPERATOR else None,
        requested_by=inp.request.requested_by,
        submitted_by=inp.request.submitted_by,
        timeline=list(p.timeline),
        next_step=wording.next_step(p.state, p.awaiting, p.provider_instructions is not None),
        eta=told.eta,
        message=wording.customer_message(told),
        policy_notes=notes,
        locale=told.locale,
        action_by=_who_acts(case),
        eta_earliest=told.eta_earliest,
        eta_kind=told.eta_kind,
        payment_rail=inp.order.payment_rail,
        fee=decision.fee,
        approval_by=decision.approval_by,
        support_reply=wording.support_reply(told),
        facts=told,
    )


def projection(case: RefundCase) -> StatusProjection:
    """The row the read side (list, report) keeps for this refund."""
    p, inp = case.p, case.inp
    return StatusProjection(
        refund_id=inp.refund_id,
        refund_key=inp.request.refund_key,
        order_id=inp.order.order_id,
        state=p.state,
        amount=p.amount,
        currency=case.currency,
        awaiting=p.awaiting,
        escalation_level=p.escalation,
        policy_version=inp.policy.label,
        reason_code=inp.request.reason_code,
        channel=inp.request.channel,
        requested_at=p.requested_at,
        updated_at=case.clock(),
        item_received=p.item_received,
    )


def details(case: RefundCase) -> str:
    """The Web UI's current details (Markdown): what an operator needs without a query."""
    p, decision = case.p, case.decision
    amount = case.money()
    if decision.fee:
        amount += (
            f" (requested {case.money(case.inp.resolved.amount)}, fee {case.money(decision.fee)})"
        )
    lines = [
        f"**{p.state.value}** · {amount} · order {case.inp.order.order_id}",
        f"awaiting: {p.awaiting.value} · escalation level {p.escalation}",
        f"who acts: {_who_acts(case)}",
        f"next: {wording.next_step(p.state, p.awaiting, p.provider_instructions is not None)}",
    ]
    _, latest, kind = eta(case)
    if latest is not None:
        # returns-v1's item deadline read "money arrives by" here before it had its own kind.
        lines.append(f"{wording.ETA_DUE.get(kind or '', 'due by')} {latest:%Y-%m-%d %H:%M} UTC")
    if p.operator_note and p.awaiting is Awaiting.OPERATOR:
        lines.append(f"payment failure: {p.operator_note}")
    lines.append(f"policy: {case.inp.policy.label}")
    return "\n\n".join(lines)


def as_payment_starts(case: RefundCase) -> StatusView:
    """The status as the payment that follows starts: with the provider, sent, no arrival
    dates yet (a trial's answer to `received` read "refunding, awaiting the customer: send
    the item back"). Only the answer: the state itself is the payment's to set (a review:
    set in a handler, it reached a search-attribute upsert of an existing history's
    shape on one path)."""
    p = case.p
    kept = (p.awaiting, p.sent_unanswered, p.refunding_since)
    p.awaiting, p.sent_unanswered, p.refunding_since = (
        Awaiting.PAYMENT_PROVIDER,
        True,
        case.clock(),
    )
    try:
        return status(case)
    finally:
        p.awaiting, p.sent_unanswered, p.refunding_since = kept
