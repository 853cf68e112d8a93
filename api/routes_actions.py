"""Acting on a refund: review (approve, reject), withdraw (cancel), the warehouse's receipt
and the operators' decisions. Who acts is the verified caller; a refusal changes nothing."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends
from fastapi.types import DecoratedCallable

from api.authz import Action, enforce
from api.customer_answers import STOPPED_FOR_CUSTOMER, as_seen_by
from api.deps import Caller, State, known_query_only, refund_facts
from api.identity import PrincipalKind
from api.problems import Kind, ProblemError, problem_responses
from api.schemas import ApproveBody, PaidElsewhereBody, ReasonBody, RefundPath
from client.errors import RefundStopped
from workflows.models import StatusView
from workflows.read_models import CustomerView

SOURCE = "api"
"""The system every action through the API comes from, as the refund's audit records it."""
router = APIRouter(
    prefix="/v1/refunds/{refund_id}", tags=["actions"], dependencies=[Depends(known_query_only)]
)
ACTION_PROBLEMS = problem_responses(
    Kind.BAD_INPUT,
    Kind.UNAUTHORIZED,
    Kind.FORBIDDEN,
    Kind.NOT_FOUND,
    Kind.REFUSED,
    Kind.RATE_LIMITED,
    Kind.TOO_LARGE,
    Kind.UNAVAILABLE,
)


def _action(path: str, summary: str) -> Callable[[DecoratedCallable], DecoratedCallable]:
    return router.post(path, response_model=StatusView, summary=summary, responses=ACTION_PROBLEMS)


@_action("/approve", "Approve, as the caller in their most senior approving role")
async def approve(refund_id: RefundPath, body: ApproveBody, who: Caller, api: State) -> StatusView:
    _, refund = await refund_facts(api, refund_id, who)
    enforce(who, Action.APPROVE, refund, amount=body.amount)
    role = who.approver_role
    assert role is not None  # enforce allowed it
    return await api.refunds.approve(
        refund_id,
        who.actor,
        body.amount,
        role,
        source=SOURCE,
        issuer=who.issuer,
        evidence=body.evidence,
    )


@_action("/reject", "Reject, as the caller")
async def reject(refund_id: RefundPath, body: ReasonBody, who: Caller, api: State) -> StatusView:
    _, refund = await refund_facts(api, refund_id, who)
    enforce(who, Action.REJECT, refund)
    return await api.refunds.reject(
        refund_id, who.actor, body.reason, source=SOURCE, issuer=who.issuer
    )


@router.post(
    "/cancel",
    response_model=StatusView | CustomerView,
    summary="Withdraw the refund before money moves (customers: their own, answered as"
    " `track` shows it)",
    responses=ACTION_PROBLEMS,
)
async def cancel(
    refund_id: RefundPath, body: ReasonBody, who: Caller, api: State
) -> StatusView | CustomerView:
    _, refund = await refund_facts(api, refund_id, who)
    enforce(who, Action.CANCEL, refund)
    try:
        status = await api.refunds.cancel(
            refund_id,
            who.actor,
            body.reason,
            source=SOURCE,
            issuer=who.issuer,
            for_customer=who.kind is PrincipalKind.SERVICE,  # services act for the customer
        )
    except RefundStopped:
        if who.kind is not PrincipalKind.CUSTOMER:
            raise
        raise ProblemError(Kind.REFUSED, STOPPED_FOR_CUSTOMER) from None
    return as_seen_by(who, status)


@_action("/received", "The returned item arrived (the warehouse)")
async def received(refund_id: RefundPath, who: Caller, api: State) -> StatusView:
    _, refund = await refund_facts(api, refund_id, who)
    enforce(who, Action.RECEIVED, refund)
    return await api.refunds.item_received(refund_id, who.actor, source=SOURCE, issuer=who.issuer)


@_action("/operator/retry", "Retry the payment after a failure (operators)")
async def operator_retry(refund_id: RefundPath, who: Caller, api: State) -> StatusView:
    _, refund = await refund_facts(api, refund_id, who)
    enforce(who, Action.OPERATOR_RETRY, refund)
    return await api.refunds.operator_retry(refund_id, who.actor, source=SOURCE, issuer=who.issuer)


@_action("/operator/cancel", "Cancel after a payment failure (operators)")
async def operator_cancel(
    refund_id: RefundPath, body: ReasonBody, who: Caller, api: State
) -> StatusView:
    _, refund = await refund_facts(api, refund_id, who)
    enforce(who, Action.OPERATOR_CANCEL, refund)
    return await api.refunds.operator_cancel(
        refund_id, who.actor, body.reason, source=SOURCE, issuer=who.issuer
    )


@_action("/operator/paid-elsewhere", "Complete: the customer was paid outside the provider")
async def operator_paid_elsewhere(
    refund_id: RefundPath, body: PaidElsewhereBody, who: Caller, api: State
) -> StatusView:
    _, refund = await refund_facts(api, refund_id, who)
    enforce(who, Action.OPERATOR_PAID_ELSEWHERE, refund)
    proof = body.proof
    return await api.refunds.operator_paid_elsewhere(
        refund_id,
        who.actor,
        proof,
        source=SOURCE,
        issuer=who.issuer,
        despite_findings=body.despite_findings,
    )
