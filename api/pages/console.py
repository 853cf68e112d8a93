"""The support console: the queue of refunds that need a person, and a refund's page with
everything a reviewer weighs (state and timeline, the customer's words and the reply to
give, the policy's rules under the pinned version, the order's ledger, events and their
deliveries, the audit trail) and the actions the signed-in person may take.

Reads go through RefundClient and the store, as the JSON API's do; every page is for staff
only (api/authz.py decides, as for the API).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from temporalio.client import WorkflowQueryFailedError

from api.authz import Action, Decision, decide, same_person
from api.deps import ApiState, facts, state
from api.identity import Principal
from api.pages import queue, queue_filters
from api.pages.security import protect, tracking_query
from api.pages.signin import NOT_DONE, pages, signed_in, to_signin
from api.schemas import RefundPath
from client.errors import RefundflowError
from client.refund_ids import pasted_refund_id
from client.render import cancel_refused
from client.review_context import (
    ESCALATED_WHEN_ENDED,
    RECONCILIATION_CLOSES,
    as_stopped,
    escalated_when_ended,
    review_context,
)
from workflows import names
from workflows.models import CHANNELS, StatusView
from workflows.policy import evaluate, policy_for
from workflows.refund.case import ContinuedRefundInput, asked_at
from workflows.rules import RuleOutcome
from workflows.states import Awaiting, RefundState
from workflows.vocabulary import FREE_TEXT_MAX_CHARS
from workflows.wording import customer_message, first_approver, support_reply

log = structlog.get_logger("refundflow.api.pages")
router = APIRouter(include_in_schema=False)
Field = Annotated[str, Query(max_length=2048)]
"""Long enough for anything pasted: a value the queue cannot use is named on the page."""
REJECT_REASONS = {
    "not_eligible": "Not eligible under the policy",
    "no_evidence": "Evidence missing or not convincing",
    "item_not_returned": "The item was not returned",
    "duplicate_request": "Already refunded or asked twice",
    "suspected_abuse": "Suspected abuse",
    "other": "Other (say why in the note)",
}
"""Why a reviewer rejects: the code leads the reason recorded in the audit."""
REJECT_NOTE_MAX_CHARS = FREE_TEXT_MAX_CHARS - max(len(f"{code}: ") for code in REJECT_REASONS)
"""A rejection's note is recorded after its code: what is left of the reason's length."""


@router.get("/console")
async def queue_page(
    request: Request,
    state_: Annotated[str, Query(alias="state", max_length=2048)] = "",
    awaiting: Field = "person",
    escalated: Field = "",
    order: Field = "",
    customer: Field = "",
    channel: Field = "",
    amount_min: Field = "",
    amount_max: Field = "",
    currency: Field = "",
    cursor: Annotated[str, Query(max_length=8192)] = "",
) -> Response:
    """The queue; an empty filter (a form sends every field) filters nothing, and one that
    cannot apply is named on the page (api/pages/queue_filters.py)."""
    who = await signed_in(request)
    if who is None:
        return to_signin(request)
    if pasted := pasted_refund_id(order) or pasted_refund_id(customer):
        # A refund id typed where an order or a customer goes (a trial: "no refund
        # matches"): its page, as the address bar takes one.
        return protect(RedirectResponse(f"/console/refunds/{pasted}", 303))
    typed = queue_filters.Typed(
        state_, awaiting, escalated, order, customer, channel, amount_min, amount_max,
        currency, cursor,
    )  # fmt: skip
    repeated = {
        name: request.query_params[name]  # the value FastAPI passed: the last
        for name in queue_filters.LABELS
        if len(request.query_params.getlist(name)) > 1
    }
    unknown = [name for name in request.query_params if name not in queue_filters.LABELS]
    asked = queue_filters.read(typed, repeated, unknown)
    filters = asked.filters
    found = await queue.page(state(request), filters, asked.cursor)
    params = {k: v for k, v in request.query_params.items() if k != "cursor"}
    return pages(request).render(
        request,
        "queue.html",
        who=who,
        filters=filters,
        amount_min=amount_min,
        amount_max=amount_max,
        ignored=asked.ignored,
        page=found,
        more_query=params,
        states=[s.value for s in RefundState],
        awaitings=[a.value for a in Awaiting],
        channels=CHANNELS,
        first_page=asked.cursor is None,
    )


WORKER_PATIENCE = timedelta(seconds=5)
"""How long the refund's page waits for its worker to answer the rule table (a trial: 32 s
with the worker paused; a long history not in its cache replays in less); then the status's
notes stand in for it."""


async def policy_explanation(api: ApiState, refund_id: str) -> list[RuleOutcome] | None:
    """Every rule, passed or failed, as the workflow decided it (its `policy_rules`; from a
    worker without that query, the pinned policy applied again, pure, to the refund's own
    start input, as of its request). None when the closed workflow is no longer in
    Temporal (the status's notes are then all there is)."""
    handle = api.refunds.temporal.get_workflow_handle(refund_id)
    try:
        decided: list[RuleOutcome] = await handle.query(
            names.QUERY_POLICY_RULES, result_type=list[RuleOutcome], rpc_timeout=WORKER_PATIENCE
        )
        return decided
    except WorkflowQueryFailedError as err:
        if "expected but not found" not in str(err):  # not an older worker's answer
            log.info("pages.policy_unexplained", refund_id=refund_id, error=str(err)[:80])
            return None
        log.info("pages.policy_rules_unasked", refund_id=refund_id)  # an older worker
    except Exception as err:
        log.info("pages.policy_unexplained", refund_id=refund_id, error=type(err).__name__)
        return None
    try:
        inp = await handle.query(
            names.QUERY_CARRY_OVER, result_type=ContinuedRefundInput, rpc_timeout=WORKER_PATIENCE
        )
    except Exception as err:  # a query that cannot be answered leaves the notes to show
        log.info("pages.policy_unexplained", refund_id=refund_id, error=type(err).__name__)
        return None
    policy = policy_for(inp.policy.document, inp.resolved.currency)
    when = asked_at(inp, inp.carried.requested_at)
    return evaluate(policy, inp.order, inp.resolved, inp.request.reason_code, when).outcomes


def version(status: StatusView) -> str:
    """Changes whenever anything on the refund's page would: the poller compares it."""
    seen = f"{status.state}|{status.awaiting}|{status.escalation_level}|{len(status.timeline)}"
    return hashlib.sha256(seen.encode()).hexdigest()[:16]


FIRST_APPROVAL_DONE = "first_approval"
RETRY_REFUSED_AGAIN = "retry_refused"
NOTICES = {
    FIRST_APPROVAL_DONE: "Your approval is recorded. A second, different person must approve"
    " before any money moves.",
    # Not "Done: the payment is tried again." over a refusal (a trial; the CLI exits 3).
    RETRY_REFUSED_AGAIN: "The payment was tried again and did not go through: the refund"
    " still waits for an operator (the payment failure below says why).",
    NOT_DONE: "What you sent before signing in was not done: do it again if it is still needed.",
}


DONE = {
    "approve": "approved",
    "reject": "rejected",
    "cancel": "withdrawn",
    "operator_retry": "the payment is tried again",
    "operator_cancel": "cancelled by the operator",
    "operator_paid_elsewhere": "marked paid elsewhere",
}
"""What the page says after each action, in the words of its button (a trial read "Done:
cancel." after pressing Withdraw)."""


def available(who: Principal, status: StatusView, api: ApiState) -> dict[str, Decision]:
    """The actions this refund can take now, each with whether `who` may (and why not)."""
    refund = facts(api, status)
    decisions = {a.value: decide(who, a, refund) for a in possible_actions(status)}
    approving = decisions.get(Action.APPROVE.value)
    if approving is not None and not approving.allowed and who.approver_role:
        # A lower amount would not do either (a trial typed 200.00 into a form left open).
        decisions[Action.APPROVE.value] = Decision(
            False, f"{approving.reason}; approving less decides all of it too"
        )
    if approved_already(who, status):
        decisions[Action.APPROVE.value] = Decision(
            False, f"{who.actor} approved it already: a second, different person must approve"
        )
    return decisions


def approved_already(who: Principal, status: StatusView) -> bool:
    """`who` gave the first of two approvals (four eyes): they may not give the second."""
    first = first_approver(status)
    return bool(first) and same_person(who.actor, first)


def possible_actions(status: StatusView) -> list[Action]:
    """The actions the refund takes in its state now (who may take them aside)."""
    actions: list[Action] = []
    if status.state is RefundState.PENDING_REVIEW:
        actions += [Action.APPROVE, Action.REJECT]
    if status.state in (RefundState.PENDING_REVIEW, RefundState.APPROVED):
        actions.append(Action.CANCEL)
    if status.awaiting is Awaiting.OPERATOR:
        actions += [Action.OPERATOR_RETRY, Action.OPERATOR_CANCEL, Action.OPERATOR_PAID_ELSEWHERE]
    return actions


def console_operator(refund_id: str) -> tuple[str, str, str]:
    """How an operator acts, in the words of a note read on this page (render.cancel_refused):
    its buttons, and the CLI where the page has none (asking the provider to cancel)."""
    return (
        "an operator's “Cancel (operator)” on this page",
        "their “Retry the payment”",
        f"`refundflow --as OPERATOR operator cancel {refund_id} --reason TEXT` in the CLI",
    )


def _as_sentence(parts: list[str]) -> str:
    said = "; ".join(parts)
    return f"{said[:1].upper()}{said[1:]}." if said else ""


async def refund_page(
    request: Request,
    who: Principal,
    refund_id: str,
    *,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    api = state(request)
    status = await api.refunds.status(refund_id)
    audit = await api.refunds.audit(refund_id)
    config = pages(request).config
    base = config.public_url or str(request.base_url).rstrip("/")
    # In the language the customer asked in, as their notifications are (they can switch).
    query = tracking_query(config.secret, refund_id)
    link = f"{base}/track/{refund_id}?{query}&lang={status.locale}"
    review = await review_context(api.refunds, status)
    ended, escalated = review.ended_in_temporal, escalated_when_ended(review)
    shown = as_stopped(status, escalated) if ended else status  # no ETA to promise
    return pages(request).render(
        request,
        "refund.html",
        status_code,
        who=who,
        s=shown,
        version=version(status),
        rules=await policy_explanation(api, refund_id),
        review=review,
        events=await api.refunds.events(refund_id),
        audit=audit,
        # Nothing moves a refund Temporal ended: no form that could only be refused.
        actions={} if review.ended_in_temporal else available(who, status, api),
        approved_already=approved_already(who, status),
        reject_reasons=REJECT_REASONS,
        note_max=FREE_TEXT_MAX_CHARS,
        reject_note_max=REJECT_NOTE_MAX_CHARS,
        tracking_link=link,
        in_english=_in_english(shown),
        reconciliation_closes=ESCALATED_WHEN_ENDED if escalated else RECONCILIATION_CLOSES,
        temporal_cancel=_as_sentence(cancel_refused(status, *console_operator(refund_id))),
        error=error,
        notice=notice,
    )


def _in_english(status: StatusView) -> tuple[str, str] | None:
    """What the customer reads and the reply to give, in English, when the customer's
    language is another (a trial: an agent saw only the Chinese); None when it is English."""
    if status.facts is None or status.facts.locale == "en":
        return None
    english = status.facts.model_copy(update={"locale": "en"})
    return customer_message(english), support_reply(english)


@router.get("/console/refunds/{refund_id}")
async def refund_view(request: Request, refund_id: RefundPath, done: str = "") -> Response:
    who = await signed_in(request)
    if who is None:
        return to_signin(request)
    notice = NOTICES.get(done) or (f"Done: {DONE[done]}." if done in DONE else None)
    try:
        return await refund_page(request, who, refund_id, notice=notice)
    except RefundflowError as err:
        return pages(request).render(
            request, "message.html", 404, who=who, title="No such refund", text=str(err)
        )


@router.get("/console/refunds/{refund_id}/version")
async def refund_version(request: Request, refund_id: RefundPath) -> Response:
    """What the page's poller asks every few seconds: has anything changed?"""
    who = await signed_in(request)
    if who is None:
        return protect(JSONResponse({"signed_in": False}, status_code=401))
    status = await state(request).refunds.status(refund_id, include_timeline=True)
    body: dict[str, Any] = {"version": version(status), "state": status.state.value}
    return protect(JSONResponse(body))
