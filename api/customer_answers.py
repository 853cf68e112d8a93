"""What a customer is told: a refund in their own words (the tracking view, also the answer
to their own request), and answers about an order that never name another customer's refund.

Why the names are taken out: the ledger's refusals ("already held or refunded by rf_…") and
eligibility's `held_by` name the refunds that hold an order's units, for support to look at.
A customer asks only about their own orders, but a refund on one of them may still be
someone else's (made before orders had an owner, or before refundflow refused a request for
anyone but the order's customer): its id is not theirs to know, so it becomes "another
refund".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from api import listing
from api.deps import ApiState
from api.identity import Principal, PrincipalKind
from api.internal_controls import without_internal_controls
from client.errors import RefundflowError
from client.review_context import as_stopped
from workflows.eligibility import EligibilityAnswer
from workflows.models import StatusView
from workflows.read_models import CustomerView
from workflows.states import TERMINAL_STATES
from workflows.wording import customer_view

REFUND_ID = re.compile(r"\brf_[0-9a-f]{24}\b")
NOT_NAMED = "another refund"
# Whose a refund is: who asked, exactly (api/listing.asked_by: its first audit entry, or
# its opening status before that). Not the hold's requester, kept case-folded for budgets:
# CUST_42 would have read cust_42's refund ids. A refund held but not started yet is then
# not named even to its own customer (a moment; nothing is told that is not theirs).
_THEIRS = f"""
SELECT s.refund_id FROM refundflow.refund_status s
WHERE s.refund_id = ANY($1::text[]) AND {listing.asked_by("s", "$2")}
"""


# A refund Temporal ended before it ended, in the customer's words: asked again under its
# key, and acted on (no refund ids, no Temporal).
ENDED_FOR_CUSTOMER = (
    # Not "our team closes it shortly": one the provider was already paying may complete as
    # paid instead (a trial).
    "your earlier request for this refund was stopped before it finished; our team is"
    " checking it and will tell you how it ends (if it was already on its way to you, it may"
    " still be paid). If it is closed unpaid, you can ask again with a new key (the"
    " Idempotency-Key header; the CLI's --key): until it is closed, it still holds what it"
    " asked for"
)
STOPPED_FOR_CUSTOMER = (
    "refused: this refund request was stopped by our team and can no longer be changed; we"
    " will tell you what happens to it"
)


async def as_it_stands(api: ApiState, status: StatusView) -> StatusView:
    """The status a customer, and staff's GET of one refund, is shown. A refund whose
    workflow Temporal ended before the refund ended (terminated in the Web UI, timed out)
    keeps its last record until reconciliation closes it or escalates it to a person: the
    customer reads that it is with our team, without an ETA, not a decision due by a date
    that cannot come; staff read that nothing but reconciliation moves it."""
    if status.state in TERMINAL_STATES or status.facts is None:
        return status
    try:
        ended = await api.refunds.abnormal_end(status.refund_id)
    except RefundflowError:  # Temporal unreachable: the record is the best word there is
        return status
    return status if ended is None else as_stopped(status)


WORDED_FACTS = ("stopped", "item_held", "declined_in_locale")
"""Facts added since clients of earlier releases were made, each already worded into the
status's message and reply: left out of the API's answer, since such a client refuses
facts it does not know (a review; docs/deployment.md: the API first, its readers after)."""


def for_the_wire(status: StatusView) -> StatusView:
    """`status` as the API answers it: without the WORDED_FACTS."""
    facts = status.facts
    if facts is None or not any(getattr(facts, name) for name in WORDED_FACTS):
        return status
    worded = facts.model_copy(update=dict.fromkeys(WORDED_FACTS))
    return status.model_copy(update={"facts": worded})


def customers_view(status: StatusView) -> CustomerView:
    return CustomerView.model_validate(customer_view(status, datetime.now(UTC)))


def as_seen_by(who: Principal, status: StatusView) -> StatusView | CustomerView:
    """A refund as the caller may see it: a customer in their own words, as `track` shows it
    (the status object names staff, their reasons and the policy's notes); others whole."""
    return customers_view(status) if who.kind is PrincipalKind.CUSTOMER else status


async def others_refunds(api: ApiState, customer: str, texts: list[str]) -> set[str]:
    """The refund ids named in `texts` that are not `customer`'s."""
    named = {found for text in texts for found in REFUND_ID.findall(text)}
    if not named:
        return set()
    pool = (await api.refunds.store()).pool
    rows = await pool.fetch(_THEIRS, sorted(named), customer)
    return named - {row["refund_id"] for row in rows}


def _unnamed(text: str, others: set[str]) -> str:
    return REFUND_ID.sub(lambda m: NOT_NAMED if m.group(0) in others else m.group(0), text)


async def said_to_customer(api: ApiState, customer: str, message: str) -> str:
    """`message` (a refusal) with other customers' refunds not named."""
    return _unnamed(message, await others_refunds(api, customer, [message]))


async def eligibility_for_customer(
    api: ApiState, customer: str, answer: EligibilityAnswer
) -> EligibilityAnswer:
    """`answer` as `customer` may read it: no internal control (budgets, limits, roles),
    and other customers' refunds not named anywhere."""
    answer = without_internal_controls(answer)
    made = [answer.already_made] if answer.already_made else []
    texts = [answer.summary, *answer.held_by, *made, *(rule.message for rule in answer.rules)]
    others = await others_refunds(api, customer, texts)
    if not others:
        return answer
    hidden = answer.already_made in others
    return answer.model_copy(
        update={
            "already_made": None if hidden else answer.already_made,
            "already_made_state": None if hidden else answer.already_made_state,
            "summary": _unnamed(answer.summary, others),
            "held_by": [r for r in answer.held_by if r not in others],
            "rules": [
                rule.model_copy(update={"message": _unnamed(rule.message, others)})
                for rule in answer.rules
            ],
        }
    )
