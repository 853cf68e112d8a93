"""What every route needs: the app's shared parts, the verified caller (rate-limited per
principal), and the facts about a refund that authorization decides on."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPBearer
from pydantic import ValidationError

from api import listing
from api.authz import OrderFacts, RefundFacts
from api.identity import Principal, PrincipalKind, TokenVerifier
from api.limits import RateLimiter
from api.metrics import ApiMetrics
from api.problems import Kind, ProblemError
from client import render
from client.errors import RefundflowError, RefundNotFound
from client.policy_source import load_policy
from client.refund_client import RefundClient
from client.timings import show_to_caller, step
from workflows.models import OrderSnapshot, StatusView
from workflows.policy import Policy, parse_policy, policy_for
from workflows.states import TERMINAL_STATES

bearer = HTTPBearer(auto_error=False, description="An access token from the issuer")


@dataclass
class ApiState:
    refunds: RefundClient
    verifier: TokenVerifier
    limiter: RateLimiter
    policy_dir: Path
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    _documents: dict[str, str | None] = field(default_factory=dict)

    def pinned_policy(self, label: str, currency: str | None = None) -> Policy | None:
        """The refund's pinned policy from its label (`standard@v3#abc…`), when the file of
        that name and version still has that hash; else None (the workflow decides). With
        `currency`: as it applies to a refund in that currency (Policy.in_currency)."""
        if label not in self._documents:
            self._documents[label] = self._load(label)
        document = self._documents[label]
        if document is None:
            return None
        return policy_for(document, currency) if currency else parse_policy(document)

    def _load(self, label: str) -> str | None:
        name, _, rest = label.partition("@v")
        version, _, digest = rest.partition("#")
        try:
            pinned = load_policy(self.policy_dir, f"{name}-v{version}")
        except (RefundflowError, ValueError):
            return None
        return pinned.document if pinned.content_hash.startswith(digest) else None


def state(request: Request) -> ApiState:
    found: ApiState = request.app.state.api
    return found


async def _state_dependency(request: Request) -> ApiState:
    # async though it awaits nothing: FastAPI runs a plain `def` dependency in its thread
    # pool, a thread hop on every request for one attribute read.
    return state(request)


State = Annotated[ApiState, Depends(_state_dependency)]


async def principal(request: Request, api: State, _: object = Security(bearer)) -> Principal:
    """The verified caller; each call spends one of the principal's rate-limit tokens."""
    with step("auth"):
        who = await api.verifier.principal(request.headers.get("authorization"))
    if who.kind is not PrincipalKind.CUSTOMER:
        show_to_caller()  # staff and services see where their answer's time went
    api.limiter.take(f"{who.issuer}\x1f{who.subject}")
    return who


Caller = Annotated[Principal, Depends(principal)]


def requester(status: StatusView) -> str | None:
    """Who asked for the refund: the status says (older workers' answers do not: then the
    actor of its `requested` entry, the first)."""
    if status.requested_by is not None:
        return status.requested_by
    first = status.timeline[0] if status.timeline else None
    return first.actor if first is not None and first.event == "requested" else None


def facts(api: ApiState, status: StatusView) -> RefundFacts:
    return RefundFacts(
        refund_id=status.refund_id,
        requested_by=requester(status),
        submitted_by=status.submitted_by,
        amount=status.amount,
        currency=status.currency,
        policy=api.pinned_policy(status.policy_version, status.currency),
        closed=status.state in TERMINAL_STATES,
    )


async def refund_facts(
    api: ApiState, refund_id: str, who: Principal, *, live: bool = False
) -> tuple[StatusView, RefundFacts]:
    status = await status_for(api, refund_id, who, live=live)
    return status, facts(api, status)


async def status_for(
    api: ApiState, refund_id: str, who: Principal, *, live: bool = False
) -> StatusView:
    """The refund's status for `who`. A customer is answered from the projection alone, and
    only about a refund they asked for: "no refund …" for one that is not there and for one
    that is another customer's is then one read either way. (Staff's projection miss asks
    Temporal; for customers that took 3-4 ms more than another's refund, which told them
    the refund exists: its id is computable from an order id.) Every refund the API or
    RefundClient starts has its row before the requester hears its id."""
    if who.kind is PrincipalKind.CUSTOMER:
        pool = (await api.refunds.store()).pool
        own = await listing.status_asked_by(pool, refund_id, who.actor)
        if own is None:
            raise RefundNotFound(f"no refund {refund_id}")
        if not live:
            return own
    return await api.refunds.status(refund_id, live=live)


def bad_input(err: ValidationError) -> ProblemError:
    return ProblemError(Kind.BAD_INPUT, render.validation_error(err))


async def order_facts(api: ApiState, order_id: str) -> tuple[OrderSnapshot, OrderFacts]:
    """The order as the order system has it now, and whose it is (unknown: a 422 problem)."""
    order = await api.refunds.order(order_id)
    return order, OrderFacts(order_id=order.order_id, customer_id=order.customer_id)


def customer_asking(who: Principal, named: str | None, order: OrderSnapshot) -> str | None:
    """Whom a request (or an eligibility question) is for: the customer named; else a
    customer asks for themselves, and staff and services for the order's customer."""
    if named:
        return named
    return who.actor if who.kind is PrincipalKind.CUSTOMER else order.customer_id


_KNOWN_QUERY: dict[int, list[str]] = {}
"""The query parameters each route takes, by its dependant's id."""


async def known_query_only(request: Request) -> None:
    """Refuse a query parameter the route does not take (`?stat=completed` for `state`):
    ignored, it would answer as if no filter had been asked for."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.url.path.startswith("/v1/"):
        return  # probes (/healthz, /readyz) may carry whatever their prober adds
    known = _KNOWN_QUERY.get(id(dependant))
    if known is None:  # once per route: the routes are the app's for its lifetime
        known = _KNOWN_QUERY[id(dependant)] = sorted(_query_names(dependant))
    takes = f"it takes {', '.join(known)}" if known else "this route takes no query parameters"
    for name in request.query_params:
        shown = name if len(name) <= 40 else name[:39] + "…"
        if name not in known:
            near = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ProblemError(Kind.BAD_INPUT, f"unknown query parameter {shown!r}: {hint}{takes}")
        if len(request.query_params.getlist(name)) > 1:  # not both: only one would apply
            raise ProblemError(Kind.BAD_INPUT, f"query parameter {shown!r} given more than once")


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route takes, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names
