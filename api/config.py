"""The API's own settings, from the environment: who issues the tokens it trusts, and its
limits. The Temporal and Postgres side is client.settings.Settings, as for every process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from client.settings import PROJECT_ROOT, ConfigurationError, _whole_number

DEV_AUDIENCE = "refundflow-api"
DEV_ISSUER_PATH = "/dev-issuer"
DEFAULT_DIRECTORY = PROJECT_ROOT / "deploy" / "dev-directory.json"


@dataclass(frozen=True)
class ApiConfig:
    issuer: str
    """The `iss` every token must carry (an OIDC issuer URL)."""
    jwks_url: str
    """Where the issuer publishes its signing keys (fetched over HTTP, cached); empty: the
    `jwks_uri` of the issuer's discovery document (/.well-known/openid-configuration)."""
    audience: str
    """The `aud` every token must carry: this API's identifier at the issuer."""
    roles_claim: str = "roles"
    """Dotted path to the list of roles (`realm_access.roles` for Keycloak)."""
    scope_claim: str = "scope"
    """A space-separated string or a list of scopes (`scp` for Entra ID)."""
    subject_claim: str = "sub"
    """Who the principal is in the audit (`preferred_username` reads better for staff)."""
    leeway_seconds: int = 30
    """Clock skew tolerated on exp, nbf and iat."""
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 64 * 1024
    rate_per_minute: int = 600
    rate_burst: int = 120
    metrics_addr: str = ""
    """host:port of the API's Prometheus endpoint (api/metrics.py); empty: none."""
    dev_issuer_home: Path | None = None
    """Serve the dev stack's local issuer from this home's keys (never in production)."""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ApiConfig:
        env = dict(os.environ if env is None else env)
        missing = [
            name
            for name in ("REFUNDFLOW_OIDC_ISSUER", "REFUNDFLOW_OIDC_AUDIENCE")
            if not env.get(name)
        ]
        if missing:
            raise ConfigurationError(
                f"the API needs {' and '.join(missing)} (see docs/identity.md);"
                " `refundflow dev` sets them for its local issuer"
            )
        # Exactly as the issuer writes `iss` (Auth0's ends in a slash): compared as is.
        issuer = env["REFUNDFLOW_OIDC_ISSUER"]
        dev_home = env.get("REFUNDFLOW_DEV_ISSUER_HOME")
        return cls(
            issuer=issuer,
            jwks_url=env.get("REFUNDFLOW_OIDC_JWKS_URL") or "",
            audience=env["REFUNDFLOW_OIDC_AUDIENCE"],
            roles_claim=env.get("REFUNDFLOW_OIDC_ROLES_CLAIM") or "roles",
            scope_claim=env.get("REFUNDFLOW_OIDC_SCOPE_CLAIM") or "scope",
            subject_claim=env.get("REFUNDFLOW_OIDC_SUBJECT_CLAIM") or "sub",
            leeway_seconds=_whole_number(env, "REFUNDFLOW_OIDC_LEEWAY_SECONDS", 30),
            host=env.get("REFUNDFLOW_API_HOST") or "127.0.0.1",
            port=_whole_number(env, "REFUNDFLOW_API_PORT", 8080),
            max_body_bytes=_whole_number(env, "REFUNDFLOW_API_MAX_BODY_BYTES", 64 * 1024),
            rate_per_minute=_whole_number(env, "REFUNDFLOW_API_RATE_PER_MINUTE", 600),
            rate_burst=_whole_number(env, "REFUNDFLOW_API_RATE_BURST", 120),
            metrics_addr=env.get("REFUNDFLOW_API_METRICS_ADDR") or "",
            dev_issuer_home=Path(dev_home) if dev_home else None,
        )


def dev_directory(env: dict[str, str]) -> Path:
    """The dev stack's staff directory file (REFUNDFLOW_DEV_DIRECTORY, or the shipped one)."""
    return Path(env.get("REFUNDFLOW_DEV_DIRECTORY") or DEFAULT_DIRECTORY)


def dev_issuer_url(api_url: str) -> str:
    """The local issuer's URL: a path of the API's own, verified like any other issuer."""
    return api_url.rstrip("/") + DEV_ISSUER_PATH
