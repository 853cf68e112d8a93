"""Calling the stack's HTTP API as anyone: dev tokens signed with the stack's issuer key,
and forged ones (expired, another audience, another issuer, another key)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from api.config import DEV_AUDIENCE, dev_directory
from api.dev_issuer import ALGORITHM, KEY_ID, lookup, private_key
from worker.devstack import DevStack

PROBLEM_JSON = "application/problem+json"


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    content_type: str

    @property
    def problem_type(self) -> str:
        assert self.content_type == PROBLEM_JSON, (self.status, self.content_type, self.body)
        return str(self.body["type"])


class Api:
    def __init__(self, http: aiohttp.ClientSession, stack: DevStack) -> None:
        described = stack.describe()
        self.http = http
        self.base: str = described["api_url"]
        self.issuer: str = described["issuer"]
        self.home = stack.config.home

    def claims(self, name: str, **override: Any) -> dict[str, Any]:
        entry = lookup(dev_directory({}), name)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": DEV_AUDIENCE,
            "sub": entry.name,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "roles": list(entry.roles),
            "scope": " ".join(entry.scopes),
        }
        claims.update(override)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, name: str, *, key: Any = None, alg: str = ALGORITHM, **override: Any) -> str:
        """A token for NAME from the dev directory (or a customer), signed with the stack's
        issuer key unless `key` says otherwise; claims overridden (None removes one)."""
        signing = key if key is not None else private_key(self.home)
        return jwt.encode(self.claims(name, **override), signing, alg, headers={"kid": KEY_ID})

    def forged(self, name: str) -> dict[str, str]:
        """Every way a token for NAME can be wrong, by name."""
        now = int(time.time())
        other_key = ec.generate_private_key(ec.SECP256R1())
        return {
            "expired": self.token(name, iat=now - 7200, nbf=now - 7200, exp=now - 3600),
            "not yet valid": self.token(name, nbf=now + 3600),
            "wrong audience": self.token(name, aud="another-api"),
            "wrong issuer": self.token(name, iss="https://issuer.invalid/realms/x"),
            "wrong signature": self.token(name, key=other_key),
            "symmetric alg": self.token(name, key="a-shared-secret-of-32-bytes-long!", alg="HS256"),
            "no subject": self.token(name, sub=None),
            "garbage": "not.a.jwt",
        }

    async def call(
        self,
        method: str,
        path: str,
        *,
        as_: str | None = None,
        token: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        data: Any = None,
    ) -> Reply:
        sent = dict(headers or {})
        bearer = token if token is not None else (self.token(as_) if as_ else None)
        if bearer is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        async with self.http.request(
            method, self.base + path, json=json, data=data, headers=sent
        ) as r:
            text = await r.text()
            body: Any = None
            if text:
                try:
                    body = await r.json(content_type=None)
                except ValueError:
                    body = text
            return Reply(r.status, body, dict(r.headers), r.content_type)

    async def request_refund(self, as_: str, body: dict[str, Any], key: str | None = None) -> Reply:
        key = key or f"k-{uuid.uuid4().hex[:16]}"
        return await self.call(
            "POST", "/v1/refunds", as_=as_, json=body, headers={"Idempotency-Key": key}
        )
