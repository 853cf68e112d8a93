"""The words of a refund's status: one template per state and reason, in every locale.

Every channel takes its text from here and from nothing else: the workflow's status view
(`message`, `support_reply`), `refundflow track` (the customer's page), `refundflow status`
(the reply a support agent gives) and every notification in the outbox. All of them render
the same `MessageFacts` through `core_sentence()`, so the customer, the agent and the
notification say the same thing in the same words. Pure code: the workflow calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from workflows.facts import NO_ETA
from workflows.models import MessageFacts, StatusView, TimelineEntry
from workflows.money import format_minor
from workflows.policy import REVIEW_EXPIRY_LEVEL
from workflows.states import Awaiting, CancelReason, RefundEvent, RefundState, TimelineEvent
from workflows.templates import (
    ETA,
    ITEM_HELD,
    PARTIAL,
    REPLY,
    SITUATION_LABEL,
    STATE_LABEL,
    SUBJECT,
    TEMPLATES,
)

# --- rendering --------------------------------------------------------------------------


def template_key(facts: MessageFacts) -> str:
    """The one template a status is worded with: by state, then by reason or situation."""
    state = facts.state
    if facts.stopped and state in (RefundState.PENDING_REVIEW, RefundState.APPROVED):
        return "open.stopped"
    if state is RefundState.PENDING_REVIEW:
        if facts.received:
            return "pending_review.received"
        return "pending_review.escalated" if facts.escalation_level else "pending_review"
    if state is RefundState.APPROVED:
        return "approved.return_item" if facts.item_return_required else "approved"
    if state is RefundState.REFUNDING:
        if facts.payment_reversed:
            return "refunding.reversed"
        if facts.payment_failed:
            return "refunding.payment_failed"
        if facts.action_required:
            return "refunding.action_required"  # stopped too: what the customer must do
        if facts.stopped:
            return "refunding.stopped"
        return "refunding.escalated" if facts.escalation_level else "refunding"
    if state is RefundState.COMPLETED:
        return "completed.paid_elsewhere" if facts.paid_elsewhere else "completed"
    reason = facts.cancel_reason or CancelReason.WITHDRAWN
    if reason is CancelReason.WITHDRAWN and facts.cancelled_by_staff:
        return "cancelled.by_staff"
    return f"cancelled.{reason.value}"


def core_sentence(facts: MessageFacts) -> str:
    template = TEMPLATES[facts.locale][template_key(facts)]
    sentence = template.format(
        amount=format_minor(facts.amount, facts.currency),
        instructions=_sentence(facts.action_required or "", facts.locale),
    )
    if facts.declined_because and facts.locale == "en":  # the policy's rules speak English
        sentence += " " + _sentence(facts.declined_because, facts.locale)
    elif facts.declined_in_locale:  # the same reasons, in the customer's language
        sentence += facts.declined_in_locale
    if facts.item_held:
        sentence += ITEM_HELD[facts.locale]
    asked_amount = told_asked_amount(facts)
    if asked_amount is not None:
        asked = format_minor(asked_amount, facts.currency)
        sentence += PARTIAL[facts.locale].format(asked=asked)
    return sentence


def told_asked_amount(facts: MessageFacts) -> int | None:
    """What the customer asked for, when an approval was for less and nothing cancelled it:
    told beside the amount approved (None: the amount is what they asked for)."""
    return None if facts.state is RefundState.CANCELLED else facts.asked_amount


def _sentence(text: str, locale: str) -> str:
    """The provider's words as a whole sentence (they often end without a full stop)."""
    text = text.strip()
    if not text or text[-1] in ".!?\u3002\uff01\uff1f":  # also the full-width ones
        return text
    if text.split()[-1].startswith(("https://", "http://")):
        return text  # a stop after an address reads as part of it (a trial)
    return text + ("。" if locale == "zh-CN" else ".")


