"""What a reviewer weighs beside a refund's status (staff and services, as its audit): the
order's ledger, the requester's other recent refunds, and an abnormal end in Temporal. The
CLI's `status` shows it; customers get /track instead."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.authz import Action, enforce
from api.deps import Caller, State, known_query_only, refund_facts
from api.routes_refunds import READ_PROBLEMS
from api.schemas import RefundPath
from client.review_context import ReviewContext, review_context

router = APIRouter(prefix="/v1", tags=["refunds"], dependencies=[Depends(known_query_only)])


@router.get(
    "/refunds/{refund_id}/review",
    response_model=ReviewContext,
    summary="The order's ledger, the requester's recent refunds, an abnormal end in Temporal",
    responses=READ_PROBLEMS,
)
async def refund_review(refund_id: RefundPath, who: Caller, api: State) -> ReviewContext:
    status, refund = await refund_facts(api, refund_id, who)
    # As sensitive as the audit trail: other refunds of the order and of the customer.
    enforce(who, Action.REVIEW, refund)
    return await review_context(api.refunds, status)
