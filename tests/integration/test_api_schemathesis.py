"""A property-based run of the API from its own OpenAPI document (schemathesis): whatever
requests it makes for every operation, schema-shaped or schema-breaking, on made-up refunds
and on a real one, the API answers no 5xx and nothing outside the document (status, content
type, body schema).

The operations are walked by hand with Hypothesis rather than through schemathesis's pytest
plugin, whose fixture-loaded schemas do not work with pytest 9.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import schemathesis

# Imported here, at collection, not lazily inside a generated case: pytest rewrites
# schemathesis's modules (it is a plugin), and CPython 3.11.7 can fail to parse one deep in
# a call stack ("AST constructor recursion depth mismatch", a CPython 3.11 bug): seen once.
import schemathesis.generation.jsonschema.strategy
import schemathesis.specs.openapi.adapter
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode

from tests.conftest import Sandbox
from tests.integration.api_support import Api

NOTHING_TO_BREAK = {
    "/healthz",
    "/readyz",
    "/v1/policies",
    "/dev-issuer/.well-known/openid-configuration",
    "/dev-issuer/jwks.json",
}
"""The operations without parameters or a body: negative mode may find nothing to send."""

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
async def real_refund(api: Api, sandbox: Sandbox) -> str:
    order = await sandbox.order(amount=30000, category="general", customer_id="cust_fuzzed")
    made = await api.request_refund(
        "cust_fuzzed", {"order_id": order["order_id"], "amount": 25000, "reason_code": "damaged"}
    )
    assert made.status == 201, made.body
    refund_id: str = made.body["refund_id"]
    return refund_id


@pytest.mark.parametrize(
    ("mode", "on_a_real_refund"),
    [(GenerationMode.POSITIVE, False), (GenerationMode.NEGATIVE, False),
     (GenerationMode.POSITIVE, True)],
    ids=["schema-shaped", "schema-breaking", "schema-shaped-on-a-real-refund"],
)  # fmt: skip
def test_the_api_answers_every_generated_request_within_its_document(
    api: Api, real_refund: str, mode: GenerationMode, on_a_real_refund: bool
) -> None:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    schema = schemathesis.openapi.from_url(f"{api.base}/openapi.json")
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "every operation in the document loads"
    assert len(operations) >= 17
    for operation in operations:
        pinned = {"refund_id": real_refund} if "{refund_id}" in operation.path else None
        if on_a_real_refund and pinned is None:
            continue
        path = pinned if on_a_real_refund else None

        @given(case=operation.as_strategy(mode, path_parameters=path))
        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answers_within_the_document(case: Any) -> None:
            # Staff who may do anything, a principal of its own per request (no rate limit
            # in the way): whatever is refused, is refused with the document's problems.
            token = api.token(f"fuzz-{uuid.uuid4().hex[:12]}", roles=["lead", "operator"])
            case.call_and_validate(
                base_url=api.base, headers={"Authorization": f"Bearer {token}"}, checks=checks
            )

        try:
            answers_within_the_document()
        except Unsatisfiable:
            # No input to break (the probes, the issuer's keys): nothing negative to send.
            # Any other operation must have negative cases, or this run tested nothing.
            assert mode is GenerationMode.NEGATIVE, operation.path
            assert operation.path in NOTHING_TO_BREAK, operation.path