def eta_sentence(facts: MessageFacts) -> str:
    if facts.eta is None or facts.eta_kind is None:
        return ""
    words = ETA[facts.locale]
    earliest = facts.eta_earliest or facts.eta
    with_time = facts.eta - earliest < _ONE_DAY
    latest_text = _when(facts.eta, facts.locale, with_time)
    if facts.eta_kind == "review" and facts.escalation_level >= REVIEW_EXPIRY_LEVEL:
        # The last deadline is the expiry: "We aim to decide by" the moment it closes
        # undecided promised what the refund never does (a trial).
        return words["review.last"].format(latest=latest_text)
    if facts.eta_kind in ("review", "return"):
        return words[facts.eta_kind].format(latest=latest_text)
    earliest_text = _when(earliest, facts.locale, with_time)
    if earliest_text == latest_text:
        return words["payment.same"].format(latest=latest_text)
    return words["payment"].format(earliest=earliest_text, latest=latest_text)


def customer_message(facts: MessageFacts) -> str:
    """What the customer reads on the tracking page."""
    return _join(facts.locale, core_sentence(facts), eta_sentence(facts))


def support_reply(facts: MessageFacts) -> str:
    """What a support agent tells the customer: the customer's message, framed."""
    eta = eta_sentence(facts)
    return REPLY[facts.locale].format(
        core=core_sentence(facts),
        eta=(" " + eta if facts.locale == "en" else eta) if eta else "",
        refund_id=facts.refund_id,
    )


def notification(facts: MessageFacts) -> dict[str, str]:
    """A message sent to the customer when the refund changes state."""
    label = status_label(facts)
    return {
        "locale": facts.locale,
        "template": template_key(facts),
        "subject": SUBJECT[facts.locale].format(order_id=facts.order_id, label=label),
        "body": customer_message(facts),
    }


def withdrawal(timeline: Sequence[TimelineEntry]) -> TimelineEntry | None:
    """The entry that withdrew the refund (who did it), if it was withdrawn."""
    return next((e for e in reversed(timeline) if e.event == RefundEvent.WITHDRAW), None)


def closed_because(status: StatusView) -> str:
    """Why a cancelled refund closed, as staff read it (empty while it is open): a
    withdrawal says who withdrew it, since "withdrawn" alone reads as the customer's doing
    when support or an operator in Temporal did it (and the customer is told so)."""
    if status.cancel_reason is None:
        return ""
    if status.cancel_reason is not CancelReason.WITHDRAWN:
        return status.cancel_reason.value
    entry = withdrawal(status.timeline)
    if entry is None:
        return status.cancel_reason.value
    if status.facts is not None and status.facts.cancelled_by_staff:
        return f"by {entry.actor}, not by the customer"
    return f"withdrawn by {entry.actor}"


def state_label(state: RefundState, locale: str) -> str:
    return STATE_LABEL[locale][state]


def status_label(facts: MessageFacts) -> str:
    """The refund's status in a few words: the situation when there is one (a refund the
    provider took back is "returned by the payment provider", not "on its way"), else the
    state. The label of the customer's latest notice and of their tracking page alike."""
    return SITUATION_LABEL[facts.locale].get(template_key(facts)) or state_label(
        facts.state, facts.locale
    )


def as_read_at(status: StatusView, now: datetime) -> StatusView:
    """The status as read at `now`: an ETA already past is not told, in the customer's
    message, the support reply or the ETA fields (a review: the tracking page dropped it, the
    console and `status` still read the customer a window that had ended). A status is
    written when the refund changes, and a pending one may not change for days."""
    facts = status.facts
    if facts is None or facts.eta is None:
        return status
    if facts.eta >= now:
        return status
    facts = facts.model_copy(update=NO_ETA)
    told = {"message": customer_message(facts), "support_reply": support_reply(facts)}
    return status.model_copy(update={"facts": facts, **told, **NO_ETA})


