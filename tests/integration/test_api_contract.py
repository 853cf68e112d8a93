"""The API's contract: an OpenAPI 3.1 document that validates and lists every route, a docs
page that needs nothing from the network, problems (RFC 9457) for every failure with one
clear line and no stack trace, a request size limit and a rate limit per principal."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from openapi_spec_validator import OpenAPIV31SpecValidator

from api.app import create_app
from api.config import ApiConfig
from client.settings import Settings
from tests.conftest import Sandbox
from tests.integration.api_support import PROBLEM_JSON, Api

pytestmark = pytest.mark.stack


async def test_the_openapi_document_validates_and_lists_every_route(
    api: Api, settings: Settings
) -> None:
    reply = await api.call("GET", "/openapi.json")
    spec: dict[str, Any] = reply.body
    assert spec["openapi"].startswith("3.1")
    OpenAPIV31SpecValidator(spec).validate()
    config = ApiConfig.from_env(
        {"REFUNDFLOW_OIDC_ISSUER": api.issuer, "REFUNDFLOW_OIDC_AUDIENCE": "x"}
    )
    app = create_app(config, settings)  # its routes, without starting it
    routes = {
        (context.path, method.lower())
        for context in iter_route_contexts(app.routes)  # the included routers' routes too
        if isinstance(context.original_route, APIRoute) and context.original_route.include_in_schema
        for method in context.methods or ()
    }
    assert ("/v1/refunds/{refund_id}/approve", "post") in routes  # the walk finds routes
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert routes <= documented, routes - documented
    assert {"/v1/refunds", "/v1/refunds/{refund_id}/approve", "/readyz"} <= set(spec["paths"])
    # Every error a route answers is a problem, described by the Problem schema.
    approve = spec["paths"]["/v1/refunds/{refund_id}/approve"]["post"]
    for status in ("401", "403", "404", "409", "422", "429"):
        content = approve["responses"][status]["content"]
        assert content[PROBLEM_JSON]["schema"]["$ref"] == "#/components/schemas/Problem"
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


async def test_the_docs_page_lists_the_routes_and_loads_nothing_from_elsewhere(api: Api) -> None:
    reply = await api.call("GET", "/docs")
    assert reply.status == 200 and reply.content_type == "text/html"
    page = str(reply.body)
    assert "/v1/refunds/{refund_id}/track" in page and "/openapi.json" in page
    assert "<script" not in page and "http" not in page.replace("/openapi.json", "")


def once() -> dict[str, str]:
    return {"Idempotency-Key": f"k-{uuid.uuid4().hex[:8]}"}


async def test_bad_input_is_one_clear_problem(api: Api, sandbox: Sandbox) -> None:
    order = await sandbox.order(amount=30000, category="general", customer_id="cust_bad")
    body = {"order_id": order["order_id"], "amount": 1000, "reason_code": "damaged"}
    as_text = json.dumps(body).encode()
    cases: list[tuple[dict[str, Any], dict[str, str] | None, bytes | None, str]] = [
        (body, {}, None, "Idempotency-Key"),
        (body, {"Idempotency-Key": "has spaces"}, None, "Idempotency-Key"),
        ({**body, "lines": [{"sku": "X", "quantity": 1}]}, None, None, "not both"),
        ({**body, "reason_code": "bored"}, None, None, "reason_code"),
        ({**body, "order_id": "ord_nope"}, None, None, "unknown order"),
        ({**body, "amount": 999999}, None, None, "captured"),
        ({}, {"Content-Type": "application/json"}, b"{not json", "not valid JSON at character"),
        # No body at all: say how to send it.
        ({}, once(), None, "a JSON body is required"),
        # Every field that is missing is named, not "(and 1 more)".
        ({"amount": 1000}, None, None, "order_id: Field required; reason_code: Field required"),
    ]
    for payload, headers, raw, says in cases:
        sent = once() if headers is None else headers
        reply = await api.call(
            "POST",
            "/v1/refunds",
            as_="cust_bad",
            json=None if raw is not None or not payload else payload,
            data=raw,
            headers=sent,
        )
        assert reply.status == 422, (says, reply.body)
        assert reply.problem_type == "urn:refundflow:problem:bad-input"
        detail = reply.body["detail"]
        assert says.lower() in detail.lower() and "\n" not in detail, detail
        assert "Traceback" not in str(reply.body)
    # Bytes that are not UTF-8: said in our words, not the framework's.
    latin = '{"order_id": "caf\xe9"}'.encode("latin-1")
    headers = {**once(), "Content-Type": "application/json"}
    unread = await api.call("POST", "/v1/refunds", as_="cust_bad", data=latin, headers=headers)
    assert unread.body["detail"] == "the body could not be read: send JSON text in UTF-8", unread
    # A JSON body sent as text: its media type is what is wrong (415), said so.
    headers = {**once(), "Content-Type": "text/plain"}
    wrong = await api.call("POST", "/v1/refunds", as_="cust_bad", data=as_text, headers=headers)
    assert wrong.status == 415, wrong.body
    assert wrong.problem_type == "urn:refundflow:problem:unsupported-media-type"
    assert wrong.body["detail"] == (
        "the body is sent as text/plain: send it as JSON, with Content-Type: application/json"
    )
    # Without a Content-Type at all: the same (a trial: 422 "must be a JSON object").
    bare = {**once(), "Authorization": f"Bearer {api.token('cust_bad')}"}
    async with api.http.post(
        api.base + "/v1/refunds", data=as_text, headers=bare, skip_auto_headers=["Content-Type"]
    ) as r:
        untyped = (r.status, (await r.json(content_type=None))["detail"])
    assert untyped == (415, "the body is sent without a Content-Type: send it as JSON, with"
                       " Content-Type: application/json")  # fmt: skip


async def test_a_query_parameter_the_route_does_not_take_is_refused_by_name(api: Api) -> None:
    """Ignored, `?stat=completed` answered every refund as if unfiltered (a trial)."""
    typo = await api.call("GET", "/v1/refunds?stat=completed", as_="li")
    assert typo.status == 422 and typo.problem_type.endswith("bad-input"), typo.body
    assert typo.body["detail"].startswith(
        "unknown query parameter 'stat': did you mean 'state'? it takes cursor, customer,"
    ), typo.body
    extra = await api.call("GET", f"/v1/refunds/rf_{'0' * 24}/audit?verbose=1", as_="li")
    assert extra.body["detail"] == (
        "unknown query parameter 'verbose': this route takes no query parameters"
    ), extra.body
    twice = await api.call("GET", "/v1/refunds?state=completed&state=cancelled", as_="li")
    assert twice.body["detail"] == "query parameter 'state' given more than once", twice.body
    fine = await api.call("GET", "/v1/refunds?state=completed&limit=1", as_="li")
    assert fine.status == 200, fine.body
    for probe in ("/healthz?probe=1", "/readyz?x=1"):  # probers add what they like
        assert (await api.call("GET", probe)).status == 200, probe


async def test_unknown_refunds_and_routes_are_problems(api: Api) -> None:
    missing = await api.call("GET", "/v1/refunds/rf_" + "0" * 24, as_="li")
    assert missing.status == 404 and missing.problem_type == "urn:refundflow:problem:not-found"
    malformed = await api.call("GET", "/v1/refunds/not-an-id", as_="li")
    assert malformed.status == 422 and malformed.problem_type.endswith("bad-input")
    assert malformed.body["detail"] == (
        "'not-an-id' is not a refund id (they look like rf_ and 24 hex digits)"
    )
    nowhere = await api.call("GET", "/v2/anything")
    assert nowhere.status == 404 and nowhere.problem_type.endswith("not-found")


async def test_a_body_over_the_limit_is_refused_with_413(api: Api) -> None:
    big = b'{"order_id": "' + b"x" * (70 * 1024) + b'"}'

    async def streamed() -> AsyncIterator[bytes]:  # chunked: no Content-Length to go by
        for at in range(0, len(big), 8192):
            yield big[at : at + 8192]

    for data in (big, streamed()):
        sent = {"Content-Type": "application/json", "Idempotency-Key": "k-big"}
        reply = await api.call("POST", "/v1/refunds", as_="cust_big", data=data, headers=sent)
        assert reply.status == 413, reply.body
        assert reply.problem_type == "urn:refundflow:problem:too-large"


async def test_the_rate_limit_is_per_principal_with_retry_after(api: Api) -> None:
    greedy = f"cust_{uuid.uuid4().hex[:8]}"
    token = api.token(greedy)
    statuses = []
    for _ in range(140):
        reply = await api.call("GET", "/v1/policies/standard-v3", token=token)
        statuses.append(reply.status)
        if reply.status == 429:
            assert reply.problem_type == "urn:refundflow:problem:rate-limited"
            assert int(reply.headers["Retry-After"]) >= 1
            break
    assert statuses[-1] == 429 and statuses.count(200) >= 100, statuses
    other = await api.call("GET", "/v1/policies/standard-v3", as_=f"cust_{uuid.uuid4().hex[:8]}")
    assert other.status == 200


async def test_health_and_readiness(api: Api) -> None:
    assert (await api.call("GET", "/healthz")).body == {"status": "ok", "checks": {}}
    ready = await api.call("GET", "/readyz")
    assert ready.status == 200
    assert ready.body == {"status": "ready", "checks": {"temporal": "ok", "postgres": "ok"}}


async def test_the_dev_issuer_publishes_its_discovery_document_and_keys(api: Api) -> None:
    found = await api.call("GET", "/dev-issuer/.well-known/openid-configuration")
    assert found.body["issuer"] == api.issuer
    keys = await api.call("GET", found.body["jwks_uri"].removeprefix(api.base))
    (key,) = keys.body["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("EC", "ES256", "sig")
    assert "d" not in key  # the public half only
