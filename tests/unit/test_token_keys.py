"""The API's token verifier and its issuer's keys: a key it has found is used again without a
thread hop or a fetch; a new `kid` (rotation) is fetched once the refetch cooldown has passed;
a key the issuer withdrew is refused once the keys are no longer kept."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from api.config import ApiConfig
from api.identity import TokenVerifier
from api.problems import Kind, ProblemError

ISSUER = "https://issuer.test"
AUDIENCE = "refundflow-api"


class Issuer:
    """A JWKS endpoint on a local port, publishing the keys named in `published`."""

    def __init__(self) -> None:
        self.keys = {kid: rsa.generate_private_key(65537, 2048) for kid in ("k1", "k2")}
        self.published = ["k1"]
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.fetches += 1
                body = json.dumps({"keys": [issuer.jwk(kid) for kid in issuer.published]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def jwk(self, kid: str) -> dict[str, Any]:
        public: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
        return {**public, "kid": kid, "use": "sig", "alg": "RS256"}

    def token(self, kid: str) -> str:
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "svc_checkout", "exp": time.time() + 60}
        return jwt.encode(claims, self.keys[kid], algorithm="RS256", headers={"kid": kid})

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/jwks"


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    thread = threading.Thread(target=issuer.server.serve_forever, daemon=True)
    thread.start()
    yield issuer
    issuer.server.shutdown()
    issuer.server.server_close()
    thread.join()


def _verifier(issuer: Issuer, keys_kept_s: float, cooldown_s: float = 30) -> TokenVerifier:
    config = ApiConfig(issuer=ISSUER, jwks_url=issuer.jwks_url, audience=AUDIENCE)
    return TokenVerifier(config, keys_kept_s=keys_kept_s, refetch_cooldown_s=cooldown_s)


async def test_a_known_key_is_used_again_without_a_thread_or_a_fetch(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops: list[object] = []
    real_to_thread = asyncio.to_thread

    async def counted(func: Any, /, *args: Any) -> Any:
        hops.append(func)
        return await real_to_thread(func, *args)

    monkeypatch.setattr(asyncio, "to_thread", counted)  # what api.identity calls
    verifier = _verifier(issuer, keys_kept_s=300)
    for _ in range(5):
        claims = await verifier.claims(issuer.token("k1"))
        assert claims["sub"] == "svc_checkout"
    assert len(hops) == 1 and issuer.fetches == 1


async def test_a_new_kid_is_fetched_and_a_withdrawn_key_is_refused_later(
    issuer: Issuer,
) -> None:
    verifier = _verifier(issuer, keys_kept_s=1.0, cooldown_s=0.2)
    await verifier.claims(issuer.token("k1"))
    issuer.published = ["k2"]  # the issuer rotates: k2 in, k1 withdrawn
    with pytest.raises(ProblemError):  # within the cooldown: no fetch for an unknown kid
        await verifier.claims(issuer.token("k2"))
    await asyncio.sleep(0.3)
    assert (await verifier.claims(issuer.token("k2")))["iss"] == ISSUER  # fetched, no restart
    assert issuer.fetches == 2
    await asyncio.sleep(1.1)  # longer than the keys are kept
    with pytest.raises(ProblemError) as refused:
        await verifier.claims(issuer.token("k1"))
    assert refused.value.kind is Kind.UNAUTHORIZED and "refused" in refused.value.detail