def customer_view(status: StatusView, now: datetime | None = None) -> dict[str, Any]:
    """The tracking page: only what the customer may see. No staff names, internal reasons,
    escalation levels, provider ids or policy internals. `now`: when it is read; a date
    already past by then is not told (a trial read "should reach you between 29 Nov and 29
    Nov" on 2 Dec, the provider still holding the refund)."""
    if now is not None:
        status = as_read_at(status, now)
    facts = status.facts
    # Every status the workflow answers carries its facts (queries run the current code).
    assert facts is not None, "a status without facts"
    asked_amount = told_asked_amount(facts)
    return {
        "refund_id": status.refund_id,
        "order_id": status.order_id,
        "locale": facts.locale,
        "status": status_label(facts),
        # What the customer is told: a first approver's cut (of two) is not theirs yet.
        "amount": facts.amount,
        "currency": status.currency,
        # Only after an approval for less: left out otherwise, as /track leaves it out.
        **({} if asked_amount is None else {"asked_amount": asked_amount}),
        "message": customer_message(facts),
        "eta": facts.eta.isoformat() if facts.eta else None,
        "eta_earliest": facts.eta_earliest.isoformat() if facts.eta_earliest else None,
        "eta_kind": facts.eta_kind,
        "timeline": customer_timeline(status.timeline, facts.locale),
    }


def kept_receipt_entry(timeline: Sequence[Any]) -> int | None:
    """The entry of a returned item received before the approval (None: there is none):
    the workflow's refusal of a second receipt, the console's and the CLI's warnings."""
    return next((e.seq for e in timeline if e.event == TimelineEvent.ITEM_RECEIVED.value), None)


_CUSTOMER_SITUATIONS = {
    RefundEvent.PROVIDER_REVERSED.value: "refunding.reversed",
    TimelineEvent.PROVIDER_REQUIRES_ACTION.value: "refunding.action_required",
    TimelineEvent.ITEM_RECEIVED.value: "item_received",
}
"""Entries the customer's timeline shows in their own words: a paid refund the provider
took back (not "on its way"), the provider asking them to act (a trial read only "on its
way" under the page's "action needed"), and their returned item received before the
refund's approval (a trial: invisible to them while the refund waited for review)."""


def customer_timeline(entries: list[Any], locale: str) -> list[dict[str, str]]:
    """State changes only, and the situations above, without actors, internal reasons or
    escalations."""
    shown = []
    for entry in entries:
        situation = _CUSTOMER_SITUATIONS.get(entry.event)
        if situation is not None:
            label = SITUATION_LABEL[locale][situation]
        elif entry.from_state is None or entry.from_state != entry.state:
            label = state_label(entry.state, locale)
        else:
            continue
        shown.append({"at": entry.at.isoformat(), "label": label})
    return shown


# --- staff wording (English: support and operators) ---------------------------------------

_NEXT_STEP: dict[tuple[RefundState, Awaiting], str] = {
    # Just started (a request answered before its first step): nobody has decided yet.
    (RefundState.PENDING_REVIEW, Awaiting.NOTHING): (
        "The request is checked against the order and the policy; then the policy approves"
        " it or a reviewer decides."
    ),
    (RefundState.PENDING_REVIEW, Awaiting.REVIEWER): "A reviewer approves or rejects the refund.",
    (RefundState.APPROVED, Awaiting.CUSTOMER): "The customer sends the item back.",
    (RefundState.APPROVED, Awaiting.WAREHOUSE): "The warehouse confirms the item was received.",
    (RefundState.APPROVED, Awaiting.NOTHING): "The refund is sent to the payment provider.",
    (RefundState.REFUNDING, Awaiting.PAYMENT_PROVIDER): "The payment provider pays the refund.",
    (RefundState.REFUNDING, Awaiting.OPERATOR): (
        "An operator retries the refund, cancels it (once the payment provider shows none of it"
        " paid) or records a payment made another way."
    ),
}

_ACTION_BY: dict[Awaiting, str] = {
    Awaiting.REVIEWER: "a reviewer (support staff)",
    Awaiting.CUSTOMER: "the customer: send the item back",
    Awaiting.WAREHOUSE: "the warehouse: confirm the item was received",
    Awaiting.PAYMENT_PROVIDER: "the payment provider (nothing for staff to do)",
    Awaiting.OPERATOR: "an operator: retry, cancel, or mark it paid elsewhere",
    Awaiting.NOTHING: "nobody: the refund moves on by itself",
}


