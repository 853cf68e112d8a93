"""Who is calling: an OAuth2 bearer JWT verified against its issuer's published keys.

Signature (RS256 or ES256, with a key from the issuer's JWKS, fetched over HTTP and cached),
issuer, audience, expiry and not-before (with clock-skew leeway) are all checked; subject and
roles come from configurable claims, so any OIDC provider works by configuration
(docs/identity.md). Nothing about the caller is taken from the request body.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import jwt
import structlog

from api.claim_mistakes import claim_mistake
from api.config import ApiConfig
from api.problems import Kind, ProblemError

log = structlog.get_logger("refundflow.api")
STAFF_ROLES = ("support", "lead", "finance", "operator")
APPROVER_ROLES = ("finance", "lead", "support")
"""Roles that may approve, most senior first: a reviewer acts in the most senior one held."""
WAREHOUSE_ROLE = "warehouse"
SCOPE_READ = "refunds:read"
SCOPE_WRITE = "refunds:write"
_ACTOR_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")
KEYS_KEPT_S = 300.0
"""A key the issuer withdrew from its JWKS is refused at most this long after: half of it in
PyJWKClient's cache of the JWKS, half in the verifier's own by `kid`."""
REFETCH_COOLDOWN_S = 30.0
"""An unknown `kid` (a rotated key) fetches the JWKS again, at most once in this long: tokens
with made-up `kid`s cannot make the API fetch on every request."""


class PrincipalKind(Enum):
    STAFF = "staff"
    WAREHOUSE = "warehouse"
    SERVICE = "service"
    CUSTOMER = "customer"


@dataclass(frozen=True)
class Principal:
    subject: str
    issuer: str
    kind: PrincipalKind
    roles: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        """The subject as the refund's audit names it (a handle: no spaces, no `|` or `@`,
        at most 64 characters). Distinct subjects that map alike can only be refused more."""
        safe = _ACTOR_UNSAFE.sub(".", self.subject)[:64]
        return safe if safe[:1].isalnum() else ("u" + safe)[:64]

    @property
    def approver_role(self) -> str | None:
        """The most senior approving role the token grants, if any."""
        return next((role for role in APPROVER_ROLES if role in self.roles), None)


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The claim at a dotted path (`realm_access.roles`); a URL-like claim name with dots
    (Auth0's namespaced claims) is tried whole first."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def as_set(value: Any) -> frozenset[str]:
    """A claim that is a list of strings or one space-separated string, as a set."""
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(str(item) for item in value)
    return frozenset()


def principal_from(claims: dict[str, Any], config: ApiConfig) -> Principal:
    # The configured claim only: falling back to `sub` made one person two names, and the
    # second approved what the first had submitted (a trial, four eyes under Keycloak).
    subject = claim_at(claims, config.subject_claim)
    if not isinstance(subject, str) or not subject.strip():
        said = "names no subject" + (
            f" (its {config.subject_claim!r} claim)" if config.subject_claim != "sub" else ""
        )
        raise ProblemError(Kind.UNAUTHORIZED, f"the token {said}", _challenge())
    if subject != subject.strip():
        # Trimmed, `cust_42 ` would be cust_42 and read their refunds (a trial): a subject is
        # the identity provider's exact string, and no provider pads one.
        raise ProblemError(
            Kind.UNAUTHORIZED, "the token's subject has spaces around it", _challenge()
        )
    granted_roles = as_set(claim_at(claims, config.roles_claim))
    roles = granted_roles & {*STAFF_ROLES, WAREHOUSE_ROLE}
    scopes = as_set(claim_at(claims, config.scope_claim))
    known = ((*STAFF_ROLES, WAREHOUSE_ROLE), (SCOPE_READ, SCOPE_WRITE))
    if mistake := claim_mistake(claims, config, (granted_roles, scopes), known):
        # In the log with who it was, as every refusal is (docs/identity.md; a trial).
        log.info(
            "authz.decision", subject=subject, issuer=str(claims.get("iss")), kind="token",
            allowed=False, reason=mistake,
        )  # fmt: skip
        raise ProblemError(Kind.FORBIDDEN, mistake)
    if roles & set(STAFF_ROLES):
        kind = PrincipalKind.STAFF
    elif WAREHOUSE_ROLE in roles:
        kind = PrincipalKind.WAREHOUSE
    elif scopes & {SCOPE_READ, SCOPE_WRITE}:
        kind = PrincipalKind.SERVICE
    else:
        kind = PrincipalKind.CUSTOMER
    return Principal(subject, str(claims["iss"]), kind, roles, scopes)


def _challenge(error: str = "invalid_token") -> dict[str, str]:
    return {"WWW-Authenticate": f'Bearer realm="refundflow", error="{error}"'}


class TokenVerifier:
    """Verifies bearer tokens for one issuer and audience; keys cached from its JWKS URL."""

    def __init__(
        self,
        config: ApiConfig,
        keys_kept_s: float = KEYS_KEPT_S,
        refetch_cooldown_s: float = REFETCH_COOLDOWN_S,
    ) -> None:
        self.config = config
        self._keys: jwt.PyJWKClient | None = None
        self._keys_kept_s = keys_kept_s
        self._refetch_cooldown_s = refetch_cooldown_s
        self._known: dict[str, tuple[Any, float]] = {}
        """Keys found before, by `kid`, with when they were found: used without a thread hop
        (only the issuer's published keys get here, so it stays small)."""

    async def principal(self, authorization: str | None) -> Principal:
        if not authorization:
            raise ProblemError(
                Kind.UNAUTHORIZED, "a bearer token is required", _challenge("invalid_request")
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ProblemError(
                Kind.UNAUTHORIZED,
                "the Authorization header must be `Bearer <token>`",
                _challenge("invalid_request"),
            )
        claims = await self.claims(token.strip())
        return principal_from(claims, self.config)

    async def claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise ProblemError(Kind.UNAUTHORIZED, "the token is not a JWT", _challenge()) from None
        if header.get("alg") not in self.config.algorithms:
            raise ProblemError(
                Kind.UNAUTHORIZED,
                f"tokens signed with {header.get('alg')} are not accepted",
                _challenge(),
            )
        key = await self._signing_key(token, header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(self.config.algorithms),
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise ProblemError(Kind.UNAUTHORIZED, "the token has expired", _challenge()) from None
        except jwt.PyJWTError as err:
            detail = f"the token was refused: {_first_sentence(err)}"
            raise ProblemError(Kind.UNAUTHORIZED, detail, _challenge()) from None
        return claims

    async def _signing_key(self, token: str, kid: Any) -> Any:
        """The issuer's key for the token's `kid`: the one found before while it is kept, else
        from the JWKS client in a thread (a fetch blocks; an unknown `kid` makes it fetch)."""
        known = self._known.get(kid) if isinstance(kid, str) else None
        if known is not None and time.monotonic() - known[1] < self._keys_kept_s / 2:
            return known[0]
        try:
            keys = await self._key_client()
            signing = await asyncio.to_thread(keys.get_signing_key_from_jwt, token)
        except (jwt.PyJWKClientConnectionError, OSError, ValueError, KeyError):
            raise ProblemError(
                Kind.UNAVAILABLE, "the token issuer's keys cannot be fetched now"
            ) from None
        except jwt.PyJWTError as err:
            detail = f"the token was refused: {_first_sentence(err)}"
            raise ProblemError(Kind.UNAUTHORIZED, detail, _challenge()) from None
        if isinstance(kid, str):
            self._known[kid] = (signing.key, time.monotonic())
        return signing.key

    async def _key_client(self) -> jwt.PyJWKClient:
        if self._keys is None:
            url = self.config.jwks_url or await asyncio.to_thread(jwks_uri, self.config.issuer)
            lifespan = max(self._keys_kept_s / 2, 0.001)  # PyJWKClient refuses 0
            self._keys = jwt.PyJWKClient(
                url, lifespan=lifespan, timeout=5, cooldown_duration=self._refetch_cooldown_s
            )
        return self._keys


def jwks_uri(issuer: str) -> str:
    """The issuer's JWKS URL, from its OpenID discovery document."""
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(json.loads(response.read())["jwks_uri"])


def _first_sentence(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:1].lower() + text[1:].rstrip(".")
