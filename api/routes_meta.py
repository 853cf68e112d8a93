"""Everything around the refunds: eligibility (starts nothing), the policies, health and
readiness, and a docs page that works offline."""

from __future__ import annotations

import asyncio
import html
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError

from api.authz import Action, enforce
from api.customer_answers import eligibility_for_customer
from api.deps import (
    Caller,
    State,
    bad_input,
    customer_asking,
    known_query_only,
    order_facts,
)
from api.identity import PrincipalKind
from api.internal_controls import policy_terms
from api.problems import Kind, ProblemError, problem_responses
from api.schemas import Health, IdempotencyKey, RefundRequestBody
from client import policy_view
from client.policy_source import PolicyUnavailable
from client.refund_ids import default_refund_key
from workflows.eligibility import EligibilityAnswer
from workflows.models import RefundRequest

router = APIRouter(tags=["policies and eligibility"], dependencies=[Depends(known_query_only)])
AUTH_PROBLEMS = problem_responses(Kind.UNAUTHORIZED, Kind.FORBIDDEN, Kind.RATE_LIMITED)
READY_TIMEOUT = 5.0


@router.post(
    "/v1/eligibility",
    response_model=EligibilityAnswer,
    summary="Would this request be refunded, how much and how fast (starts nothing)",
    responses={**problem_responses(Kind.BAD_INPUT, Kind.UNAVAILABLE), **AUTH_PROBLEMS},
)
async def eligibility(
    body: RefundRequestBody,
    who: Caller,
    api: State,
    idempotency_key: Annotated[IdempotencyKey | None, Header(alias="Idempotency-Key")] = None,
) -> EligibilityAnswer:
    """With the key a request was (or will be) made under, that request's own hold does not
    count against it; without, the key is derived as a request without one derives it. Staff
    and services ask for the order's customer (their auto-approval budget counts); a
    customer, about their own orders only, and never learns of another customer's refund."""
    order, whose = await order_facts(api, body.order_id)
    customer = customer_asking(who, body.requested_by, order)
    enforce(who, Action.ELIGIBILITY, requested_by=customer, order=whose)
    lines = [(line.sku, line.quantity) for line in body.lines] if body.lines else None
    try:
        request = RefundRequest(
            refund_key=idempotency_key
            or default_refund_key(body.order_id, body.amount, lines, body.reason_code),
            **body.model_dump(exclude={"requested_by"}, exclude_none=True),
            requested_by=customer or who.actor,
        )
    except ValidationError as err:
        raise bad_input(err) from None
    answer = await api.refunds.eligibility(request, order=order)
    if who.kind is PrincipalKind.CUSTOMER:
        return await eligibility_for_customer(api, who.actor, answer)
    return answer


@router.get(
    "/v1/policies",
    summary="Every policy version on file",
    responses={**problem_responses(Kind.UNAVAILABLE), **AUTH_PROBLEMS},
)
async def policies(who: Caller, api: State) -> list[dict[str, Any]]:
    enforce(who, Action.POLICIES)
    try:
        listed = policy_view.available(api.policy_dir)
    except PolicyUnavailable as err:  # a file on the server is broken: without its path
        raise ProblemError(Kind.UNAVAILABLE, err.public) from None
    if who.kind is PrincipalKind.CUSTOMER:  # the list too (a trial read every limit there)
        return [policy_terms(described) for described in listed]
    return listed


@router.get(
    "/v1/policies/{name}",
    summary="One policy (`standard-v3`, `standard@v3`), with every setting (customers: its"
    " terms, without approval limits, budgets or authority)",
    responses={**problem_responses(Kind.NOT_FOUND), **AUTH_PROBLEMS},
)
async def policy(
    name: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9@._-]{0,63}$")],
    who: Caller,
    api: State,
) -> dict[str, Any]:
    enforce(who, Action.POLICIES)
    try:  # names are lower case: STANDARD-V4 is standard-v4 (a trial)
        described = policy_view.describe(policy_view.load_named(api.policy_dir, name.lower()))
    except PolicyUnavailable as err:  # without the server's paths
        raise ProblemError(Kind.NOT_FOUND, err.public) from None
    return policy_terms(described) if who.kind is PrincipalKind.CUSTOMER else described


@router.get("/healthz", response_model=Health, summary="The API process is up", tags=["health"])
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Temporal and Postgres are reachable",
    tags=["health"],
    responses={503: {"model": Health, "description": "Not ready"}},
)
async def readyz(api: State) -> JSONResponse:
    checks = {"temporal": "ok", "postgres": "ok"}
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await api.refunds.temporal.service_client.check_health()
    except Exception as err:  # any failure means not ready; the reason is in the answer
        checks["temporal"] = f"unreachable: {type(err).__name__}"
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await (await api.refunds.store()).pool.fetchval("SELECT 1")
    except Exception as err:
        checks["postgres"] = f"unreachable: {type(err).__name__}"
    ready = all(v == "ok" for v in checks.values())
    body = Health(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    """Every route, from the OpenAPI document itself: no scripts, nothing from a CDN."""
    spec = request.app.openapi()
    rows = [
        f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
        f"<td>{html.escape(op.get('summary', ''))}</td></tr>"
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    ]
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{spec['info']['title']}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:.2em .8em}</style></head>"
        f"<body><h1>{html.escape(spec['info']['title'])} {spec['info']['version']}</h1>"
        "<p>OpenAPI 3.1: <a href='/openapi.json'>/openapi.json</a>. Send"
        " <code>Authorization: Bearer TOKEN</code> (dev stack: <code>refundflow token --as"
        " NAME</code>). Errors are <code>application/problem+json</code>.</p>"
        f"<table>{''.join(rows)}</table></body></html>"
    )
    return HTMLResponse(page)
