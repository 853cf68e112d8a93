"""The pages' own settings: the secret that signs session CSRF tokens and customers'
tracking links, the public URL those links start with, and how staff sign in.

Staff sign in through the dev issuer in the dev stack (a page listing the directory) and
through the OIDC authorization-code flow in production (`REFUNDFLOW_CONSOLE_CLIENT_ID`,
see docs/identity.md). Without a secret and outside the dev stack the pages are off: the
JSON API works alone.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from api.config import ApiConfig, dev_directory

SECRET_FILE = "issuer/pages-secret"
"""Beside the dev issuer's key: `refundflow dev --fresh` makes a new one with it."""
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class PagesConfig:
    secret: bytes
    """Signs CSRF tokens and tracking links (HMAC-SHA256). Rotating it ends every session
    and invalidates every link sent."""
    public_url: str = ""
    """Where customers reach the API (tracking links); empty: the request's own base URL."""
    dev_home: Path | None = None
    """The dev issuer's home: staff sign in by picking a name from the directory."""
    directory: Path | None = None
    oidc_client_id: str = ""
    """Production sign-in: this console's client id at the issuer (authorization code + PKCE)."""
    oidc_client_secret: str = ""
    secure_cookies: bool = True
    """Cookies only over HTTPS; off in the dev stack, which serves plain HTTP on loopback."""

    @classmethod
    def from_env(cls, api: ApiConfig, env: dict[str, str] | None = None) -> PagesConfig | None:
        env = dict(os.environ if env is None else env)
        secret = env.get("REFUNDFLOW_PAGES_SECRET", "").encode()
        if secret and len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"REFUNDFLOW_PAGES_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        if not secret and api.dev_issuer_home is not None:
            secret = dev_secret(api.dev_issuer_home)
        if not secret:
            return None
        return cls(
            secret=secret,
            public_url=env.get("REFUNDFLOW_PUBLIC_URL", "").rstrip("/"),
            dev_home=api.dev_issuer_home,
            directory=dev_directory(env) if api.dev_issuer_home is not None else None,
            oidc_client_id=env.get("REFUNDFLOW_CONSOLE_CLIENT_ID", ""),
            oidc_client_secret=env.get("REFUNDFLOW_CONSOLE_CLIENT_SECRET", ""),
            secure_cookies=api.dev_issuer_home is None,
        )


def dev_secret(home: Path) -> bytes:
    """The dev stack's pages secret, made once beside the issuer's key (mode 0600), so
    links and sessions survive a restart of the API."""
    path = home / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_bytes().strip()
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_bytes().strip()
