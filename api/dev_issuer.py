"""The dev stack's local token issuer: one signing key, kept under the stack's home, and
a staff directory file; never used outside `refundflow dev` and the tests.

The API serves the issuer's discovery document and JWKS under /dev-issuer (routes of its
own process) and verifies dev tokens through that JWKS URL over HTTP, exactly as it
verifies a production issuer's. `refundflow token --as NAME` signs tokens with the key.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.config import DEV_AUDIENCE, DEV_ISSUER_PATH
from workflows.vocabulary import IDENTIFIER_PATTERN

if TYPE_CHECKING:  # the CLI signs its dev tokens here without FastAPI (0.4 s to import)
    from fastapi import APIRouter

KEY_FILE = "issuer/signing-key.pem"
KEY_ID = "refundflow-dev-1"
ALGORITHM = "ES256"
TOKEN_TTL_SECONDS = 3600


def key_path(home: Path) -> Path:
    return home / KEY_FILE


def ensure_signing_key(home: Path) -> Path:
    """The issuer's private key, generated once (P-256), readable by its owner only."""
    path = key_path(home)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return path


def private_key(home: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(key_path(home).read_bytes(), password=None)
    except OSError:
        raise FileNotFoundError(
            f"no dev issuer key in {home}: is `refundflow dev` running from this folder?"
        ) from None
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def jwks(home: Path) -> dict[str, Any]:
    public = private_key(home).public_key()
    jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
    jwk.update({"kid": KEY_ID, "use": "sig", "alg": ALGORITHM})
    return {"keys": [jwk]}


@dataclass(frozen=True)
class DirectoryEntry:
    name: str
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        if self.roles:
            return "warehouse" if self.roles == ("warehouse",) else "staff"
        return "service" if self.scopes else "customer"


def load_directory(path: Path) -> tuple[str, dict[str, DirectoryEntry]]:
    """(default member, members by name) from the directory file."""
    data = json.loads(path.read_text())
    members = {
        name: DirectoryEntry(name, tuple(m.get("roles", ())), tuple(m.get("scopes", ())))
        for name, m in data["members"].items()
    }
    return str(data.get("default", "")), members


CUSTOMER_PREFIX = "cust_"
"""Customers of the dev stack are named by their id, which starts with this (cust_42)."""


class NotInDirectory(ValueError):
    """A name that is neither a directory member nor a customer id: a typo, not a new
    customer (`alcie` is not someone; alice is)."""

    def __init__(self, name: str, members: list[str]) -> None:
        close = difflib.get_close_matches(name.lower(), members, n=1)
        self.closest = close[0] if close else None
        self.hint = f"; did you mean {self.closest}?" if self.closest else ""
        super().__init__(
            f"{name!r} is not in the dev stack's staff directory{self.hint}"
            f" (members: {', '.join(members)}; a customer is named by their id,"
            f" {CUSTOMER_PREFIX}…, such as {CUSTOMER_PREFIX}42)"
        )


class NotACustomerId(NotInDirectory):
    """cust_ with nothing after it, or with what no id holds (spaces): the token's subject
    would be a customer no order names."""

    def __init__(self, name: str) -> None:
        self.closest, self.hint = None, ""
        ValueError.__init__(
            self,
            f"{name!r} is not a customer id: {CUSTOMER_PREFIX} then letters, digits and"
            f" . _ : - (no spaces), up to 64 characters in all, such as {CUSTOMER_PREFIX}42",
        )


class NotCustomerCase(NotInDirectory):
    """CUST_42 for cust_42: a customer id is the customer exactly, so CUST_42 would be a
    new customer with no orders (a trial: nothing matched, orders unknown, no word why)."""

    def __init__(self, name: str) -> None:
        meant = CUSTOMER_PREFIX + name[len(CUSTOMER_PREFIX) :]
        self.closest, self.hint = meant, f"; did you mean {meant}?"
        ValueError.__init__(
            self,
            f"{name!r} is not a customer id: customer ids start with {CUSTOMER_PREFIX} in"
            f" lower case, and are the customer exactly; did you mean {meant}?",
        )


def member_name(name: str, members: dict[str, DirectoryEntry]) -> str:
    """NAME as the directory lists it (case aside: Alice is alice), or a customer id
    (cust_..., exactly as written: the id is the customer); anything else raises
    NotInDirectory. The CLI's --as and the console's sign-in both take names this way."""
    if not name or name in members:
        return name
    if name.lower().startswith(CUSTOMER_PREFIX):
        return customer_id(name)
    if name.lower() in members:
        return name.lower()
    raise NotInDirectory(name, list(members))


def customer_id(name: str) -> str:
    """NAME if it is a customer id the dev stack can sign in as (cust_42), else raises
    NotInDirectory saying why. `sandbox order --customer` takes only these: an order placed
    by CUST_9 belonged to nobody `--as` could name (a trial)."""
    if not name.lower().startswith(CUSTOMER_PREFIX):
        raise NotACustomerId(name)
    if not name.startswith(CUSTOMER_PREFIX):  # CUST_42 would be a customer of its own
        raise NotCustomerCase(name)
    well_formed = re.fullmatch(IDENTIFIER_PATTERN, name) and len(name) <= 64
    if len(name) == len(CUSTOMER_PREFIX) or not well_formed:
        raise NotACustomerId(name)
    return name


def lookup(path: Path, name: str) -> DirectoryEntry:
    """NAME's entry; any name the directory does not list is a customer with that id."""
    _, members = load_directory(path)
    return members.get(name, DirectoryEntry(name))


def mint(
    home: Path, issuer: str, entry: DirectoryEntry, ttl: int = TOKEN_TTL_SECONDS
) -> dict[str, Any]:
    """A signed access token for `entry`, and what it says."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": DEV_AUDIENCE,
        "sub": entry.name,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "roles": list(entry.roles),
        "scope": " ".join(entry.scopes),
    }
    token = jwt.encode(claims, private_key(home), algorithm=ALGORITHM, headers={"kid": KEY_ID})
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "subject": entry.name,
        "kind": entry.kind,
        "roles": list(entry.roles),
        "scopes": list(entry.scopes),
    }


def router(home: Path, issuer: str) -> APIRouter:
    """The issuer's public side: discovery document and JWKS (no token endpoint: tokens
    come from `refundflow token`, which holds the key)."""
    from fastapi import APIRouter

    routes = APIRouter(prefix=DEV_ISSUER_PATH, tags=["dev issuer"])

    @routes.get("/.well-known/openid-configuration", summary="Dev issuer discovery")
    async def discovery() -> dict[str, Any]:
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/jwks.json",
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        }

    @routes.get("/jwks.json", summary="Dev issuer signing keys")
    async def keys() -> dict[str, Any]:
        return jwks(home)

    return routes