_PROVIDER_LATE = (
    "the payment provider, past the refund SLA (escalated): staff follow it up with the provider"
)
"""A trial: escalated while the provider held the refund, staff read "nothing for staff to
do" where the customer read "our team is following it up"."""

_CUSTOMER_ASKED_NEXT = (
    "The customer does what the payment provider asks of them; then the provider pays the refund."
)
_CUSTOMER_ASKED_BY = "the customer, as the payment provider asks (nothing for staff to do)"
"""While the provider waits for the customer (a `requires_action` answer): a trial read "the
payment provider (nothing for staff to do)" and "The payment provider pays the refund"."""


OPERATOR_DECIDES = (
    "the refund waits for an operator's decision on its payment (refused, failed or taken back)"
)
"""Why a cancellation from Temporal in an operator's wait is refused (refund/temporal_cancel.py);
staff's status recognises the refusal by it (client/render.py)."""
OPERATOR_CANCELS = "an operator cancels it with `refundflow operator cancel`"

ETA_DUE = {"review": "decision due by", "payment": "money arrives by", "return": "item due back by"}
"""What a refund's ETA is the deadline of, by `eta_kind`, in staff's words."""


def next_step(state: RefundState, awaiting: Awaiting, customer_asked: bool = False) -> str:
    """What happens next; `customer_asked`: the provider waits for the customer."""
    if customer_asked and awaiting is Awaiting.PAYMENT_PROVIDER:
        return _CUSTOMER_ASKED_NEXT
    if state is RefundState.COMPLETED:
        return "Nothing: the refund has been paid."
    if state is RefundState.CANCELLED:
        return "Nothing: the refund is closed."
    return _NEXT_STEP.get((state, awaiting), "The refund moves on by itself.")


def action_by(
    state: RefundState,
    awaiting: Awaiting,
    approval_by: str | None,
    approved_once_by: str = "",
    four_eyes: bool = False,
    customer_asked: bool = False,
    escalation: int = 0,
) -> str:
    """Who acts next; `approved_once_by`: the first of two approvers (four eyes), who may not
    be the second; `four_eyes`: two different people must approve, and none has yet;
    `customer_asked`: the payment provider waits for the customer; `escalation`: the
    refund's level (a provider past the refund SLA is staff's to chase)."""
    if state in (RefundState.COMPLETED, RefundState.CANCELLED):
        return "nobody: the refund is closed"
    if customer_asked and awaiting is Awaiting.PAYMENT_PROVIDER:
        return _CUSTOMER_ASKED_BY
    if awaiting is Awaiting.PAYMENT_PROVIDER and escalation:
        return _PROVIDER_LATE
    role = f" with the {approval_by} role or above" if approval_by else ""
    if awaiting is Awaiting.REVIEWER and approved_once_by:
        return f"a second reviewer{role}, not {approved_once_by} (who approved it first)"
    if awaiting is Awaiting.REVIEWER and four_eyes:
        return f"two different reviewers{role}"
    if awaiting is Awaiting.REVIEWER and approval_by:
        return f"a reviewer with the {approval_by} role or above"
    return _ACTION_BY[awaiting]


def first_approver(status: StatusView) -> str:
    """Who approved a refund that waits for a second approver (four eyes); empty when it
    does not wait for one."""
    if status.state is not RefundState.PENDING_REVIEW:
        return ""
    firsts = [e.actor for e in status.timeline if e.event == TimelineEvent.FIRST_APPROVAL]
    return firsts[-1] if firsts else ""


# --- helpers ------------------------------------------------------------------------------

_ONE_DAY = timedelta(days=1)
# Not strftime("%b"): that follows the process locale; the wording must not.
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def _when(moment: datetime, locale: str, with_time: bool) -> str:
    if locale == "zh-CN":
        text = f"{moment.year}年{moment.month}月{moment.day}日"
        return text + f" {moment:%H:%M} (UTC)" if with_time else text
    text = f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"
    return text + f" {moment:%H:%M} UTC" if with_time else text


def _join(locale: str, *sentences: str) -> str:
    separator = "" if locale == "zh-CN" else " "
    return separator.join(s for s in sentences if s)
