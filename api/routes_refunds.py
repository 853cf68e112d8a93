"""Requesting and reading refunds: /v1/refunds, one refund, its tracking view, audit trail
and notification events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import ValidationError

from api import listing
from api.authz import Action, enforce, is_them, same_person
from api.customer_answers import (
    ENDED_FOR_CUSTOMER,
    as_it_stands,
    as_seen_by,
    customers_view,
    for_the_wire,
    said_to_customer,
)
from api.deps import (
    ApiState,
    Caller,
    State,
    bad_input,
    customer_asking,
    facts,
    known_query_only,
    order_facts,
    refund_facts,
    requester,
    status_for,
)
from api.identity import Principal, PrincipalKind
from api.problems import Kind, ProblemError, problem_responses
from api.schemas import (
    CustomerRefundPage,
    IdempotencyKey,
    RefundPage,
    RefundPath,
    RefundRequestBody,
)
from client.errors import InvalidRefundRequest, RefundConflict, RefundEndedElsewhere
from client.ledger_ahead import LedgerReadAhead
from workflows.models import IDENTIFIER_PATTERN, RefundRequest, StatusView
from workflows.read_models import AuditEntry, CustomerView, OutboxEvent
from workflows.states import RefundState

router = APIRouter(prefix="/v1", tags=["refunds"], dependencies=[Depends(known_query_only)])
READ_PROBLEMS = problem_responses(
    Kind.UNAUTHORIZED, Kind.FORBIDDEN, Kind.NOT_FOUND, Kind.RATE_LIMITED, Kind.UNAVAILABLE
)


@router.post(
    "/refunds",
    response_model=StatusView | CustomerView,
    status_code=201,
    summary="Request a refund (the same Idempotency-Key and body: the same refund); a"
    " customer is answered with their own view (as /track), staff and services with the status",
    responses={
        200: {
            "description": "Asked before: the refund this key already made (and its Location)",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        201: {
            "description": "Made, answered with its first step; the Location is where the"
            " caller follows it (/v1/refunds/{id}, a customer's /v1/refunds/{id}/track)",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        202: {
            "description": "Prefer: respond-async: the refund is started and answered as it"
            " opens (requested); its first step follows (GET the Location, or notifications)"
        },
        **problem_responses(Kind.BAD_INPUT, Kind.CONFLICT, Kind.TOO_LARGE),
        **READ_PROBLEMS,
    },
)
async def request_refund(
    body: RefundRequestBody,
    response: Response,
    who: Caller,
    api: State,
    idempotency_key: Annotated[IdempotencyKey, Header(alias="Idempotency-Key")],
    prefer: Annotated[
        str | None,
        Header(
            max_length=200,
            description="`respond-async` (RFC 7240): answer as soon as the refund is"
            " started, 202, instead of once it has decided its first step",
        ),
    ] = None,
) -> StatusView | CustomerView:
    # The ledger is read while the order is looked up: the answer waits for one, not both.
    async with api.refunds.ledger_read_ahead(body.order_id, idempotency_key) as ahead:
        return await _request_refund(body, response, who, api, idempotency_key, prefer, ahead)


async def _request_refund(
    body: RefundRequestBody,
    response: Response,
    who: Principal,
    api: ApiState,
    idempotency_key: str,
    prefer: str | None,
    ahead: LedgerReadAhead | None,
) -> StatusView | CustomerView:
    order, whose = await order_facts(api, body.order_id)
    customer = customer_asking(who, body.requested_by, order)
    enforce(who, Action.REQUEST, requested_by=customer, order=whose)
    assert customer is not None  # enforce refuses a request for nobody
    # Staff or a service asking for a customer: recorded, so they cannot approve it either.
    submitted_by = None if same_person(who.actor, customer) else who.actor
    try:
        request = RefundRequest(
            refund_key=idempotency_key,
            **body.model_dump(exclude={"requested_by"}, exclude_none=True),
            requested_by=customer,
            submitted_by=submitted_by,
            issuer=who.issuer,
        )
    except ValidationError as err:
        raise bad_input(err) from None
    reused = f"Idempotency-Key {idempotency_key!r} was already used for another request"
    respond_async = wants_respond_async(prefer)
    try:
        status, asked_before = await api.refunds.request_again_or_new(
            request, order=order, first_step=not respond_async, ahead=ahead
        )
    except RefundEndedElsewhere:
        if who.kind is PrincipalKind.CUSTOMER:  # on their own order: staff's words, not ids
            raise ProblemError(Kind.CONFLICT, ENDED_FOR_CUSTOMER) from None
        raise
    except RefundConflict:
        if who.kind is PrincipalKind.CUSTOMER:  # the other request may be someone else's
            raise ProblemError(Kind.CONFLICT, reused) from None
        raise
    except InvalidRefundRequest as err:
        if who.kind is PrincipalKind.CUSTOMER:  # refusals name the refunds holding the units
            raise InvalidRefundRequest(await said_to_customer(api, who.actor, str(err))) from None
        raise
    if not is_them(request.requested_by, requester(status)):
        # The key was used for another customer's request: say nothing about that refund.
        raise ProblemError(Kind.CONFLICT, reused)
    response.status_code = 200 if asked_before else 201
    if not asked_before:
        api.metrics.refunds_requested.labels(request.channel).inc()
    # Where this caller can follow it: a customer reads /track, not the staff status. Also
    # on a 200: a client asking again after a lost 202 finds it there (a trial).
    to_customer = who.kind is PrincipalKind.CUSTOMER
    response.headers["Location"] = f"/v1/refunds/{status.refund_id}" + (
        "/track" if to_customer else ""
    )
    if respond_async and not asked_before:
        response.headers["Preference-Applied"] = "respond-async"
        response.status_code = 202
    return as_seen_by(who, status)


def wants_respond_async(prefer: str | None) -> bool:
    """Whether a Prefer header (RFC 7240: comma-separated preferences, each maybe with
    parameters after ";") asks for respond-async; other preferences are ignored."""
    preferences = (part.split(";", 1)[0].strip().lower() for part in (prefer or "").split(","))
    return "respond-async" in preferences


@router.get(
    "/refunds",
    response_model=RefundPage | CustomerRefundPage,
    summary="List refunds, newest request first (customers: their own, in their words)",
    responses={**problem_responses(Kind.BAD_INPUT), **READ_PROBLEMS},
)
async def list_refunds(
    who: Caller,
    api: State,
    state: RefundState | None = None,
    order: Annotated[str | None, Query(max_length=64, pattern=IDENTIFIER_PATTERN)] = None,
    customer: Annotated[str | None, Query(max_length=64, pattern=IDENTIFIER_PATTERN)] = None,
    escalated: bool = False,
    cursor: Annotated[str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RefundPage | CustomerRefundPage:
    enforce(who, Action.LIST, requested_by=customer)
    as_customer = who.kind is PrincipalKind.CUSTOMER
    if as_customer:
        customer = who.actor
        if escalated:  # escalation is staff's business: filtering by it would tell it
            raise ProblemError(Kind.FORBIDDEN, "refused: escalated is a filter for staff only")
    pool = (await api.refunds.store()).pool
    rows, next_cursor = await listing.page(
        pool,
        state=state.value if state else None,
        order_id=order,
        escalated=escalated,
        customer=customer,
        cursor=cursor,
        limit=limit,
        with_view=as_customer,
    )
    if as_customer:
        told = await listing.customer_rows(api.refunds.temporal, rows)
        return CustomerRefundPage(items=told, next_cursor=next_cursor)
    items = await listing.marked_for_staff(api.refunds.temporal, listing.staff_rows(rows))
    return RefundPage(items=items, next_cursor=next_cursor)


@router.get(
    "/refunds/{refund_id}",
    response_model=StatusView,
    summary="A refund's status, as support sees it",
    responses=READ_PROBLEMS,
)
async def get_refund(
    refund_id: RefundPath,
    who: Caller,
    api: State,
    live: Annotated[
        bool,
        Query(
            description="Ask the refund's workflow instead of the status recorded with its"
            " last transitions (the same wherever it waits; slower under load)"
        ),
    ] = False,
) -> StatusView:
    status, refund = await refund_facts(api, refund_id, who, live=live)
    enforce(who, Action.READ, refund)
    # A refund Temporal ended before it ended: no review or payment ETA that cannot come, and
    # what moves it now (reconciliation), as the CLI's status and the console say.
    return for_the_wire(await as_it_stands(api, status))


@router.get(
    "/refunds/{refund_id}/track",
    response_model=CustomerView,
    summary="What the customer may see of a refund",
    responses=READ_PROBLEMS,
)
async def track_refund(refund_id: RefundPath, who: Caller, api: State) -> CustomerView:
    status = await status_for(api, refund_id, who)
    enforce(who, Action.TRACK, facts(api, status))
    return customers_view(await as_it_stands(api, status))


@router.get(
    "/refunds/{refund_id}/audit",
    response_model=list[AuditEntry],
    summary="Every transition: who, when, via which system, why, under which policy",
    responses=READ_PROBLEMS,
)
async def refund_audit(refund_id: RefundPath, who: Caller, api: State) -> list[AuditEntry]:
    _, refund = await refund_facts(api, refund_id, who)
    enforce(who, Action.AUDIT, refund)
    return await api.refunds.audit(refund_id)


@router.get(
    "/refunds/{refund_id}/events",
    response_model=list[OutboxEvent],
    summary="The refund's notification events and their deliveries",
    responses=READ_PROBLEMS,
)
async def refund_events(refund_id: RefundPath, who: Caller, api: State) -> list[OutboxEvent]:
    _, refund = await refund_facts(api, refund_id, who)
    enforce(who, Action.EVENTS, refund)
    return await api.refunds.events(refund_id)
