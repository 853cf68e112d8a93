"""A token meant for staff or a service whose role or scope is refundflow's but written
another way, or put where refundflow does not read it, would be taken as a customer's (or a
weaker service's) and answered "unknown order" for every order (a trial: `refund:write`
sent an integrator looking for a bug in the order system). Such a token is refused, saying
what it meant.

Only refundflow's own words count: the same letters in another case, with other separators,
`refund:` or `refundflow:` for `refunds:`, spaces around them, a scope among the roles or a
role among the scopes, or refundflow's words in a claim it is not configured to read (`scp`
with the default `scope`). A customer's token carries the shop's own roles and scopes, and
a looser likeness (`returns:read`, `rewards:write`, `leader`) refused real customers (a
review)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from api.config import ApiConfig

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
    for claim, values, names, other, other_claim in (
        (config.roles_claim, roles, role_names, scope_names, config.scope_claim),
        (config.scope_claim, scopes, scope_names, role_names, config.roles_claim),
    ):
        for value in sorted(values):
            meant = _ours(value)
            if meant in names and value != meant and meant not in values:
                return _said(claim, value, f"did you mean {meant!r}?")
            if meant in other:
                return _said(claim, value, f"it belongs in the {other_claim!r} claim")
    if roles & set(role_names) or scopes & set(scope_names):
        return None
    return _elsewhere(claims, config, (*role_names, *scope_names))


def _elsewhere(claims: dict[str, Any], config: ApiConfig, names: Iterable[str]) -> str | None:
    """refundflow's words in a claim it is not configured to read."""
    for place in OTHER_PLACES:
        if place in (config.roles_claim, config.scope_claim):
            continue
        found = sorted(_values(claims, place) & set(names))
        if found:
            return (
                f"the token carries {found[0]!r} in its {place!r} claim, which refundflow does"
                f" not read (roles from {config.roles_claim!r}, REFUNDFLOW_OIDC_ROLES_CLAIM;"
                f" scopes from {config.scope_claim!r}, REFUNDFLOW_OIDC_SCOPE_CLAIM). Without"
                " one there, the token is taken as a customer's"
            )
    return None


def _values(claims: dict[str, Any], place: str) -> frozenset[str]:
    from api.identity import as_set, claim_at  # the claims' reading, shared

    return as_set(claim_at(claims, place))


def _ours(value: str) -> str:
    said = re.sub(r"[._/-]", ":", value.strip().casefold())
    return re.sub(r"^refund(s|flow)?:", "refunds:", said)


def _said(claim: str, value: str, hint: str) -> str:
    return f"the token's {claim!r} claim holds {value!r}, not as refundflow names it: {hint}"
