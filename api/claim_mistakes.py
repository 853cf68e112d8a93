"""A token meant for staff or a service whose role or scope is refundflow's but written
another way, or put where refundflow does not read it, would be taken as a customer's (or a
weaker service's) and answered "unknown order" for every order (a trial: `refund:write`
sent an integrator looking for a bug in the order system). Such a token is refused, saying
what it meant.

Only refundflow's own words count: the same letters in another case, with other separators,
`refund:` or `refundflow:` for `refunds:`, spaces around them, a scope among the roles or a
role among the scopes. refundflow's words in a claim it is not configured to read (`scp`
with the default `scope`) are only logged (`authz.claim_unread`): they may be the shop's
own for another application. A customer's token carries the shop's own roles and scopes,
and a looser likeness (`returns:read`, `rewards:write`, `leader`) refused real customers (a
review)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import structlog

from api.config import ApiConfig

log = structlog.get_logger("refundflow.api")

OTHER_PLACES = ("scope", "scp", "roles", "groups", "permissions", "realm_access.roles")
"""Where identity providers commonly put roles and scopes (Keycloak, Auth0, Entra, Okta)."""


def claim_mistake(
    claims: dict[str, Any],
    config: ApiConfig,
    granted: tuple[frozenset[str], frozenset[str]],
    known: tuple[tuple[str, ...], tuple[str, ...]],
) -> str | None:
    """Why the token is refused (None: it is not): `granted` its (roles, scopes) as read
    from the configured claims, `known` refundflow's (roles, scopes)."""
    (roles, scopes), (role_names, scope_names) = granted, known
    held = (roles & set(role_names)) | (scopes & set(scope_names))
    # One claim for both (Entra ID's app roles: REFUNDFLOW_OIDC_SCOPE_CLAIM=roles): no value
    # in it is in the wrong claim (a review: every staff and service token was refused).
    one_claim = config.roles_claim == config.scope_claim
    for claim, values, names, other, other_claim in (
        (config.roles_claim, roles, role_names, scope_names, config.scope_claim),
        (config.scope_claim, scopes, scope_names, role_names, config.roles_claim),
    ):
        for value in sorted(values):
            meant = _ours(value)
            if meant in names and value != meant and _grants_more(meant, held):
                return _said(claim, value, f"did you mean {meant!r}?")
            if meant in other and not one_claim and not held:
                return f"the token's {claim!r} claim holds {value!r}: it belongs in {other_claim!r}"
    if not held:
        _elsewhere(claims, config, (*role_names, *scope_names))
    return None


def _grants_more(meant: str, held: frozenset[str]) -> bool:
    """Whether the name meant would give the token what it holds nothing for: no name of
    ours at all, in either claim, or write beside nothing but a read (a trial: taken as
    read-only). A misspelling beside a name that holds (Okta's `Support` beside `lead`,
    `refund:write` in the scopes of a support role) is left be (trials)."""
    return not held or (meant.endswith(":write") and held == {meant.replace(":write", ":read")})


def _elsewhere(claims: dict[str, Any], config: ApiConfig, names: Iterable[str]) -> None:
    """refundflow's words in a claim it is not configured to read (Okta's `scp` while it
    reads `scope`): logged for whoever sets it up, never refused. Such a word may be the
    shop's own for another application (a Keycloak realm role `support`, an Auth0 customer
    permission), and its token a customer's (a review)."""
    for place in OTHER_PLACES:
        if place in (config.roles_claim, config.scope_claim):
            continue
        found = sorted(_values(claims, place) & set(names))
        if found:
            log.warning(
                "authz.claim_unread", claim=place, holds=found[0], subject=claims.get("sub"),
                issuer=claims.get("iss"), roles_claim=config.roles_claim,
                scope_claim=config.scope_claim,
            )  # fmt: skip
            return


def _values(claims: dict[str, Any], place: str) -> frozenset[str]:
    from api.identity import as_set, claim_at  # the claims' reading, shared

    return as_set(claim_at(claims, place))


def _ours(value: str) -> str:
    said = re.sub(r"[._/-]", ":", value.strip().casefold())
    return re.sub(r"^refund(s|flow)?:", "refunds:", said)


def _said(claim: str, value: str, hint: str) -> str:
    return f"the token's {claim!r} claim holds {value!r}, not as refundflow names it: {hint}"
